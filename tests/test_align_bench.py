"""The alignment and naturalness benchmarks run and end with their contract lines (small inputs: the figures come from
running them in full)."""
import re, subprocess, sys
from conftest import ROOT, clean_env


def bench(name, *args, cwd):
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / name), *args], cwd=cwd, env=clean_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1], r.stderr


def test_alignment_bench_line_and_plausible_errors(tmp_path):
    last, err = bench("alignment_bench.py", "--paragraphs", "1", "--conditions", "clean,tempo_1.15,pink_20db,espeak_en",
                      cwd=tmp_path)
    m = re.fullmatch(r"align_median_ms=([\d.]+) align_p95_ms=([\d.]+)", last)
    assert m, last
    median, p95 = float(m[1]), float(m[2])
    assert 0 <= median <= p95 < 400, last                      # plausible: not a constant, not off by whole words
    for c in ("clean", "tempo_1.15", "pink_20db", "espeak_en", "overall"):
        assert re.search(rf"^{re.escape(c)}\s+\d+\s+[\d.]+\s+[\d.]+", err, re.M), err


def test_naturalness_bench_scores_every_voice(tmp_path):
    voices = tmp_path / "voices.json"
    voices.write_text('[{"id": "espeak_en_us", "synthesizer": "ytempire.voice:EspeakSynthesizer", "args": {"language": "en-US"}},'
                      ' {"id": "nowhere", "synthesizer": "ytempire.voice:NoSuchSynthesizer", "args": {}}]')
    last, err = bench("naturalness_bench.py", "--voices", str(voices), "--text", "Coffee starts as a green seed. Roasting turns it brown.",
                      cwd=tmp_path)
    m = re.fullmatch(r"naturalness_espeak_en_us=([\d.]+)", last)
    assert m and 1 <= float(m[1]) <= 5, last
    assert re.search(r"^nowhere\s+unavailable", err, re.M), err
    assert "not listener ratings" in err

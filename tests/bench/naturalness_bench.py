"""Benchmark (not a timed test): DNSMOS naturalness proxy (`ytempire.align.naturalness`) of every offline voice.
Usage: .venv/bin/python tests/bench/naturalness_bench.py [--voices FILE.json]
The voices are data (tests/bench/naturalness_voices.json: id, "module:Class" of a SpeechSynthesizer, its keyword
arguments after `settings`); a row whose engine is not installed is listed as unavailable, not dropped. Each voice
speaks the same paragraph; the table shows DNSMOS P.808 MOS and P.835 SIG/BAK/OVRL (1-5). These are an objective
proxy for naturalness computed by Microsoft's DNSMOS models, not ratings by listeners. The last line is
`naturalness_<voice>=MOS ...` (P.808 MOS) for every voice that spoke."""
import argparse, importlib, json, sys, tempfile, time
from pathlib import Path
import soundfile as sf
from ytempire.config import Settings
from ytempire.align import naturalness

HERE = Path(__file__).resolve().parent
PARAGRAPH = ("Coffee starts as a green seed. Roasting turns it brown, and within minutes the flavour we know appears. "
             "At about two hundred degrees the beans crack for the first time; sugars caramelise and the aroma turns "
             "from grassy to sweet. Stop soon after for a light roast, or keep going for a dark one.")


def synthesizer(row: dict, settings: Settings):
    "The row's synthesiser, built from its 'module:Class' and arguments."
    module, cls = row["synthesizer"].split(":")
    return getattr(importlib.import_module(module), cls)(settings, **row.get("args", {}))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--voices", type=Path, default=HERE / "naturalness_voices.json", help="JSON list of voices to score")
    ap.add_argument("--text", default=PARAGRAPH, help="the paragraph every voice speaks")
    a = ap.parse_args(argv)
    rows, st, scores = json.loads(a.voices.read_text()), Settings(env={}), {}
    print(f"{'voice':<22} {'seconds':>7} {'P.808':>6} {'SIG':>5} {'BAK':>5} {'OVRL':>5} {'score s':>7}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as d:
        for row in rows:
            try:
                sp = synthesizer(row, st).speak(a.text)
            except Exception as e:              # an engine that is not installed here: say so, keep the others
                print(f"{row['id']:<22} unavailable: {str(e).splitlines()[0][:90]}", file=sys.stderr)
                continue
            path = Path(d, f"{row['id']}.wav"); sf.write(path, sp.audio, sp.sample_rate)
            t0 = time.perf_counter(); s = naturalness(path); dt = time.perf_counter() - t0
            scores[row["id"]] = s
            print(f"{row['id']:<22} {len(sp.audio) / sp.sample_rate:>7.1f} {s['p808']:>6.2f} {s['sig']:>5.2f} {s['bak']:>5.2f} "
                  f"{s['ovrl']:>5.2f} {dt:>7.2f}", file=sys.stderr)
    print("DNSMOS is an objective proxy (a model trained on listener ratings), not listener ratings of these voices.",
          file=sys.stderr)
    if not scores: sys.exit("no voice could speak; install piper-tts / espeak-ng (make setup)")
    print(" ".join(f"naturalness_{k}={v['p808']:.2f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()

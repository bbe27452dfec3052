"""The render benchmark runs, compares like with like, and honours YTEMPIRE_VIDEO_* (tiny size: the figures come from `make bench`)."""
import re, subprocess, sys
from conftest import ROOT, clean_env


def test_render_bench_runs_with_environment_settings(tmp_path):
    # not the defaults (30 fps, constant frame rate): the bench must render what the environment asks for
    env = clean_env(YTEMPIRE_VIDEO_FPS="24", YTEMPIRE_VIDEO_VFR="true")
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "render_bench.py"), "--duration", "10", "--size", "180x320"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]         # exit 1 when the two renders' frames differ
    last = r.stdout.strip().splitlines()[-1]
    values = dict(kv.split("=") for kv in last.split())
    assert list(values) == ["speedup_vs_moviepy_cfr", "speedup_vs_moviepy_vfr", "render_realtime_factor", "peak_rss_mb"], last
    assert all(float(v) > 0 for v in values.values()), last
    duration = float(re.search(r"timeline: ([\d.]+) s at 180x320, 24 fps", r.stderr).group(1))
    m = re.search(r"ytempire cfr: ([\d.]+) s \((\d+) frames encoded.*ytempire vfr: ([\d.]+) s \((\d+) frames encoded.*"
                  r"moviepy: ([\d.]+) s.*production setting: vfr", r.stderr)
    assert m, r.stderr[-2000:]
    cfr_s, cfr_frames, vfr_s, vfr_frames, mp_s = float(m[1]), int(m[2]), float(m[3]), int(m[4]), float(m[5])
    # with imagery most shots move (Ken Burns, parallax, a clip: every frame kept); VFR still drops the cards' holds
    assert abs(cfr_frames - duration * 24) <= 2 and vfr_frames < cfr_frames, (duration, cfr_frames, vfr_frames)
    assert abs(float(values["render_realtime_factor"]) - vfr_s / duration) < 0.002       # Z from the production setting (vfr here)
    assert abs(float(values["speedup_vs_moviepy_cfr"]) - mp_s / cfr_s) < 0.1 * mp_s / cfr_s

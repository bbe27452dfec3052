"""The render benchmark runs, compares like with like, and honours YTEMPIRE_VIDEO_* (tiny size: the figures come from `make bench`)."""
import re, subprocess, sys
from conftest import ROOT, clean_env


def test_render_bench_runs_with_environment_settings(tmp_path):
    # not the defaults (30 fps, constant frame rate): the bench must render what the environment asks for
    env = clean_env(YTEMPIRE_VIDEO_FPS="24", YTEMPIRE_VIDEO_VFR="true")
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "render_bench.py"), "--duration", "6", "--size", "180x320"],
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


def test_e2e_bench_quick(tmp_path):
    "The whole-run benchmark makes a short video in a fresh process and reports every stage, start-up, tracking and e2e_seconds."
    env = clean_env(YTEMPIRE_TRACKING_MLFLOW_URI=f"sqlite:///{tmp_path}/mlruns.db", YTEMPIRE_TRACKING_MLFLOW_ARTIFACTS=str(tmp_path / "mlartifacts"),
                    YTEMPIRE_TRACKING_WANDB_DIR=str(tmp_path), YTEMPIRE_PATHS_LEDGER=str(tmp_path / "ledger.db"))
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "e2e_bench.py"), "--quick", "--work", str(tmp_path / "e2e")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    rows = {l[:16].strip(): l[16:].split() for l in lines if l and not l.startswith(("import", "e2e_seconds", "seconds"))}
    for stage in ("start-up", "10-trends", "11-script", "20-voice", "21-audio", "30-video", "31-thumbnails", "tracking", "rest"):
        assert stage in rows and float(rows[stage][0]) >= 0, (stage, r.stdout)
    wall = float(lines[-1].removeprefix("e2e_seconds="))
    assert lines[-1].startswith("e2e_seconds=") and abs(wall - float(rows["wall"][0])) < 0.1, r.stdout
    assert sum(float(v[0]) for k, v in rows.items() if k != "wall") == __import__("pytest").approx(wall, abs=0.1)   # phases add up
    assert list((tmp_path / "e2e").glob("*-warm1/video.mp4")), "the run's video is where the bench says"

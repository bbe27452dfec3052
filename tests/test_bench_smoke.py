"""The render benchmark still runs (tiny size, not timed: the figures come from `make bench`)."""
import subprocess, sys
from conftest import ROOT, clean_env


def test_render_bench_runs(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "render_bench.py"), "--duration", "10", "--size", "180x320"],
                       cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    keys = [kv.split("=")[0] for kv in last.split()]
    assert keys == ["speedup_vs_moviepy", "render_realtime_factor", "peak_rss_mb"], last
    assert all(float(kv.split("=")[1]) > 0 for kv in last.split())

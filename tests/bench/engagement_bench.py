"""Benchmark (not a timed test): `ytempire engagement predict` on a 10,000-row trending CSV, model load included.
Usage: .venv/bin/python tests/bench/engagement_bench.py [--uri sqlite:////abs/mlruns.db] [--rows 10000]
Without --uri a model is trained first (not timed) into a temporary MLflow database from the bundled data."""
import argparse, os, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", help="MLflow URI holding ytempire-engagement@champion (default: train one into a temp dir)")
    ap.add_argument("--rows", type=int, default=10_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "WANDB_MODE": "offline", "MLFLOW_DISABLE_TELEMETRY": "true",
               "YTEMPIRE_ENGAGEMENT_MLFLOW_URI": a.uri or f"sqlite:///{d}/mlruns.db", "YTEMPIRE_TRACKING_WANDB": "false"}
        if not a.uri:
            subprocess.run([str(BIN / "ytempire"), "engagement", "train", "--epochs", "4", "--data",
                            str(ROOT / "data/trending/2020_US.csv"), str(ROOT / "data/trending/2020_GB.csv")],
                           env=env, check=True, capture_output=True)
        files = sorted((ROOT / "data/trending").glob("2020_*.csv"))
        src = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)
        big = pd.concat([src] * (a.rows // len(src) + 1), ignore_index=True).head(a.rows)
        big["video_id"] = big.video_id + "_" + (big.index // len(src)).astype(str)   # distinct videos per copy
        csv = Path(d, "bench.csv"); big.to_csv(csv, index=False)
        t0 = time.perf_counter()
        r = subprocess.run([str(BIN / "ytempire"), "engagement", "predict", str(csv), "--out", str(Path(d, "pred.csv"))],
                           env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if r.returncode: sys.exit(r.stderr)
        n = len(pd.read_csv(Path(d, "pred.csv")))
        print(f"engagement predict: {a.rows} rows, {n} videos in {dt:.2f} s ({a.rows / dt:.0f} rows/s), model load included; "
              f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()

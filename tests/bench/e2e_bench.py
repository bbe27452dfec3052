"""Whole-run benchmark: `ytempire make` end to end, cold and warm, stage by stage.

Each run is a fresh `ytempire make` process (the installed command, as a user runs it) into a new `--out` folder, from
the repository root (so the engagement champion in `mlruns.db`, the ledger and the MLflow/W&B stores are the ones
`make demo` uses). Two kinds of run:

- **cold**: a new, empty `[paths] cache` folder (YTEMPIRE_PATHS_CACHE: the sentence embeddings of the trending data and
  of keywords, cloud voice lists) and a new run folder (no stage cache). The model files (MiniLM, Piper voices,
  DNSMOS), Python's bytecode and the OS page cache are NOT cleared: dropping the page cache would need root and slow
  the other users of a shared machine; a cold run here is "first run after install on a machine that has read the
  files once".
- **warm**: the cache folder that the cold run filled, kept; a new run folder (so every stage runs again).

Printed per run: wall seconds, start-up (process start to the first stage), each stage's seconds (run.json `stages`),
the time between stages (champion model look-up), metrics + records, tracking (MLflow + W&B) and the rest (run.log
timestamps). Then the import time of the package (`python -c 'import ytempire.pipeline'`) and of `ytempire --help`.
The last line is `e2e_seconds=X`: the median warm wall time.

    python tests/bench/e2e_bench.py                      # the demo topic: 1 cold + 3 warm runs
    python tests/bench/e2e_bench.py --volcanoes          # "How volcanoes work" --aspect 9:16 --duration 60
    python tests/bench/e2e_bench.py --quick              # 15 s video without notes, 1 warm run, no cold run (smoke test)
    python tests/bench/e2e_bench.py --against /tmp/base  # alternate runs with another checkout's package (before/after)
"""
from __future__ import annotations
import argparse, json, os, re, shutil, statistics, subprocess, sys, time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO = ["How coffee roasting works", "--notes", str(ROOT / "examples" / "coffee-roasting.md")]
VOLCANOES = ["How volcanoes work", "--aspect", "9:16", "--duration", "60"]
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (\S+) \[[^\]]*\] (.*)$")


def bench_env(cache: Path, tree: Path | None = None) -> dict:
    "The caller's environment, offline, with `[paths] cache` at `cache` (other YTEMPIRE_* settings of the caller kept)."
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    if tree is not None: env["PYTHONPATH"] = str(tree)          # the package of another checkout (--against)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               YTEMPIRE_PATHS_CACHE=str(cache), PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}")
    return env


def log_times(run_log: Path) -> list[tuple[float, str, str]]:
    "(unix time, logger, message) of each line of a run.log."
    out = []
    for line in run_log.read_text(encoding="utf-8").splitlines():
        if m := LOG_LINE.match(line):
            out.append((datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), m[2], m[3]))
    return out


def phases(t_start: float, t_end: float, out: Path) -> dict[str, float]:
    "Where the wall time of one run went, from run.json and run.log."
    record = json.loads((out / "run.json").read_text())
    lines = log_times(out / "run.log")
    first = next(t for t, _, msg in lines if msg.startswith("stage ") and msg.endswith("running"))
    last_done = max(t for t, name, msg in lines if name == "ytempire.pipeline" and re.search(r" (done|cached) in ", msg))
    p = {"wall": t_end - t_start, "start-up": first - t_start}
    p |= {s["stage"]: s["seconds"] for s in record["stages"]}
    p["between stages"] = (last_done - first) - sum(s["seconds"] for s in record["stages"])
    records = [float(m[1]) for _, _, msg in lines if (m := re.match(r"^records written in ([\d.]+) s", msg))]
    tracked = [float(m[1]) for _, _, msg in lines if (m := re.match(r"^tracked in ([\d.]+) s", msg))]
    if records: p["records"] = sum(records)                        # report.html + run.json (written again once tracked)
    if tracked: p["tracking"] = tracked[-1] - (records[-1] if len(records) > 1 else 0.0)     # MLflow + W&B alone
    p["rest"] = p["wall"] - sum(v for k, v in p.items() if k != "wall")
    return p


def make_once(args: list[str], out: Path, cache: Path, tree: Path | None = None) -> dict[str, float]:
    "One `ytempire make` in a fresh process (with the package of `tree`, default this checkout's); its phases."
    t0 = time.time()
    r = subprocess.run([str(BIN / "ytempire"), "make", *args, "--out", str(out), "--no-progress"], cwd=ROOT,
                       env=bench_env(cache, tree), capture_output=True, text=True, timeout=1800)
    t1 = time.time()
    if r.returncode != 0: sys.exit(f"ytempire make failed ({r.returncode}): {r.stderr.strip()[-1500:]}")
    return phases(t0, t1, out)


def import_seconds(cmd: list[str], repeat: int = 3) -> float:
    "Median wall time of a short command in fresh processes."
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=bench_env(ROOT / ".cache" / "ytempire"), capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def table(runs: dict[str, dict[str, float]]) -> str:
    "Phases as rows, runs as columns."
    keys = list(dict.fromkeys(k for p in runs.values() for k in p))
    head = f"{'seconds':<16}" + "".join(f"{name:>10}" for name in runs)
    rows = [f"{k:<16}" + "".join(f"{p.get(k, float('nan')):>10.2f}" for p in runs.values()) for k in keys]
    return "\n".join([head, *rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volcanoes", action="store_true", help="'How volcanoes work' --aspect 9:16 --duration 60 instead of the demo")
    ap.add_argument("--warm", type=int, default=3, help="warm runs (the median is e2e_seconds)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold run (the warm runs then fill the cache first if it is empty)")
    ap.add_argument("--quick", action="store_true", help="a 15 s video of the topic alone, 1 warm run, no cold run")
    ap.add_argument("--against", metavar="DIR", help="another checkout (e.g. `git worktree add /tmp/base c98ec57`): each warm "
                    "run of this checkout is preceded by one of DIR's, so both see the same machine load")
    ap.add_argument("--work", default=str(ROOT / "build" / "bench" / "e2e"), help="where run folders and the cache go")
    a = ap.parse_args(argv)
    args = list(VOLCANOES if a.volcanoes else DEMO)
    if a.quick: args, a.warm, a.no_cold = [args[0], "--duration", "15"], 1, True      # no notes: they hold ~50 s of material
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    cache = work / "cache"
    load0 = os.getloadavg()[0]
    print(f"e2e bench: ytempire make {' '.join(args)}; {os.cpu_count()} CPUs, load average {load0:.2f}", file=sys.stderr)
    runs = {}
    if not a.no_cold:
        if a.against:
            shutil.rmtree(cache, ignore_errors=True)
            runs["basecold"] = make_once(args, work / f"{stamp}-basecold", cache, Path(a.against).resolve())
        shutil.rmtree(cache, ignore_errors=True)
        runs["cold"] = make_once(args, work / f"{stamp}-cold", cache)
    elif not cache.exists() and not a.quick:
        make_once(args, work / f"{stamp}-fill", cache)             # fills the cache: the runs below are warm
    for i in range(a.warm):
        if a.against:
            runs[f"base{i + 1}"] = make_once(args, work / f"{stamp}-base{i + 1}", cache, Path(a.against).resolve())
            print(f"  base{i + 1}: {runs[f'base{i + 1}']['wall']:.1f} s", file=sys.stderr)
        runs[f"warm{i + 1}"] = make_once(args, work / f"{stamp}-warm{i + 1}", cache)
        print(f"  warm{i + 1}: {runs[f'warm{i + 1}']['wall']:.1f} s", file=sys.stderr)
    print(table(runs))
    imp = import_seconds([sys.executable, "-c", "import ytempire.pipeline"])
    hlp = import_seconds([str(BIN / "ytempire"), "--help"])
    warm = [p["wall"] for k, p in runs.items() if k.startswith("warm")]
    print(f"import ytempire.pipeline: {imp:.2f} s; ytempire --help: {hlp:.2f} s; load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    if a.against:
        base = [p["wall"] for k, p in runs.items() if k.startswith("base") and k != "basecold"]
        print(f"against {a.against}: median warm {statistics.median(base):.1f} s there, {statistics.median(warm):.1f} s here")
    if "basecold" in runs: print(f"against {a.against}: cold {runs['basecold']['wall']:.1f} s there, {runs['cold']['wall']:.1f} s here")
    if "cold" in runs: print(f"cold_seconds={runs['cold']['wall']:.1f}")
    print(f"e2e_seconds={statistics.median(warm):.1f}")


if __name__ == "__main__":
    main()

"""Load test of `ytempire api`'s status endpoint (not a timed test).

    PYTHONPATH=$PWD .venv/bin/python tests/bench/api_bench.py [--clients 50] [--seconds 10] [--busy]

Starts `ytempire api --workers 0` (jobs accepted, none made: the HTTP side alone), submits 20 jobs, then 50 concurrent
clients (one asyncio process, httpx, keep-alive) poll `GET /v1/videos/{id}` over those jobs for N seconds; then the same
load on `GET /health` (no key check, no job lookup: the framework's floor, same server, same clients). Prints requests/s,
p50/p95/p99 latency (client side, so the client's own scheduling is in the figures) and the ratios status / health and
p95 / the 50 ms goal. --busy repeats the status load with one worker making a 30 s video on the same 2 cores (what a
real deployment sees). --broker redis runs all of it with the job queue on a throwaway local Redis
(`[api] broker`; emptied before each server start) instead of SQLite. --soak N submits N 5-second videos to `ytempire api --workers 2` and SIGKILLs a random worker
every --kill-every seconds until every job has finished: the jobs done, failed, the kills, the claims and the wall time.
Last line: `api_status_p95_ms=<n>`.
"""
import argparse, asyncio, os, signal, subprocess, sys, tempfile, time
from contextlib import suppress
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from ytempire.serving import free_port

KEY = "bench-key-0123456789abcdef"
BROKER = {}          # YTEMPIRE_API_BROKER, with --broker redis


def start(workers, root):
    port = free_port()
    env = {**os.environ, "YTEMPIRE_API_KEYS": KEY, "YTEMPIRE_API_RATE_PER_MINUTE": "10000000", "WANDB_MODE": "offline",
           "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])} | BROKER
    if BROKER:                                    # each start gets an empty queue, as with a new SQLite folder
        import redis
        with redis.Redis.from_url(BROKER["YTEMPIRE_API_BROKER"]) as r: r.flushdb()
    code = f"from ytempire.cli import run_command; raise SystemExit(run_command({['api', '--port', str(port), '--workers', str(workers), '--out', str(root)]!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True, cwd=root)
    for _ in range(300):
        with suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200: return port, proc
        time.sleep(0.2)
    raise SystemExit("the API did not start")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try: proc.wait(60)
    except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)


async def load(urls, clients, seconds, headers):
    "50 clients on one asyncio loop (aiohttp: httpx's own overhead capped this machine at ~500 requests/s, the server's figure)."
    import aiohttp
    lat, errors, end = [], 0, time.monotonic() + seconds
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=clients)) as c:
        async def one(i):
            nonlocal errors
            k = i
            while time.monotonic() < end:
                t0 = time.perf_counter()
                async with c.get(urls[k % len(urls)]) as r:
                    await r.read()
                    errors += r.status != 200
                lat.append(time.perf_counter() - t0)
                k += clients
        await asyncio.gather(*(one(i) for i in range(clients)))
    lat.sort()
    q = lambda p: 1000 * lat[min(len(lat) - 1, int(p * len(lat)))]
    return {"n": len(lat), "rps": len(lat) / seconds, "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "errors": errors}


def line(name, r):
    print(f"{name:34s} clients={a.clients} requests={r['n']:6d} errors={r['errors']} rps={r['rps']:7.0f} "
          f"p50={r['p50']:6.1f} ms p95={r['p95']:6.1f} ms p99={r['p99']:6.1f} ms", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--busy", action="store_true", help="also with one worker making a video")
    ap.add_argument("--soak", type=int, default=0, metavar="N", help="also a soak run of N jobs with workers killed at random")
    ap.add_argument("--kill-every", type=float, default=8.0)
    ap.add_argument("--broker", choices=("sqlite", "redis"), default="sqlite", help="the job queue's backend")
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; {a.clients} concurrent clients for {a.seconds:g} s per load; queue on {a.broker}", flush=True)
    if a.broker == "redis":
        from contextlib import ExitStack
        from ytempire.api import local_redis
        stack = ExitStack()
        BROKER["YTEMPIRE_API_BROKER"] = stack.enter_context(local_redis(3600))
    root = Path(tempfile.mkdtemp())
    port, proc = start(0, root)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {KEY}"}
    try:
        ids = [httpx.post(f"{base}/v1/videos", json={"topic": f"Topic {i}", "duration": 10}, headers=auth).json()["id"] for i in range(20)]
        asyncio.run(load([f"{base}/health"], 4, 1, {}))                       # warm up
        st = asyncio.run(load([f"{base}/v1/videos/{i}" for i in ids], a.clients, a.seconds, auth)); line("GET /v1/videos/{id}", st)
        hl = asyncio.run(load([f"{base}/health"], a.clients, a.seconds, {})); line("GET /health (floor)", hl)
    finally:
        stop(proc)
    print(f"status / health: p50 {st['p50'] / hl['p50']:.2f}x, p95 {st['p95'] / hl['p95']:.2f}x, rps {st['rps'] / hl['rps']:.2f}x")
    print(f"status p95 / 50 ms goal: {st['p95'] / 50:.2f}x")
    if a.busy:
        root = Path(tempfile.mkdtemp())
        port, proc = start(1, root)
        base = f"http://127.0.0.1:{port}"
        try:
            jid = httpx.post(f"{base}/v1/videos", json={"topic": "How coffee roasting works", "duration": 30}, headers=auth).json()["id"]
            time.sleep(8)                                          # the worker is past its imports, into the stages
            busy = asyncio.run(load([f"{base}/v1/videos/{jid}"], a.clients, a.seconds, auth)); line("GET /v1/videos/{id}, 1 worker busy", busy)
            print(f"busy / idle status p95: {busy['p95'] / st['p95']:.2f}x; job at {httpx.get(f'{base}/v1/videos/{jid}', headers=auth).json()['stage']}")
        finally:
            stop(proc)
    if a.soak:
        import random
        rng, root = random.Random(1), Path(tempfile.mkdtemp())
        port, proc = start(2, root)
        base, t0, kills = f"http://127.0.0.1:{port}", time.monotonic(), 0
        try:
            ids = [httpx.post(f"{base}/v1/videos", json={"topic": f"Soak topic number {i}", "duration": 5}, headers=auth).json()["id"]
                   for i in range(a.soak)]
            while True:
                states = [httpx.get(f"{base}/v1/videos/{i}", headers=auth).json() for i in ids]
                if all(x["status"] in ("done", "failed") for x in states) or time.monotonic() - t0 > 1800: break
                time.sleep(a.kill_every)
                alive = [w for w in httpx.get(f"{base}/health").json()["workers"] if w["alive"]]
                if alive and any(x["status"] == "running" for x in states):
                    os.kill(rng.choice(alive)["pid"], signal.SIGKILL); kills += 1
            wall = time.monotonic() - t0
            restarts = sum(w["restarts"] for w in httpx.get(f"{base}/health").json()["workers"])
        finally:
            stop(proc)
        done = sum(x["status"] == "done" for x in states)
        print(f"soak: {a.soak} jobs, {kills} workers killed (every {a.kill_every:g} s), {restarts} restarts, "
              f"{sum(x['attempts'] for x in states)} claims, {done} done, {a.soak - done} not done, {wall:.0f} s")
    print(f"api_status_p95_ms={st['p95']:.1f}")
    if a.broker == "redis": stack.close()

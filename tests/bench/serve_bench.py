"""Load test of `ytempire serve` with the packaged SmolLM2-135M model (not a timed test).

    PYTHONPATH=$PWD .venv/bin/python tests/bench/serve_bench.py [--replicas 2] [--requests 16] [--max-tokens 32] [--extras]

Starts `ytempire serve --replicas N`, streams fixed prompts at concurrency 1, 4 and 8 and prints per level: requests,
failed, completion tokens/s (all requests together), time to first token p50/p95 (client side, first content chunk).
Then the same levels with `[serve] engine = llama-cpp` (llama-cpp-python's own server: one request at a time per worker)
as the baseline, and the ratios slots / baseline.
--extras also measures concurrency 4 with threads 2 per worker, n_ctx 512, llama.cpp's prompt cache on, and 4 replicas,
and the quantisation level: the packaged Q4_1 file requantised by llama.cpp to Q4_0, Q8_0 and F16 (speed only: the
weights keep Q4_1's precision, so these files say nothing about the quality of a real Q8_0 or F16 build).
The last line is `serve_p95_ttft_c4_ms=<n>` (the default configuration).
"""
import argparse, asyncio, json, os, signal, subprocess, sys, tempfile, time
from contextlib import suppress
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from ytempire.serving import free_port

PROMPTS = ["Name three colours.", "What is the capital of France?", "Give one tip to sleep better.",
           "Say hello in Spanish.", "What do bees make?", "Name a large ocean.", "What is 2 plus 2?", "Describe rain in one sentence."]


def start(replicas, keys):
    port = free_port()
    ini = Path(tempfile.mkdtemp()) / "serve.ini"
    ini.write_text("[serve]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))
    code = f"from ytempire.cli import run_command; raise SystemExit(run_command({['serve', '--replicas', str(replicas), '--port', str(port), '--config', str(ini)]!r}))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and proc.poll() is None:
        with suppress(httpx.HTTPError):
            r = httpx.get(f"http://127.0.0.1:{port}/health")
            if r.status_code == 200 and r.json()["up"] == replicas: return port, proc, time.monotonic() - t0
        time.sleep(0.2)
    stop(proc); raise SystemExit(f"the server did not come up (exit code {proc.returncode})")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired): proc.wait(30)
    with suppress(ProcessLookupError): os.killpg(proc.pid, signal.SIGKILL)


async def one(client, url, prompt, max_tokens):
    t0, ttft, tokens = time.monotonic(), None, 0
    body = {"model": "local", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True}
    async with client.stream("POST", url, json=body) as r:
        if r.status_code != 200: return None
        async for line in r.aiter_lines():
            if not line.startswith("data: {"): continue
            delta = (json.loads(line[6:])["choices"] or [{}])[0].get("delta") or {}
            if delta.get("content"):
                tokens += 1
                if ttft is None: ttft = time.monotonic() - t0
    return ttft, tokens


async def level(port, concurrency, n, max_tokens):
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120) as client:
        async def task(i):
            async with sem:
                try: return await one(client, url, PROMPTS[i % len(PROMPTS)], max_tokens)
                except httpx.HTTPError: return None
        t0 = time.monotonic()
        res = await asyncio.gather(*(task(i) for i in range(n)))
        wall = time.monotonic() - t0
    ok = [r for r in res if r and r[0] is not None]
    ttfts = sorted(r[0] * 1000 for r in ok)
    pct = lambda q: ttfts[min(len(ttfts) - 1, int(round(q * (len(ttfts) - 1))))] if ttfts else float("nan")
    return dict(concurrency=concurrency, requests=n, failed=n - len(ok), tokens_per_s=sum(r[1] for r in ok) / wall,
                ttft_p50_ms=pct(.5), ttft_p95_ms=pct(.95), wall_s=wall)


def show(label, r):
    print(f"{label:<28} c={r['concurrency']:<2} requests={r['requests']:<3} failed={r['failed']} tokens/s={r['tokens_per_s']:7.1f} "
          f"ttft p50={r['ttft_p50_ms']:6.0f} ms p95={r['ttft_p95_ms']:6.0f} ms wall={r['wall_s']:.1f} s", flush=True)


def requantise(src, ftype_name, out_dir):
    "`src` rewritten by llama.cpp's quantiser as `ftype_name` (Q4_0, Q8_0, F16) in out_dir."
    import ctypes, llama_cpp
    out = Path(out_dir) / f"{Path(src).stem.split('.')[0]}.{ftype_name}.gguf"
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype, p.allow_requantize, p.nthread = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype_name}"), True, os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(p)) != 0: raise SystemExit(f"quantising to {ftype_name} failed")
    return out


def run_levels(label, replicas, keys, requests, max_tokens):
    "Start a server with `keys`, measure concurrency 1, 4 and 8, stop it."
    port, proc, boot = start(replicas, keys)
    print(f"{label}: serve --replicas {replicas} {' '.join(f'{k}={v}' for k, v in keys.items())}: up in {boot:.1f} s", flush=True)
    try:
        asyncio.run(level(port, 2, 2, 4))                                  # warm-up
        results = {c: asyncio.run(level(port, c, requests if c > 1 else max(4, requests // 2), max_tokens)) for c in (1, 4, 8)}
        for r in results.values(): show(label, r)
    finally: stop(proc)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads per worker")
    ap.add_argument("--no-baseline", action="store_true", help="skip the same levels on engine=llama-cpp (llama-cpp-python's server)")
    ap.add_argument("--register", action="store_true", help="register the packaged model in MLflow with these figures (45_registry)")
    ap.add_argument("--extras", action="store_true", help="also threads 2, n_ctx 512, the prompt cache and 4 replicas at concurrency 4")
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; {a.requests} requests per level, {a.max_tokens} tokens each, temperature 0", flush=True)
    base = {"threads": a.threads, "n_ctx": 2048, "max_inflight": 4, "health_interval": 2, "register": "false"}
    results = run_levels("slots (default)", a.replicas, {**base, "engine": "slots"}, a.requests, a.max_tokens)
    if not a.no_baseline:             # the same prompts, tokens, replicas, threads and context; only the worker differs
        baseline = run_levels("llama-cpp server (baseline)", a.replicas, {**base, "engine": "llama-cpp"}, a.requests, a.max_tokens)
        for c in results:
            r, b = results[c], baseline[c]
            print(f"c={c}: slots / llama-cpp server: TTFT p50 {r['ttft_p50_ms'] / b['ttft_p50_ms']:.2f}x, "
                  f"p95 {r['ttft_p95_ms'] / b['ttft_p95_ms']:.2f}x, tokens/s {r['tokens_per_s'] / b['tokens_per_s']:.2f}x", flush=True)
    if a.extras:
        for label, n, keys in [("threads=2 per worker", a.replicas, {"threads": 2}), ("n_ctx=512", a.replicas, {"n_ctx": 512}),
                               ("prompt cache on", a.replicas, {"cache": "true"}), ("replicas=4 threads=1", 4, {"max_inflight": 2})]:
            port, proc, boot = start(n, {**base, **keys})
            try:
                asyncio.run(level(port, 2, 2, 4))
                show(label, asyncio.run(level(port, 4, a.requests, a.max_tokens)))
            finally: stop(proc)
        from ytempire.serving import packaged_model
        with tempfile.TemporaryDirectory() as d:
            for name in ("Q4_0", "Q8_0", "F16"):
                path = requantise(packaged_model(), name, d)
                port, proc, boot = start(a.replicas, {**base, "model": path})
                try:
                    asyncio.run(level(port, 2, 2, 4))
                    for c in (1, 4): show(f"{name} ({path.stat().st_size / 1e6:.0f} MB)", asyncio.run(level(port, c, a.requests, a.max_tokens)))
                finally: stop(proc)
    if a.register:                     # the served model's registry entry carries the figures it was measured with
        from ytempire.config import Settings
        from ytempire.registry import register_llm
        r4 = results[4]
        version = register_llm(Settings(), benchmark={k: float(v) for k, v in r4.items() if isinstance(v, (int, float))})
        print(f"registered the packaged model as version {version} with the concurrency-4 figures")
    print(f"serve_p95_ttft_c4_ms={results[4]['ttft_p95_ms']:.0f}")


if __name__ == "__main__":
    main()

"""`ytempire serve` end to end with the packaged SmolLM2-135M model: OpenAI SDK, streaming, /health, /metrics, two
replicas, a worker killed under load, 429 when saturated, SIGTERM, and the script stage on the local server."""
import os, re, signal, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: scripts/build-llama-wheel.sh, then pip install the wheel")
from ytempire.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
MSG = [{"role": "user", "content": "Name three colours."}]


def metric(port, name, labels=""):
    "The value of one sample in the router's /metrics (0 when absent)."
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    m = re.search(rf"^{re.escape(name + labels)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def settled(port, name, labels="", want=None, timeout=10.0):
    "A counter's value once the router has finished booking the last response (it counts after the body is relayed)."
    end = time.monotonic() + timeout
    while True:
        v = metric(port, name, labels)
        if v == want or time.monotonic() > end: return v
        time.sleep(0.1)


def health(port):
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)


def wait_up(port, n, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            r = health(port)
            if r.status_code == 200 and r.json()["up"] == n: return r.json()
        time.sleep(0.25)
    raise AssertionError(f"router on {port} did not get {n} workers up in {timeout} s")


def alive(pid):
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    with suppress(OSError):   # a zombie is dead
        if Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z": return False
    return True


@contextmanager
def serve(tmp_path, replicas=1, args=(), ini_extra="", **keys):
    "`ytempire serve` through the CLI in its own process group; stopped with SIGTERM, every child killed at the end."
    port = free_port()
    ini = tmp_path / f"serve-{port}.ini"
    keys = {"threads": 1, "n_ctx": 1024, "health_interval": 0.5, "register": "false", **keys}
    ini.write_text("[serve]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + ini_extra)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    code = f"from ytempire.cli import run_command; raise SystemExit(run_command({['serve', '--replicas', str(replicas), '--port', str(port), '--config', str(ini), *args]!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True, cwd=tmp_path)
    try:
        wait_up(port, replicas)
        yield port, proc
    finally:
        if proc.poll() is None: proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired): proc.wait(30)
        with suppress(ProcessLookupError): os.killpg(proc.pid, signal.SIGKILL)   # workers share the group
        with suppress(subprocess.TimeoutExpired): proc.wait(5)


def client(port, **kw):
    from openai import OpenAI
    return OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", timeout=60, **kw)


def test_chat_stream_health_metrics(tmp_path):
    with serve(tmp_path) as (port, proc):
        c = client(port)
        test_models = c.models.list()
        assert [m.id for m in test_models.data] == ["local"]
        r = c.chat.completions.create(model="local", messages=MSG, max_tokens=16, temperature=0)
        assert r.choices[0].message.content.strip() and 0 < r.usage.completion_tokens <= 16
        chunks = list(c.chat.completions.create(model="local", messages=MSG, max_tokens=16, temperature=0, stream=True))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert len(chunks) > 3 and text.strip()
        assert settled(port, "ytempire_serve_requests_total", '{status="200"}', 3) == 3
        h = health(port).json()
        assert h["status"] == "ok" and h["up"] == 1 and h["workers"][0]["served"] == 3
        assert metric(port, "ytempire_serve_ttft_seconds_count") == 1
        assert metric(port, "ytempire_serve_tokens_total") >= r.usage.completion_tokens + 3
        assert settled(port, "ytempire_serve_inflight", want=0) == 0


def test_two_replicas_spread_and_a_killed_worker_loses_no_request(tmp_path):
    with serve(tmp_path, replicas=2, max_inflight=4) as (port, proc):
        c = client(port, max_retries=0)
        ask = lambda i: c.chat.completions.with_raw_response.create(
            model="local", messages=[{"role": "user", "content": f"Count to {i + 5}."}], max_tokens=24, temperature=0)
        with ThreadPoolExecutor(4) as ex: rs = list(ex.map(ask, range(4)))
        assert len({r.headers["x-ytempire-worker"] for r in rs}) == 2        # both replicas served
        victim = health(port).json()["workers"][0]
        with ThreadPoolExecutor(3) as ex:
            futs = [ex.submit(ask, i) for i in range(9)]
            end = time.monotonic() + 15                                        # requests in flight on the victim
            while health(port).json()["workers"][0]["inflight"] == 0 and time.monotonic() < end: time.sleep(0.05)
            assert health(port).json()["workers"][0]["inflight"] > 0
            os.kill(victim["pid"], signal.SIGKILL)
            answers = [f.result().parse() for f in futs]                      # raises if any request failed
        assert all(a.choices[0].message.content is not None for a in answers)
        h = wait_up(port, 2, timeout=60)
        assert h["workers"][0]["restarts"] == 1 and h["workers"][0]["pid"] != victim["pid"]
        assert metric(port, "ytempire_serve_worker_restarts_total") == 1
        assert metric(port, "ytempire_serve_retries_total") >= 1
        assert settled(port, "ytempire_serve_requests_total", '{status="200"}', 13) == 13


def test_saturated_router_answers_429_with_retry_after(tmp_path):
    with serve(tmp_path, max_inflight=1) as (port, proc):
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "local", "messages": [{"role": "user", "content": "Count from 1 to 1000, separated by commas."}],
                "max_tokens": 150, "stream": True, "logit_bias": {"0": -100, "2": -100}}   # no end-of-text: a long stream
        with httpx.stream("POST", url, json=body, timeout=60) as long:
            chunks = long.iter_bytes()
            next(chunks)                                                      # the only worker slot is taken
            assert health(port).json()["workers"][0]["inflight"] == 1
            r = httpx.post(url, json={**body, "stream": False, "max_tokens": 4}, timeout=10)
            assert b"[DONE]" in b"".join(chunks)                             # the first stream was not hurt
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["type"] == "rate_limit_error"
        assert metric(port, "ytempire_serve_requests_total", '{status="429"}') == 1


def test_sigterm_stops_cleanly_without_orphans(tmp_path):
    with serve(tmp_path, replicas=2) as (port, proc):
        pids = [w["pid"] for w in health(port).json()["workers"]]
        assert all(alive(p) for p in pids)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        time.sleep(0.2)
        assert not any(alive(p) for p in pids)
        with pytest.raises(httpx.ConnectError): health(port)


def test_router_over_a_remote_replica(tmp_path):
    "The many-machines set-up: a router with --worker URL routes to another server and needs no model of its own."
    with serve(tmp_path) as (back, _), serve(tmp_path, args=("--worker", f"http://127.0.0.1:{back}/v1", "--model", "/none.gguf")) as (front, _):
        r = client(front).chat.completions.create(model="local", messages=MSG, max_tokens=8, temperature=0)
        assert r.choices[0].message.content
        assert health(front).json()["workers"][0]["pid"] is None
        assert metric(back, "ytempire_serve_tokens_total") == r.usage.completion_tokens   # generated behind the back router


def test_missing_model_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-c", "from ytempire.cli import run_command; raise SystemExit(run_command("
                        "['serve', '--model', '/nonexistent/llama-2-7b.Q4_K_M.gguf']))"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith("error: model file /nonexistent")


def test_script_stage_uses_the_local_server_then_falls_back(tmp_path):
    """`[text] providers = local, offline` with the router as local_base_url: the served SmolLM2-135M writes the script
    scene by scene (a plan, then one JSON-constrained request per scene), every request in the ledger; with the server
    stopped the chain falls back to the offline writer at once and records why."""
    from ytempire.config import Settings
    from ytempire.ledger import Ledger
    from ytempire.schemas import Brief, TrendReport
    from ytempire.scripts import check_script, write_script
    brief = Brief(topic="How coffee roasting works", duration=30)
    with serve(tmp_path, n_ctx=2048) as (port, proc):
        st = Settings(env={}, overrides={"paths.ledger": str(tmp_path / "ledger.db"), "text.providers": "local, offline",
                                         "text.local_base_url": f"http://127.0.0.1:{port}/v1", "text.timeout": 90,
                                         "text.temperature": 0, "retry.attempts": 1, "retry.max_seconds": 5})
        led = Ledger(st.get("paths", "ledger"))
        s = write_script(brief, TrendReport(), st, ledger=led, run_id="served")
        calls = led.calls(run_id="served")
        assert s.provider == "local" and s.fallbacks == [], s.fallbacks
        assert len(calls) >= 2 + len(s.scenes) - 1 and set(calls.provider) == {"local"} and set(calls.outcome) == {"ok"}
        assert calls.cost_usd.sum() == 0 and metric(port, "ytempire_serve_tokens_total") > 100
        assert [x.kind for x in s.scenes] == ["hook"] + ["point"] * (len(s.scenes) - 2) + ["cta"]
        assert check_script(s, brief, st)[0] == [] and all(x.narration[-1] in ".?!" for x in s.scenes)
        assert s.title.lower().startswith("how coffee roasting works")
    # the server is stopped: the chain falls back to the offline writer and records why
    s = write_script(brief, TrendReport(), st, ledger=led, run_id="down")
    assert s.provider == "offline-template" and [(f.failed, f.served_by) for f in s.fallbacks] == [("local", "offline-template")]
    assert "connection" in s.fallbacks[0].reason


def test_make_falls_back_when_the_server_is_killed_mid_script(tmp_path):
    """The seed's model fallback system: `ytempire make` with `[text] providers = local, offline`; once the served model
    has answered the plan, the whole server (router and workers) is killed with SIGKILL. The run finishes, its script
    from the offline writer, the fallback and its reason in run.json, every local request in the ledger."""
    import json, sqlite3
    from conftest import BIN, clean_env
    with serve(tmp_path, n_ctx=2048) as (port, proc):
        ini = tmp_path / "make.ini"
        ini.write_text(f"[paths]\nledger = {tmp_path / 'ledger.db'}\n[text]\nproviders = local, offline\n"
                       f"local_base_url = http://127.0.0.1:{port}/v1\ntimeout = 30\n[retry]\nattempts = 2\nmax_seconds = 4\n")
        make = subprocess.Popen([str(BIN / "ytempire"), "make", "How coffee roasting works", "--duration", "12", "--config", str(ini),
                                 "--out", str(tmp_path / "run")], cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline, answered = time.monotonic() + 240, 0
        while time.monotonic() < deadline and make.poll() is None and not answered:
            with suppress(sqlite3.Error), sqlite3.connect(f"file:{tmp_path / 'ledger.db'}?mode=ro", uri=True) as db:
                answered = db.execute("select count(*) from calls where provider = 'local' and outcome = 'ok'").fetchone()[0]
            time.sleep(0.1)
        assert answered, "the served model never answered the plan"
        os.killpg(proc.pid, signal.SIGKILL)                               # the router and every worker, mid-script
        out, err = make.communicate(timeout=600)
    assert make.returncode == 0, err[-2000:]
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["providers"]["text"] == "offline-template"
    fb = [f for f in rec["fallbacks"] if f["capability"] == "text"]
    assert [(f["failed"], f["served_by"]) for f in fb] == [("local", "offline-template")] and "connection" in fb[0]["reason"]
    local = [c for c in rec["costs"] if c["provider"] == "local"]
    assert [c["outcome"] for c in local][0] == "ok" and local[-1]["outcome"] != "ok"      # served, then refused
    assert (tmp_path / "run" / "video.mp4").stat().st_size > 0


def test_serve_registers_the_served_model(tmp_path):
    "`[serve] register = true`: the router gives the GGUF it serves a registry version (its sha256) while the workers load."
    import mlflow
    from ytempire.registry import sha256_file
    from ytempire.serving import packaged_model
    db = tmp_path / "store" / "mlruns.db"
    db.parent.mkdir()
    with serve(tmp_path, register="true", ini_extra=f"[tracking]\nmlflow_uri = sqlite:///{db}\n"):
        pass                                          # up, then SIGTERM: the stop waits for the registration to finish
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    mv = client.get_model_version("ytempire-llm", "1")
    assert mv.tags["sha256"] == sha256_file(packaged_model()) and mv.tags["quantisation"] == "Q4_1"
    assert client.get_registered_model("ytempire-llm").aliases == {"champion": 1}

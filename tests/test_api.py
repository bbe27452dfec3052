"""`ytempire api` end to end: the real server and two job workers; three short videos submitted over HTTP, workers
killed with SIGKILL while they make them (the soak: every job still finishes, resumed from its stage cache), the
video downloaded; keys, SIGTERM, and a missing key in one line."""
import json, os, random, signal, subprocess, time
from contextlib import suppress

import httpx

from conftest import BIN, clean_env, ffprobe

KEY = "test-api-key-0123456789abcdef"
TOPICS = ["Why cats purr", "How volcanoes erupt", "How solar panels work"]


def free_port():
    from ytempire.serving import free_port as fp
    return fp()


def wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with suppress(httpx.HTTPError):
            v = cond()
            if v: return v
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_api_jobs_survive_killed_workers(tmp_path):
    port = free_port()
    env = clean_env(YTEMPIRE_API_KEYS=f"{KEY},another-key-0123456789abcdef", YTEMPIRE_API_LEASE="5")
    proc = subprocess.Popen([str(BIN / "ytempire"), "api", "--port", str(port), "--workers", "2", "--out", str(tmp_path / "api")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {KEY}"}
    try:
        health = wait(lambda: httpx.get(f"{base}/health", timeout=2).json(), 60, "the API")
        assert len(health["workers"]) == 2
        assert httpx.post(f"{base}/v1/videos", json={"topic": "x"}, timeout=5).status_code == 401
        ids = [httpx.post(f"{base}/v1/videos", json={"topic": t, "duration": 5, "aspect": "9:16"}, headers=auth, timeout=5).json()["id"]
               for t in TOPICS]
        status = lambda i: httpx.get(f"{base}/v1/videos/{i}", headers=auth, timeout=5).json()
        rng, kills = random.Random(7), 0
        while kills < 2:                               # kill a worker in the middle of a video, twice
            wait(lambda: [s for s in map(status, ids) if s["status"] == "running" and 1 <= s["stages_done"] < 8], 300,
                           "a job in the middle of its stages")
            alive = [w for w in httpx.get(f"{base}/health", timeout=5).json()["workers"] if w["alive"]]
            os.kill(rng.choice(alive)["pid"], signal.SIGKILL)
            kills += 1
            wait(lambda: all(w["alive"] for w in httpx.get(f"{base}/health", timeout=5).json()["workers"]), 30, "the worker's restart")
        final = wait(lambda: (lambda ss: ss if all(s["status"] in ("done", "failed") for s in ss) else None)(list(map(status, ids))),
                     600, "every job to finish")
        assert [s["status"] for s in final] == ["done"] * 3, final
        assert sum(s["attempts"] for s in final) >= 3 + 1            # at least one job was claimed again after a kill
        assert sum(w["restarts"] for w in httpx.get(f"{base}/health", timeout=5).json()["workers"]) == 2
        r = httpx.get(f"{base}/v1/videos/{ids[0]}/video.mp4", headers=auth, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        (tmp_path / "dl.mp4").write_bytes(r.content)
        assert float(ffprobe(tmp_path / "dl.mp4")["format"]["duration"]) > 4
        other = {"Authorization": "Bearer another-key-0123456789abcdef"}
        assert httpx.get(f"{base}/v1/videos/{ids[0]}", headers=other, timeout=5).status_code == 404
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'ytempire_api_jobs{status="done"} 3.0' in metrics and "ytempire_api_workers_alive 2.0" in metrics
        for i, s in zip(ids, final):               # each job's run is complete and its own
            rec = json.loads((tmp_path / "api" / "jobs" / i / "run.json").read_text())
            assert rec["brief"]["topic"] == TOPICS[ids.index(i)] and s["outputs"]["video.mp4"].endswith("/video.mp4")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert KEY not in err and KEY not in out
    for log in (tmp_path / "api" / "workers").glob("*.log"):
        assert KEY not in log.read_text(errors="replace")


def test_api_without_keys_is_one_line(tmp_path):
    r = subprocess.run([str(BIN / "ytempire"), "api", "--port", str(free_port())], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: no API keys: set YTEMPIRE_API_KEYS")


def test_api_on_a_redis_broker(tmp_path):
    "[api] broker = redis://…: the queue on a real Redis (a throwaway one on loopback); a worker SIGKILLed mid-video, the job done."
    import redis
    from ytempire.api import local_redis
    with local_redis(600) as url:
        port = free_port()
        env = clean_env(YTEMPIRE_API_KEYS=KEY, YTEMPIRE_API_LEASE="5", YTEMPIRE_API_BROKER=url)
        proc = subprocess.Popen([str(BIN / "ytempire"), "api", "--port", str(port), "--workers", "1", "--out", str(tmp_path / "api")],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {KEY}"}
        try:
            health = wait(lambda: httpx.get(f"{base}/health", timeout=2).json(), 60, "the API")
            assert health["broker"] == "redis" and health["queue"] == {"queued": 0, "running": 0, "done": 0, "failed": 0}
            jid = httpx.post(f"{base}/v1/videos", json={"topic": TOPICS[0], "duration": 5, "aspect": "9:16"}, headers=auth, timeout=5).json()["id"]
            status = lambda: httpx.get(f"{base}/v1/videos/{jid}", headers=auth, timeout=5).json()
            wait(lambda: (lambda s: s["status"] == "running" and 1 <= s["stages_done"] < 8)(status()), 300, "the job in the middle of its stages")
            os.kill(httpx.get(f"{base}/health", timeout=5).json()["workers"][0]["pid"], signal.SIGKILL)
            final = wait(lambda: (lambda s: s if s["status"] in ("done", "failed") else None)(status()), 400, "the job to finish")
            assert final["status"] == "done" and final["attempts"] == 2, final
            r = httpx.get(f"{base}/v1/videos/{jid}/video.mp4", headers=auth, timeout=30)
            assert r.status_code == 200 and len(r.content) > 10_000
            with redis.Redis.from_url(url, decode_responses=True) as db:   # the queue lives in Redis, not in an SQLite file
                assert db.hget(f"ytempire:job:{jid}", "status") == "done" and db.zcard("ytempire:done") == 1
            assert not (tmp_path / "api" / "jobs.db").exists()
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
    r = subprocess.run([str(BIN / "ytempire"), "api", "--port", str(free_port())], cwd=tmp_path, capture_output=True, text=True,
                       env=clean_env(YTEMPIRE_API_KEYS=KEY, YTEMPIRE_API_BROKER=url), timeout=60)   # that Redis is gone now
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith(f"error: cannot reach the Redis broker at {url}"), r.stderr

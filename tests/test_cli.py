"""The `ytempire make` contract: outputs, tracking, secrets, resume, and one-line errors on bad input."""
import json, os, re, signal, subprocess, time
from pathlib import Path
import pytest
from conftest import BIN, clean_env, ytempire, ffprobe

SECRET = "sk-test-secret-value"


# ---------------------------------------------------------------- bad input: one line, non-zero, nothing written

def _bad(tmp_path, *args, env=None, out=None):
    out = out or tmp_path / "run"
    r = ytempire("make", *args, "--out", out, cwd=tmp_path, env=env)
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert not Path(out).exists() or not any(Path(out).iterdir()), "a half-written run directory was left behind"
    return lines[0]


@pytest.mark.parametrize("args,expect", [
    (("",), "topic is empty"),
    (("   ",), "topic is empty"),
    (("x" * 501,), "over the 500 allowed"),
    (("Coffee", "--aspect", "4:3"), "unknown aspect '4:3'; use one of 16:9, 9:16, 1:1"),
    (("Coffee", "--duration", "0"), "between 5 and 1800"),
    (("Coffee", "--duration", "-3"), "between 5 and 1800"),
    (("Coffee", "--duration", "1801"), "between 5 and 1800"),
    (("Coffee", "--duration", "soon"), "not a number of seconds"),
    (("Coffee", "--language", "xx"), "language 'xx'"),
    (("Coffee", "--template", "poem"), "unknown template 'poem'"),
    (("Coffee", "--notes", "/nonexistent/notes.md"), "notes file /nonexistent/notes.md does not exist"),
    (("Coffee", "--budget", "-1"), "must be 0 or more"),
])
def test_bad_input(tmp_path, args, expect):
    assert expect in _bad(tmp_path, *args)


def test_unwritable_out(tmp_path):
    assert "not writable" in _bad(tmp_path, "Coffee", out="/proc/ytempire-run")
    (tmp_path / "afile").write_text("x")
    assert "inside the file" in _bad(tmp_path, "Coffee", out=tmp_path / "afile" / "run")


def test_malformed_config(tmp_path):
    cfg = tmp_path / "mine.ini"
    cfg.write_text("[video\npreset = fast\n")
    line = _bad(tmp_path, "Coffee", "--config", cfg)
    assert "is malformed" in line and "key = value" in line
    cfg.write_text("[video]\npresett = fast\n")
    assert "unknown key 'presett' in [video]" in _bad(tmp_path, "Coffee", "--config", cfg)
    env = clean_env(YTEMPIRE_CONFIG=tmp_path / "missing.ini")
    assert "does not exist" in _bad(tmp_path, "Coffee", env=env)


def test_missing_ffmpeg(tmp_path):
    line = _bad(tmp_path, "Coffee", env=clean_env(YTEMPIRE_TOOLS_FFMPEG="/nonexistent/ffmpeg"))
    assert "ffmpeg not found" in line and "apt-get install ffmpeg" in line


def test_not_utf8_notes(tmp_path):
    notes = tmp_path / "notes.md"; notes.write_bytes(b"\xff\xfe\x00bad")
    assert "not UTF-8" in _bad(tmp_path, "Coffee", "--notes", notes)


# ---------------------------------------------------------------- the contract, on one 60 s run

def test_make_contract(made_run):
    work, r = made_run
    run = work / "run"
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == str(run)
    for f in ("video.mp4", "subtitles.srt", "thumbnail.png", "run.json", "report.html"):
        assert (run / f).is_file(), f
    info = ffprobe(run / "video.mp4")
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (v["codec_name"], v["width"], v["height"]) == ("h264", 1920, 1080)
    assert (a["codec_name"], a["channels"]) == ("aac", 2)
    assert 54 <= float(info["format"]["duration"]) <= 66


def test_subtitles_follow_narration(made_run):
    import pysubs2
    from ytempire.pipeline import load_run
    work, _ = made_run
    record, parts = load_run(work / "run")
    subs = pysubs2.load(str(work / "run" / "subtitles.srt"))
    starts = [e.start for e in subs]
    assert starts == sorted(starts) and all(a.end <= b.start for a, b in zip(subs, subs[1:]))
    words = parts.narration.words
    assert subs[0].start / 1000 <= words[0].start + 0.05 and subs[-1].end / 1000 >= words[-1].end - 0.05
    text = " ".join(e.plaintext.replace("\n", " ") for e in subs).split()
    assert text == [w.text for w in words]


def test_thumbnail_and_record(made_run):
    from PIL import Image
    from ytempire.schemas import RunRecord
    work, _ = made_run
    run = work / "run"
    assert Image.open(run / "thumbnail.png").size == (1280, 720) and (run / "thumbnail.png").stat().st_size < 2_000_000
    rec = RunRecord.model_validate_json((run / "run.json").read_text(), context={"root": str(run)})
    assert rec.providers["text"] == "offline-template"
    stage_quality = json.loads((run / "stages" / "12-quality" / "output.json").read_text())["output"]
    assert rec.quality.model_dump(mode="json") == stage_quality and rec.metrics["quality.overall"] == rec.quality.overall
    assert {s.stage for s in rec.stages} >= {"11-script", "20-voice", "30-video"}
    assert -15 <= rec.metrics["audio.lufs"] <= -13
    html = (run / "report.html").read_text()
    assert "data:video/mp4;base64," in html and rec.brief.topic in html


def test_tracked_in_mlflow_and_wandb(made_run):
    import mlflow
    work, _ = made_run
    rec = json.loads((work / "run" / "run.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work}/mlruns.db")
    run = client.get_run(rec["mlflow_run_id"])
    assert run.data.params["brief.topic"] == "How coffee roasting works"
    assert run.data.metrics == pytest.approx(rec["metrics"])          # every number of run.json, tracked as it is
    assert run.info.status == "FINISHED"
    from urllib.parse import urlparse
    logged = Path(urlparse(run.info.artifact_uri).path) / "run.json"
    assert logged.is_relative_to(work / "mlartifacts") and json.loads(logged.read_text()) == rec
    wb_id = rec["wandb_run_path"].rsplit("/", 1)[-1]
    runs = list((work / "wandb").glob(f"offline-run-*-{wb_id}"))
    assert len(runs) == 1
    log = (runs[0] / f"run-{wb_id}.wandb").read_bytes()          # the offline run's record: params and metrics in it
    assert b"brief.topic" in log and b"How coffee roasting works" in log and b"quality.overall" in log


def test_secret_never_written(made_run):
    work, _ = made_run
    leaks = []
    for base in ("run", "mlruns.db", "mlartifacts", "wandb", "ledger.db"):
        p = work / base
        for f in ([p] if p.is_file() else p.rglob("*")):
            if f.is_file() and SECRET.encode() in f.read_bytes(): leaks.append(str(f))
    assert not leaks


def test_report_command(made_run, tmp_path):
    import shutil
    work, _ = made_run
    run = shutil.copytree(work / "run", tmp_path / "run")              # the shared run stays as it is
    (run / "report.html").unlink()
    r = ytempire("report", run, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == run / "report.html"
    rec = json.loads((run / "run.json").read_text())
    html = (run / "report.html").read_text()
    assert rec["mlflow_run_id"] in html and "How coffee roasting works" in html and "data:video/mp4;base64," in html


# ---------------------------------------------------------------- kill mid-run, then resume

def test_resume_after_kill(tmp_path):
    out = tmp_path / "run"
    args = [str(BIN / "ytempire"), "make", "Why the sky is blue", "--duration", "15", "--aspect", "9:16", "--out", str(out), "--no-progress"]
    p = subprocess.Popen(args, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    marker = out / "stages" / "21-audio" / "output.json"
    deadline = time.time() + 300
    while not marker.exists() and time.time() < deadline and p.poll() is None: time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert marker.exists(), "the run never reached the audio stage"
    assert not (out / "run.json").exists() and not (out / "video.mp4").exists()
    done = {d.name: (d / "output.json").read_bytes() for d in (out / "stages").iterdir() if (d / "output.json").exists()}
    assert {"10-trends", "11-script", "20-voice", "21-audio"} <= set(done)
    r = ytempire("make", "Why the sky is blue", "--duration", "15", "--aspect", "9:16", "--out", out, "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((out / "run.json").read_text())
    cached = {s["stage"] for s in rec["stages"] if s["cached"]}
    assert set(done) <= cached, (set(done), cached)
    for name, blob in done.items(): assert (out / "stages" / name / "output.json").read_bytes() == blob, name
    assert not list(out.rglob("*.part")), "temporary files were left behind"


# ---------------------------------------------------------------- cloud text provider rate-limited: fallback (made_run)

def test_rate_limited_openai_falls_back(made_run):
    import sqlite3
    work, r = made_run
    assert r.returncode == 0, r.stderr[-2000:]
    seen = json.loads((work / "mock-requests.json").read_text())
    reqs = seen["requests"]
    assert [q["path"] for q in reqs] == ["/v1/chat/completions"] * 3 and all(q["status"] == 429 for q in reqs)
    assert all(b["time"] - a["time"] >= 0.95 for a, b in zip(reqs, reqs[1:]))       # Retry-After: 1 honoured
    rec = json.loads((work / "run" / "run.json").read_text())
    assert [(f["failed"], f["served_by"]) for f in rec["fallbacks"]] == [("openai", "offline-template")]
    assert rec["fallbacks"][0]["reason"].startswith("rate_limited")
    assert [c["outcome"] for c in rec["costs"] if c["provider"] == "openai"] == ["rate_limited"] * 3
    script_s = next(s["seconds"] for s in rec["stages"] if s["stage"] == "11-script")
    assert script_s < 30, script_s                       # the fallback adds seconds, not minutes
    with sqlite3.connect(work / "ledger.db") as db:
        rows = db.execute("SELECT provider, outcome FROM calls WHERE run_id = ? AND capability = 'text' ORDER BY id", (rec["run_id"],)).fetchall()
    assert rows == [("openai", "rate_limited")] * 3 + [("offline-template", "ok")]
    prom = (work / "run" / "metrics.prom").read_text()
    assert 'ytempire_provider_calls_total{capability="text",outcome="rate_limited",provider="openai"} 3.0' in prom
    meta = json.loads((work / "run" / "metadata.json").read_text())
    assert 10 <= len(meta["title"]) <= 100 and "coffee roasting" in meta["title"].lower()
    assert "0:00" in meta["description"] and meta["tags"] and 1 <= len(meta["hashtags"]) <= 3
    c = ytempire("costs", cwd=work, env=clean_env())
    assert c.returncode == 0 and "openai" in c.stdout and "offline-template" in c.stdout, c.stderr
    day = [l for l in c.stdout.splitlines() if " openai " in f" {l} "][0].split()
    assert day[2:6] == ["3", "0", "3", "0"], day            # calls, ok, failed, refused


def test_costs_since_and_bad_date(tmp_path):
    r = ytempire("costs", "--since", "2999-01-01", cwd=tmp_path)
    assert r.returncode == 0 and "no provider calls" in r.stdout
    r = ytempire("costs", "--since", "yesterday", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "YYYY-MM-DD" in r.stderr


# ---------------------------------------------------------------- budgets: a paid request that does not fit never leaves

def test_make_budget_too_small_falls_back(tmp_path):
    from mockapi import MockAPI
    with MockAPI(max_seconds=300) as m:
        env = clean_env(OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=m.openai_base, YTEMPIRE_TRACKING_ENABLED="false")
        r = ytempire("make", "Why the sky is blue", "--duration", "10", "--budget", "0.0001", "--out", tmp_path / "run",
                     "--no-progress", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        assert m.count() == 0
        rec = json.loads((tmp_path / "run" / "run.json").read_text())
        assert rec["brief"]["topic"] and rec["providers"]["text"] == "offline-template"
        assert rec["fallbacks"][0]["failed"] == "openai" and rec["fallbacks"][0]["reason"].startswith("budget: run budget")
        assert [c["outcome"] for c in rec["costs"] if c["provider"] == "openai"] == ["budget"] and rec["metrics"]["run.cost_usd"] == 0
        env["YTEMPIRE_TEXT_PROVIDERS"] = "openai"
        line = _bad(tmp_path, "Why the sky is blue", "--duration", "10", "--budget", "0.0001", env=env, out=tmp_path / "run2")
        assert "budget $0.0001 is too small for one openai call" in line
        assert m.count() == 0


def test_paid_provider_without_key(tmp_path):
    line = _bad(tmp_path, "Coffee", env=clean_env(YTEMPIRE_TEXT_PROVIDERS="anthropic"))
    assert "no API key; set ANTHROPIC_API_KEY" in line


# ---------------------------------------------------------------- ytempire script, offline, every language

SCRIPT_TOPICS = {"en": "How coffee roasting works", "es": "Cómo se tuesta el café", "fr": "Comment torréfier le café",
                 "de": "Wie Kaffeerösten funktioniert", "pt": "Como funciona a torra do café", "hi": "कॉफ़ी कैसे भूनी जाती है",
                 "ja": "コーヒー焙煎の仕組み"}


@pytest.mark.parametrize("lang", list(SCRIPT_TOPICS))
def test_script_command_json(tmp_path, lang):
    from ytempire.schemas import Script
    from ytempire.scripts import PROMPTS
    template = list(PROMPTS)[list(SCRIPT_TOPICS).index(lang) % len(PROMPTS)]
    r = ytempire("script", SCRIPT_TOPICS[lang], "--language", lang, "--template", template, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-1500:]
    s = Script.model_validate_json(r.stdout)
    assert s.language == lang and s.template == template and s.provider == "offline-template"
    assert s.scenes[0].kind == "hook" and s.scenes[-1].kind == "cta" and len(s.title) <= 100
    assert s.prompt_version == f"{template}@1"
    native = {"hi": r"[\u0900-\u097f]", "ja": r"[\u3040-\u30ff\u4e00-\u9fff]"}.get(lang)
    if native: assert len(re.findall(native, s.narration)) > 50, s.narration[:200]


def test_effects_lists_transitions_effects_and_grades(tmp_path):
    "`ytempire effects` names what [video] transition, grade, vignette, grain and fill accept."
    r = ytempire("effects", "--json", cwd=tmp_path, env=clean_env())
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    kinds = {k: [x["name"] for x in rows if x["kind"] == k] for k in ("transition", "effect", "grade")}
    assert len(kinds["transition"]) >= 12 and {"fade", "whip", "zoomblend", "blinds"} <= set(kinds["transition"])
    assert {"vignette", "grain", "blur", "grade"} <= set(kinds["effect"]) and {"warm", "mono"} <= set(kinds["grade"])
    assert all(x["description"] for x in rows)
    text = ytempire("effects", cwd=tmp_path, env=clean_env()).stdout
    assert "zoomblend" in text and "[auto: " in text

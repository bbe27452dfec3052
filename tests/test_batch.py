"""`ytempire batch`: five short topics two at a time, the batch killed (SIGKILL) after two videos, then resumed by
rerunning the same command; and a bad CSV refused in one line before anything runs."""
import json, os, signal, subprocess, time
from pathlib import Path

from conftest import BIN, clean_env, ytempire

TOPICS = ["How coffee roasting works", "Why cats purr", "How volcanoes erupt", "How solar panels work", "Why the sky is blue"]


def batch_json(out: Path) -> dict:
    try: return json.loads((out / "batch.json").read_text())
    except (OSError, json.JSONDecodeError): return {"rows": []}


def alive_makes(out: Path) -> list[str]:
    "Processes still making a video of this batch (a killed batch must not leave orphans holding its runs)."
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try: cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError: continue
            if " make " in cmd and str(out) in cmd and (p / "stat").read_text().split(")")[1].split()[0] != "Z": found.append(cmd)
    return found


def test_batch_killed_then_resumed(tmp_path):
    csv = tmp_path / "topics.csv"
    csv.write_text("topic,duration,aspect\n" + "".join(f"{t},5,{'9:16' if i % 2 else '16:9'}\n" for i, t in enumerate(TOPICS)))
    out = tmp_path / "batch"
    cmd = [str(BIN / "ytempire"), "batch", str(csv), "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(r["status"] == "done" for r in batch_json(out)["rows"]) >= 2: break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    os.kill(proc.pid, signal.SIGKILL)                 # no handler runs: what a crash or an OOM kill does
    proc.wait(10)
    for _ in range(60):                               # its videos in flight get SIGTERM (PR_SET_PDEATHSIG) and stop
        if not alive_makes(out): break
        time.sleep(0.5)
    assert alive_makes(out) == []
    before = {r["slug"]: r["status"] for r in batch_json(out)["rows"]}
    assert sum(s == "done" for s in before.values()) >= 2 and sum(s == "done" for s in before.values()) < 5, before
    cached = {p.relative_to(out): p.stat().st_mtime_ns for p in out.glob("*/stages/*/output.json")
              if before[p.parts[len(out.parts)]] != "done"}           # stages the unfinished videos had finished

    r = ytempire("batch", csv, "--out", out, "--jobs", "2", cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = batch_json(out)["rows"]
    assert [x["topic"] for x in rows] == TOPICS and {x["status"] for x in rows} == {"done"}
    assert [x["made"] for x in rows if before[x["slug"]] == "done"] == ["earlier"] * sum(s == "done" for s in before.values())
    assert all(x["made"] == "now" for x in rows if before[x["slug"]] != "done")
    assert all((out / k).stat().st_mtime_ns == v for k, v in cached.items())     # resumed from the stage cache, not redone
    summary = batch_json(out)["summary"]
    assert summary["done"] == 5 and summary["failed"] == 0 and summary["cost_usd"] == 0
    for x in rows:
        run = json.loads((out / x["dir"] / "run.json").read_text())
        assert run["brief"]["topic"] == x["topic"] and x["video_seconds"] > 4 and x["quality"] > 0
    assert "Why cats purr" in r.stdout and "batch.json" in r.stdout.splitlines()[-1]
    page = (out / "batch.html").read_text()
    assert "5 done, 0 failed" in page and page.count("/thumbnail.png") == 5


def test_bad_csv_is_one_line_and_runs_nothing(tmp_path):
    csv = tmp_path / "topics.csv"
    csv.write_text("topic,duration\nHow coffee roasting works,20\nWhy cats purr,soon\n")
    r = ytempire("batch", csv, "--out", tmp_path / "batch", cwd=tmp_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == "error: topics file topics.csv row 2: duration 'soon' is not a number of seconds"
    assert not (tmp_path / "batch").exists()

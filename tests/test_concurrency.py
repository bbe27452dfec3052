"""Runs at once: four `ytempire script` processes against one loopback OpenAI server and one daily quota that fits two
calls. The quota check and the hold on it are one SQLite write transaction (03_ledger's reservations), so exactly two
processes are served by OpenAI and two fall back, and every run keeps its ledger record."""
import json, re, subprocess
from conftest import BIN, clean_env
from mockapi import MockAPI
from test_providers import BRIEF, payload
from ytempire.config import Settings
from ytempire.ledger import Ledger
from ytempire.schemas import TrendReport
from ytempire.scripts import write_script


def upper_bound(tmp_path) -> int:
    "The tokens one OpenAI script call may bill (input + max output), as the guard computes it: read from a refusal."
    st = Settings(env={"OPENAI_API_KEY": "sk-test-openai-key"},
                  overrides={"paths.ledger": str(tmp_path / "probe.db"), "quotas.openai": 1, "text.providers": "openai, offline"})
    s = write_script(BRIEF, TrendReport(), st, ledger=Ledger(tmp_path / "probe.db"), run_id="probe")
    return int(re.search(r"may need ([\d,]+)", s.fallbacks[0].reason).group(1).replace(",", ""))


def test_four_runs_one_quota_that_fits_two(tmp_path):
    est = upper_bound(tmp_path)
    ledger = tmp_path / "shared" / "ledger.db"
    # each call bills exactly its upper bound and takes 4 s, so all four checks happen while the first calls are in
    # flight; a quota of 2.5 calls fits two whatever the timing, and without holds all four would pass the check
    usage = {"prompt_tokens": est - 100, "completion_tokens": 100}
    with MockAPI(default=("timeout", 4, ("ok", payload(), usage)), max_seconds=120) as m:
        env = clean_env(OPENAI_API_KEY="sk-test-openai-key", OPENAI_BASE_URL=m.openai_base, YTEMPIRE_TEXT_PROVIDERS="openai, offline",
                        YTEMPIRE_QUOTAS_OPENAI=str(int(est * 2.5)), YTEMPIRE_PATHS_LEDGER=str(ledger), YTEMPIRE_RETRY_ATTEMPTS="1",
                        YTEMPIRE_TEXT_TIMEOUT="30")
        procs = [subprocess.Popen([str(BIN / "ytempire"), "script", BRIEF.topic, "--duration", "30", "--json"], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1][-500:] for o in outs]
    scripts = [json.loads(o[0]) for o in outs]
    assert sorted(s["provider"] for s in scripts) == ["offline-template", "offline-template", "openai", "openai"]
    assert m.count() == 2                                                  # the refused runs sent nothing
    for s in scripts:
        if s["provider"] != "openai": assert s["fallbacks"][0]["reason"].startswith("quota: openai daily quota")
    calls = Ledger(ledger).calls()
    per_run = calls[calls.provider == "openai"].groupby("run_id").outcome.apply(list)
    assert len(per_run) == 4 and sorted(per_run.tolist()) == [["ok"], ["ok"], ["quota"], ["quota"]]   # no run lost its record
    assert Ledger(ledger).usage("openai") == 2 * est <= est * 2.5
    import sqlite3
    assert sqlite3.connect(ledger).execute("SELECT COUNT(*) FROM reservations").fetchone()[0] == 0   # every hold settled

"""Shared helpers for ytempire's pytest suite (integration, faults, CLI, notebooks)."""
import json, os, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def clean_env(**extra) -> dict:
    "An environment for subprocesses: offline tracking, no stray keys or ytempire settings from the caller."
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTEMPIRE_") and not k.endswith("_API_KEY")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
               # no engagement model unless a test registers one: a developer's `make demo` model must not change results
               YTEMPIRE_ENGAGEMENT_MLFLOW_URI="sqlite:////nonexistent/ytempire-tests/mlruns.db")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def ytempire(*args, cwd, env=None, timeout=900, **popen):
    "Run the installed `ytempire` command; returns CompletedProcess with text output."
    return subprocess.run([str(BIN / "ytempire"), *map(str, args)], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout, **popen)


def ffprobe(path) -> dict:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                        "stream=codec_type,codec_name,width,height,sample_rate,channels:format=duration",
                        "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.fixture(scope="session")
def made_run(tmp_path_factory):
    """One 60 s default run through the CLI, in its own working directory, with a fake OpenAI key set and
    OPENAI_BASE_URL at a loopback server that answers every request 429 (Retry-After: 1): the run must fall back to
    the offline writer. What the server saw is saved in mock-requests.json."""
    from mockapi import MockAPI
    work = tmp_path_factory.mktemp("e2e")
    with MockAPI(default=("429", 1), max_seconds=600) as m:
        env = clean_env(OPENAI_API_KEY="sk-test-secret-value", OPENAI_BASE_URL=m.openai_base)
        t0 = time.monotonic()
        r = ytempire("make", "How coffee roasting works", "--notes", ROOT / "examples" / "coffee-roasting.md",
                     "--out", work / "run", "--no-progress", cwd=work, env=env)
        seen = [{"path": q["path"], "time": q["time"], "status": q.get("status")} for q in m.requests]
    (work / "mock-requests.json").write_text(json.dumps({"requests": seen, "seconds": time.monotonic() - t0}))
    return work, r


@pytest.hookimpl(tryfirst=True)            # before xdist reads the marks
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`), the tests sharing one of our module- or session-scoped fixtures (a made
    video, a trained model) run on one worker, so the fixture is built once rather than once per worker."""
    for item in items:
        shared = sorted(name for name, defs in item._fixtureinfo.name2fixturedefs.items()
                        if defs[-1].scope != "function" and defs[-1].func.__module__.startswith(("conftest", "test_")))
        if shared: item.add_marker(pytest.mark.xdist_group(shared[0]))

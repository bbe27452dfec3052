"""Records tell the truth and survive tracking: three `ytempire make` started at once in a fresh folder all finish with
run.json, report.html and their own MLflow run (the store is created once, under a lock); retraining the engagement
model rewrites and rescores a resumed run; a half-migrated store is repaired or refused in one line."""
import json, logging, logging.handlers, sqlite3, subprocess, sys
import pytest
from conftest import BIN, clean_env

TOPIC = "How coffee roasting works"
# a stand-in for the engagement model (MLflow "models from code": no pickling, loads in any process). Version 1 ranks
# titles by length; version 2 gives every video the same score, so a script sits at the 100th percentile (10.0).
TOY_MODEL = '''
import mlflow, pandas as pd
class Reference:   # what the quality score ranks a script against: the model's out-of-fold scores of 60 videos
    reference = pd.DataFrame({{"video_id": [f"v{{i}}" for i in range(60)], "category_id": "27",
                              "score": [float(10 + 2 * i) * {scale} for i in range(60)]}})
class Toy(mlflow.pyfunc.PythonModel):
    predictor = Reference()
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        score = model_input.title.str.len().astype(float) * {scale}
        return pd.DataFrame({{"video_id": model_input.video_id.to_numpy(), "score": score.to_numpy()}})
mlflow.models.set_model(Toy())
'''


def register_toy(tmp_path, uri: str, scale: float) -> str:
    "Register the toy model as ytempire-engagement@champion in the store at `uri`; returns its version."
    code = f"""
import mlflow
mlflow.set_tracking_uri({uri!r}); mlflow.set_registry_uri({uri!r})
c = mlflow.MlflowClient()
if c.get_experiment_by_name("toy") is None: c.create_experiment("toy", artifact_location={(tmp_path / 'toy-art').as_uri()!r})
mlflow.set_experiment("toy")
with mlflow.start_run():
    info = mlflow.pyfunc.log_model(name="engagement", python_model={str(tmp_path / f'toy{scale:g}.py')!r}, pip_requirements=[],
                                   registered_model_name="ytempire-engagement")
c.set_registered_model_alias("ytempire-engagement", "champion", str(info.registered_model_version))
print(info.registered_model_version)
"""
    (tmp_path / f"toy{scale:g}.py").write_text(TOY_MODEL.format(scale=scale))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.split()[-1]


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Three short `ytempire make` of one topic started together in a fresh folder (no mlruns.db yet), scored by a toy
    engagement champion registered in a separate store. Trend relevance (MiniLM embeddings) is off: it is tested elsewhere."""
    work = tmp_path_factory.mktemp("three")
    eng = f"sqlite:///{work}/engagement.db"
    register_toy(work, eng, 1)
    env = clean_env(YTEMPIRE_ENGAGEMENT_MLFLOW_URI=eng, YTEMPIRE_ENGAGEMENT_DATA="data/trending/2020_US.csv",
                    YTEMPIRE_TRENDS_RELEVANCE="false")
    assert not (work / "mlruns.db").exists()
    procs = [subprocess.Popen([str(BIN / "ytempire"), "make", TOPIC, "--duration", "5", "--out", str(work / f"run{i}"), "--no-progress"],
                              cwd=work, env=env, stdout=open(work / f"out{i}.txt", "w"), stderr=open(work / f"err{i}.txt", "w"))
             for i in range(3)]
    for p in procs: p.wait(timeout=900)
    return work, env, [(p.returncode, (work / f"err{i}.txt").read_text()) for i, p in enumerate(procs)]


def test_three_runs_at_once_all_recorded_and_tracked(three_runs):
    from ytempire.tracking import _head_revision
    work, _, results = three_runs
    for code, err in results: assert code == 0, err[-2000:]
    ids = []
    for i in range(3):
        run = work / f"run{i}"
        rec = json.loads((run / "run.json").read_text())
        assert (run / "report.html").is_file() and rec["mlflow_run_id"] and rec["wandb_run_path"]
        assert not [w for w in rec["warnings"] if w.startswith("not tracked")], rec["warnings"]
        assert rec["mlflow_run_id"] in (run / "report.html").read_text()
        ids.append(rec["mlflow_run_id"])
    with sqlite3.connect(work / "mlruns.db") as db:
        runs = db.execute("SELECT run_uuid, status FROM runs").fetchall()
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        leftovers = db.execute("SELECT name FROM sqlite_master WHERE name LIKE '_alembic_tmp%'").fetchall()
    assert sorted(runs) == sorted((i, "FINISHED") for i in ids) and len(set(ids)) == 3
    assert revision == _head_revision() and leftovers == []


def test_retrained_champion_rescores_a_resumed_run(three_runs):
    work, env, results = three_runs
    assert results[0][0] == 0, results[0][1][-2000:]
    before = json.loads((work / "run0" / "run.json").read_text())
    assert 0 <= before["quality"]["engagement"]["score"] < 10        # ranked by title length among trending titles
    register_toy(work, env["YTEMPIRE_ENGAGEMENT_MLFLOW_URI"], 0)    # retrained: a new version takes @champion
    r = subprocess.run([str(BIN / "ytempire"), "make", TOPIC, "--duration", "5", "--out", str(work / "run0"), "--no-progress"],
                       cwd=work, env={**env, "YTEMPIRE_TRACKING_ENABLED": "false"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    after = json.loads((work / "run0" / "run.json").read_text())
    cached = {s["stage"]: s["cached"] for s in after["stages"]}
    assert not cached["11-script"] and not cached["12-quality"] and cached["10-trends"], cached
    assert after["quality"]["engagement"]["score"] == 10.0           # scored by the new version, not the old scores


RACE = """
import sys, time
from pathlib import Path
from ytempire.config import Settings
from ytempire.tracking import Tracker
work, me = Path(sys.argv[1]), sys.argv[2]
(work / f"ready-{me}").touch()
while len(list(work.glob("ready-*"))) < 3: time.sleep(0.005)      # all three open the fresh store together
with Tracker(Settings(env={}, overrides={"tracking.wandb": "false"}), f"race-{me}", cwd=work) as tr:
    tr.log_metrics({"x": 1.0})
print(tr.mlflow_run_id)
"""


def test_store_created_once_when_three_trackers_start_together(tmp_path):
    "Without the lock this fails most times: alembic migrations of three processes interleave on the new file."
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), str(i)], cwd=tmp_path, env=clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [(p, *p.communicate(timeout=300)) for p in procs]
    for p, out, err in outs: assert p.returncode == 0, err[-2000:]
    with sqlite3.connect(tmp_path / "mlruns.db") as db:
        assert sorted(r[0] for r in db.execute("SELECT run_uuid FROM runs")) == sorted(o.split()[-1] for _, o, _ in outs)


def test_half_migrated_store_is_repaired_then_tracked(tmp_path):
    "What an older version's race left behind: schema short of the head, a leftover alembic table, no runs."
    from ytempire.config import Settings
    from ytempire.tracking import Tracker
    with sqlite3.connect(tmp_path / "mlruns.db") as db:
        db.executescript("CREATE TABLE alembic_version (version_num TEXT); INSERT INTO alembic_version VALUES ('4465047574b1');"
                         "CREATE TABLE experiments (experiment_id INTEGER); CREATE TABLE _alembic_tmp_tags (key TEXT);")
    seen = logging.handlers.BufferingHandler(100)
    logging.getLogger("ytempire.tracking").addHandler(seen)
    try:
        with Tracker(Settings(env={}, overrides={"tracking.wandb": "false"}), "after-repair", cwd=tmp_path) as tr:
            tr.log_metrics({"x": 1.0})
    finally: logging.getLogger("ytempire.tracking").removeHandler(seen)
    assert any("half-migrated" in r.getMessage() for r in seen.buffer), [r.getMessage() for r in seen.buffer]
    assert len(list(tmp_path.glob("mlruns.db.broken-*"))) == 1
    with sqlite3.connect(tmp_path / "mlruns.db") as db:
        assert db.execute("SELECT run_uuid, status FROM runs").fetchall() == [(tr.mlflow_run_id, "FINISHED")]

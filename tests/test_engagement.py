"""experiments/train_engagement.ipynb chooses a champion on validation splits and registers it under papermill;
`ytempire engagement predict` loads it by alias and scores any CSV with the columns the model reads; a retrain that
does not beat the champion becomes @challenger; the quality score ranks a script against out-of-fold scores."""
import json
import papermill as pm
import pandas as pd
import pytest
from conftest import ROOT, clean_env, ytempire

DATA = f"{ROOT}/data/trending/2020_US.csv, {ROOT}/data/trending/2020_GB.csv"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engagement")
    uri = f"sqlite:///{tmp}/mlruns.db"
    env = clean_env(YTEMPIRE_ENGAGEMENT_MLFLOW_URI=uri)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items(): mp.setenv(k, v)
        pm.execute_notebook(str(ROOT / "experiments" / "train_engagement.ipynb"), str(tmp / "out.ipynb"), cwd=str(tmp),
                            kernel_name="python3", progress_bar=False,
                            parameters=dict(data=DATA, epochs=2, mlflow_uri=uri, out_dir=str(tmp / "out")))
    return tmp, uri, env


def test_notebook_registers_champion(trained):
    import mlflow
    tmp, uri, _ = trained
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)      # not a registry another test set in this process
    mv = client.get_model_version_by_alias("ytempire-engagement", "champion")
    run = client.get_run(mv.run_id)
    champion = run.data.params["champion"]
    assert champion == mv.tags["model"] and mv.tags["alias_reason"] == "there is no current champion"
    # every model is validated; only the champion and the baselines are tested, on the three kinds of split
    assert {"spearman.validation.time.ridge", "spearman.validation.channel.torch", "spearman.validation.time.torch_ridge"} <= set(run.data.metrics)
    assert {f"spearman.test.{s}.{champion}" for s in ("time", "country", "channel")} <= set(run.data.metrics)
    assert {"spearman.test.country_GB.category_median", "spearman.test.country_US.category_median"} <= set(run.data.metrics)
    tested = {k.split(".")[-1] for k in run.data.metrics if k.startswith("spearman.test.")}
    assert tested == {champion, "global_median", "category_median"}, tested
    choice = pd.read_csv(tmp / "out" / "validation.csv", index_col=0)
    eligible = choice.drop(index=["global_median", "category_median"])
    eligible = eligible[eligible.below_floor.isna()]
    assert champion == (eligible["mean"].idxmax() if len(eligible) else "category_median"), choice
    arts = {a.path for a in client.list_artifacts(mv.run_id, "evaluation")}
    assert {"evaluation/pred_vs_actual.png", "evaluation/importance.png", "evaluation/summary.csv", "evaluation/validation.csv"} <= arts
    assert list((tmp / "wandb").glob("offline-run-*"))
    text = (tmp / "out.ipynb").read_text()
    assert "Closing note" in text and "champion rule: " + champion in text


def test_cli_predict_either_schema(trained):
    tmp, _, env = trained
    # the reduced 2017 schema with its label columns zeroed: scores must still come out, one per distinct video
    rows = pd.read_csv(ROOT / "data/trending/2017_US.csv", dtype=str, keep_default_na=False).head(400)
    red = rows[["video_id", "trending_date", "title", "category_id", "views", "likes", "dislikes", "comment_count"]]
    red.assign(views="0", likes="0", dislikes="0", comment_count="0").to_csv(tmp / "reduced.csv", index=False)
    for src, n in ((ROOT / "data/trending/2020_GB.csv", 323), (tmp / "reduced.csv", red.video_id.nunique())):
        r = ytempire("engagement", "predict", src, "--out", tmp / "pred.csv", cwd=tmp, env=env, timeout=120)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        p = pd.read_csv(tmp / "pred.csv", dtype={"video_id": str})
        assert list(p.columns) == ["video_id", "score"] and len(p) == n and p.video_id.is_unique and p.score.notna().all()
        assert p.score.nunique() > n // 3


def test_cli_predict_needs_only_model_columns(trained):
    "Bad or empty trending dates, junk counts and missing columns the model does not read are scored, not refused."
    tmp, _, env = trained
    src = pd.read_csv(ROOT / "data/trending/2020_GB.csv", dtype=str, keep_default_na=False).head(60)
    src.loc[0:9, "trending_date"] = ["", "n/a", "2020-02-30", "yesterday", "", "", "17.99.99", "x", "", "0"]
    src.loc[10:14, "view_count"] = "lots"
    src.loc[15, "publishedAt"] = "someday"
    src.loc[[20, 21], "video_id"] = ["", "#NAME?"]
    src.drop(columns=["likes", "dislikes"]).to_csv(tmp / "messy.csv", index=False)
    r = ytempire("engagement", "predict", tmp / "messy.csv", "--out", tmp / "messy-pred.csv", cwd=tmp, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("warning: skipped 2 row(s)") and r.stderr.count("\n") == 1, r.stderr
    p = pd.read_csv(tmp / "messy-pred.csv", dtype={"video_id": str})
    good = src.video_id.drop([20, 21])
    assert list(p.columns) == ["video_id", "score"] and set(p.video_id) == set(good) and len(p) == good.nunique()
    # a file none of whose rows can be scored is an error, with nothing written
    pd.DataFrame({"video_id": ["", "#NAME?"], "title": ["a", "b"]}).to_csv(tmp / "none.csv", index=False)
    r = ytempire("engagement", "predict", tmp / "none.csv", "--out", tmp / "none-pred.csv", cwd=tmp, env=env, timeout=120)
    assert r.returncode == 2 and "none of its 2 rows can be scored" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp / "none-pred.csv").exists()


@pytest.mark.parametrize("name,content,problem", [
    ("columns.csv", b"a,b\n1,2\n", "lacks columns video_id"),
    ("ids-only.csv", b"video_id,views\nabc,3\n", "lacks columns any the model reads"),
    ("cp1252.csv", "video_id,trending_date,title\nx,17.14.11,caf\xe9\n".encode("cp1252"), "not UTF-8"),
    ("empty.csv", b"", "empty"),
    ("garbage.csv", bytes(range(256)) * 40, "binary"),
])
def test_cli_bad_csv_one_line(trained, name, content, problem):
    tmp, _, env = trained
    (tmp / name).write_bytes(content)
    r = ytempire("engagement", "predict", tmp / name, "--out", tmp / "bad-pred.csv", cwd=tmp, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert name in r.stderr and problem in r.stderr
    assert not (tmp / "bad-pred.csv").exists()


def test_cli_predict_without_model(tmp_path):
    env = clean_env(YTEMPIRE_ENGAGEMENT_MLFLOW_URI=f"sqlite:///{tmp_path}/none.db")
    r = ytempire("engagement", "predict", ROOT / "data/trending/2020_GB.csv", "--out", tmp_path / "p.csv", cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "ytempire engagement train" in r.stderr, r.stderr


def test_retrain_that_does_not_beat_the_champion_is_challenger(tmp_path):
    import mlflow
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    env = clean_env(YTEMPIRE_ENGAGEMENT_MLFLOW_URI=uri, YTEMPIRE_TRACKING_WANDB="false", YTEMPIRE_ENGAGEMENT_OOF_FOLDS="3")
    args = ("engagement", "train", "--data", ROOT / "data/trending/2020_US.csv", ROOT / "data/trending/2020_GB.csv",
            "--models", "category_median", "ridge")
    first = ytempire(*args, cwd=tmp_path, env=env, timeout=600)
    assert first.returncode == 0 and "version 1 as @champion: there is no current champion" in first.stdout, first.stderr[-2000:]
    second = ytempire(*args, cwd=tmp_path, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "version 2 as @challenger: held-out Spearman" in second.stdout and "does not beat champion version 1" in second.stdout, second.stdout
    assert "registered as @challenger" in second.stderr          # the log says why, too
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)      # not a registry another test set in this process
    assert client.get_model_version_by_alias("ytempire-engagement", "champion").version == 1
    assert "does not beat" in client.get_model_version("ytempire-engagement", "2").tags["alias_reason"]


def test_quality_score_uses_the_champion(trained, tmp_path):
    "A run with a registered model places the script among the out-of-fold scores of its category, and gates on it."
    import numpy as np
    from ytempire.config import Settings
    from ytempire.models import load_champion
    from ytempire.quality import script_as_video
    from ytempire.schemas import Brief, Script
    _, _, env = trained
    r = ytempire("make", "Why the sky is blue", "--duration", "10", "--out", tmp_path / "run", "--no-progress", cwd=tmp_path,
                 env={**env, "YTEMPIRE_TRACKING_ENABLED": "false"})
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    q = record["quality"]["engagement"]
    assert "category 27 (scored out of fold)" in q["notes"][0]
    # the same percentile, recomputed here from the registered model's out-of-fold reference table
    settings = Settings(env={k: v for k, v in env.items() if k.startswith("YTEMPIRE_")})
    model = load_champion(settings)
    ref = model.unwrap_python_model().predictor.reference
    cat = np.sort(ref[ref.category_id == "27"].score.to_numpy() if (ref.category_id == "27").sum() >= 20 else ref.score.to_numpy())
    script = Script.model_validate(json.loads((tmp_path / "run" / "stages" / "11-script" / "output.json").read_text())["output"])
    brief = Brief.model_validate(record["brief"])
    row = script_as_video(script, brief, settings)
    expected = set()
    for hours in (0, 1, 2):      # the script is "published now": the run may have scored it in an earlier hour
        shifted = row.assign(published=row.published - pd.Timedelta(hours=hours), trending_date=row.trending_date - pd.Timedelta(hours=hours))
        expected.add(round(10 * np.searchsorted(cat, float(model.predict(shifted).score.iloc[0]), side="right") / len(cat), 2))
    assert q["score"] in expected, (q, expected)

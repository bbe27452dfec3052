"""experiments/train_engagement.ipynb trains and registers the engagement model under papermill; `ytempire engagement
predict` loads it by alias and scores a CSV; bad CSVs and a missing model are one-line errors."""
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
    client = mlflow.MlflowClient(tracking_uri=uri)
    mv = client.get_model_version_by_alias("ytempire-engagement", "champion")
    run = client.get_run(mv.run_id)
    assert {"spearman.time.ridge", "spearman.country.torch", "spearman.time.category_median"} <= set(run.data.metrics)
    assert run.data.params["champion"] == mv.tags["model"]
    arts = {a.path for a in client.list_artifacts(mv.run_id, "evaluation")}
    assert {"evaluation/pred_vs_actual.png", "evaluation/importance.png", "evaluation/summary.csv"} <= arts
    assert list((tmp / "wandb").glob("offline-run-*"))
    assert "Closing note" in (tmp / "out.ipynb").read_text()


def test_cli_predict_either_schema(trained):
    tmp, _, env = trained
    # the reduced 2017 schema with its label columns zeroed: scores must still come out, one per distinct video
    rows = pd.read_csv(ROOT / "data/trending/2017_US.csv", dtype=str, keep_default_na=False).head(400)
    red = rows[["video_id", "trending_date", "title", "category_id", "views", "likes", "dislikes", "comment_count"]]
    red.assign(views="0", likes="0", dislikes="0", comment_count="0").to_csv(tmp / "reduced.csv", index=False)
    for src, n in ((ROOT / "data/trending/2020_GB.csv", 323), (tmp / "reduced.csv", red.video_id.nunique())):
        r = ytempire("engagement", "predict", src, "--out", tmp / "pred.csv", cwd=tmp, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        p = pd.read_csv(tmp / "pred.csv", dtype={"video_id": str})
        assert list(p.columns) == ["video_id", "score"] and len(p) == n and p.video_id.is_unique and p.score.notna().all()
        assert p.score.nunique() > n // 3


@pytest.mark.parametrize("name,content,problem", [
    ("columns.csv", b"a,b\n1,2\n", "lacks columns"),
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


def test_quality_score_uses_the_champion(trained, tmp_path):
    "A run with a registered model scores the script's engagement as a percentile of its category, and gates on it."
    import json
    _, _, env = trained
    r = ytempire("make", "Why the sky is blue", "--duration", "10", "--out", tmp_path / "run", "--no-progress", cwd=tmp_path,
                 env={**env, "YTEMPIRE_TRACKING_ENABLED": "false"})
    assert r.returncode == 0, r.stderr[-2000:]
    q = json.loads((tmp_path / "run" / "run.json").read_text())["quality"]
    assert q["engagement"] is not None and 0 <= q["engagement"]["parts"]["rank_in_category"] <= 10
    assert "category 27" in q["engagement"]["notes"][0]

"""experiments/thumbnail_ab.ipynb under papermill: features and a ranking of the offline variants, a SIMULATED rotation
test analysed with ytempire.abtest (equal split vs Thompson sampling), logged to MLflow; figures recomputed here."""
import json
import pandas as pd
import papermill as pm
import pytest
from conftest import ROOT, clean_env


def test_thumbnail_ab_notebook(tmp_path, monkeypatch):
    import mlflow
    from ytempire.abtest import DECISIONS
    for k, v in clean_env().items(): monkeypatch.setenv(k, v)
    uri, out = f"sqlite:///{tmp_path}/mlruns.db", tmp_path / "ab"
    pm.execute_notebook(str(ROOT / "experiments" / "thumbnail_ab.ipynb"), str(tmp_path / "ab-out.ipynb"), cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False,
                        parameters=dict(topic="Why cats purr", arms=3, impressions_per_day=4000, days=8, slot_hours=6,
                                        base_ctr=0.04, true_lift=0.5, replicates=4, seed=1, out_dir=str(out), mlflow_uri=uri))
    s = json.loads((out / "summary.json").read_text())
    ranking, slots, truth = (pd.read_csv(out / f) for f in ("ranking.csv", "slots.csv", "truth.csv"))
    # the ranking before publication: legibility (no CTR model in this store), the top 3 enter the test, the first is the control
    assert set(ranking.source) == {"legibility"} and len(ranking) >= 6 and ranking.score.is_monotonic_decreasing
    assert s["control"] == ranking.variant[0] and set(truth.variant) == set(ranking.variant[:3])
    assert s["data"] == "simulated" and s["true_best"] != s["control"]
    assert truth.set_index("variant").true_ctr[s["true_best"]] == pytest.approx(0.06)
    # 2 policies x 4 campaigns x 32 slots; regret recomputed from the slots and the truth
    assert len(slots) == 2 * 4 * 32 and set(slots.policy) == {"equal", "thompson"}
    p = truth.set_index("variant").true_ctr
    lost = slots.assign(r=slots.impressions * (p.max() - slots.variant.map(p))).groupby(["policy", "replicate"]).r.sum()
    run = mlflow.MlflowClient(tracking_uri=uri).get_run(s["mlflow_run_id"])
    m = run.data.metrics
    assert m["equal.regret_mean"] == pytest.approx(lost["equal"].mean()) and m["thompson.regret_mean"] == pytest.approx(lost["thompson"].mean())
    # a 50 % lift over ~10,000 impressions per variant: the equal split ships the true best every time; Thompson loses fewer clicks
    assert m["equal.correct_rate"] == 1.0 and m["equal.rate.ship"] == 1.0
    assert m["thompson.regret_mean"] < m["equal.regret_mean"] and m["thompson.best_share"] > m["equal.best_share"]
    doc = json.loads((out / "result.json").read_text())
    assert doc["decision"] in DECISIONS and doc["data"] == "simulated" and doc["control"] == s["control"]
    assert doc["decision"] == "ship" and doc["winner"] == s["true_best"]
    assert run.data.params["true_lift"] == "0.5" and run.data.tags["data"] == "simulated"
    arts = {a.path for a in mlflow.MlflowClient(tracking_uri=uri).list_artifacts(run.info.run_id)}
    assert {"slots.csv", "campaigns.csv", "posterior.png", "regret.png", "result.json", "features.csv"} <= arts
    assert (out / "posterior.png").stat().st_size > 10_000
    assert "checks passed" in (tmp_path / "ab-out.ipynb").read_text()

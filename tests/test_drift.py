"""Drift detection (43_drift): only the shifted feature drifts, PSI of identical samples is 0, the JSON interface,
both trending schemas, the self-contained HTML report, MLflow metrics and the Prometheus textfile, one-line errors."""
import json, re
import numpy as np
import pandas as pd
import pytest
from ytempire.config import InputError, Settings, repo_path
from ytempire.drift import (DriftConfig, check_drift, compare_feature, detect_drift, drift_features, psi, track_drift,
                            window_videos, write_drift_report)

DATA = repo_path("data/trending")


@pytest.fixture
def settings(tmp_path):
    "Settings with a throwaway MLflow store, no W&B, no engagement model and a Prometheus textfile under tmp_path."
    return Settings(env={"YTEMPIRE_TRACKING_MLFLOW_URI": f"sqlite:///{tmp_path}/mlruns.db", "YTEMPIRE_TRACKING_WANDB": "false",
                         "YTEMPIRE_ENGAGEMENT_MLFLOW_URI": f"sqlite:///{tmp_path}/no-model.db",
                         "YTEMPIRE_PATHS_PROMETHEUS_TEXTFILE": f"{tmp_path}/textfile/ytempire.prom"})


def _frames(n=1500, seed=0, shift=0.0):
    "Reference and current feature frames: two numeric and one categorical feature; only `score` moves by `shift` SDs."
    rng = np.random.default_rng(seed)
    def one(s):
        return pd.DataFrame({"score": rng.normal(s, 1, n), "length": rng.gamma(4, 10, n),
                             "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])})
    return one(0.0), one(shift)


def test_defaults_match_settings():
    assert DriftConfig.from_settings(Settings()) == DriftConfig()


def test_only_the_shifted_feature_drifts(settings):
    ref, cur = _frames(shift=0.5)
    r = detect_drift(ref, cur, settings)
    assert r.drift and [n for n, e in r.features.items() if e["drift"]] == ["score"], r.table()
    assert r.features["score"]["psi"] > 0.2 and r.features["score"]["p_value"] < 1e-10
    assert r.features["colour"]["test"] == "chi2" and r.features["length"]["test"] == "ks"
    assert len(r.alerts) == 1 and r.alerts[0].startswith("score drifted") and "retrain" in r.recommendation
    calm = detect_drift(*_frames(shift=0.0), settings)
    assert not calm.drift and not calm.alerts and calm.recommendation == ""


def test_ks_catches_a_small_shift_that_psi_does_not(settings):
    ref, cur = _frames(n=5000, shift=0.15)
    e = detect_drift(ref, cur, settings).features["score"]
    assert e["psi"] < 0.2 and e["p_value"] < 0.01 and e["drift"], e
    strict = Settings(env={"YTEMPIRE_DRIFT_KS_ALPHA": "1e-30", "YTEMPIRE_TRACKING_WANDB": "false"})
    assert not detect_drift(ref, cur, strict).features["score"]["drift"]


def test_a_shifted_category_mix_drifts(settings):
    ref, cur = _frames()
    cur["colour"] = np.random.default_rng(1).choice(["red", "green", "blue"], len(cur), p=[0.2, 0.3, 0.5])
    r = detect_drift(ref, cur, settings)
    assert [n for n, e in r.features.items() if e["drift"]] == ["colour"] and r.features["colour"]["psi"] > 0.2


def test_psi_of_identical_samples_is_zero():
    x = np.random.default_rng(0).normal(size=1000)
    assert psi(x, x) == 0.0 and psi(x, x.copy(), bins=4) == 0.0
    assert psi(["a", "b", "b"], ["a", "b", "b"], categorical=True) == 0.0
    assert abs(psi(x, np.random.default_rng(1).normal(size=1000))) < 0.05
    e = compare_feature(pd.Series(x), pd.Series(x), DriftConfig())
    assert (e["psi"], e["statistic"], e["p_value"], e["drift"]) == (0.0, 0.0, 1.0, False)


def test_json_interface(settings):
    r = detect_drift(*_frames(shift=0.5), settings)
    doc = json.loads(json.dumps(r.to_json()))          # plain JSON: no numpy scalars, no NaN
    assert isinstance(doc["drift"], bool) and doc["drift"] is True
    for name, e in doc["features"].items():
        assert {"statistic", "drift"} <= set(e) and ("p_value" in e or "psi" in e), (name, e)
        assert isinstance(e["drift"], bool) and isinstance(e["statistic"], float) and isinstance(e["p_value"], float)
    assert {"alerts", "thresholds", "recommendation"} <= set(doc)


@pytest.mark.parametrize("name, schema", [("2017_US.csv", "2017"), ("2020_GB.csv", "2020"), ("2017_IN_reduced_sample.csv", "2017-reduced")])
def test_both_csv_schemas_are_read(name, schema):
    v = window_videos(DATA / name)
    assert set(v.schema) == {schema} and v.video_id.is_unique and len(v) > 100
    f = drift_features(v, labels=True)
    assert f.title_chars.gt(0).mean() > 0.99 and f.engagement.notna().all() and f.category.ne("Unknown").mean() > 0.9
    if schema == "2017-reduced":          # no tags, description or publish time: missing, not zero
        assert f.tags_count.isna().all() and f.publish_hour.isna().all() and f.publish_weekday.isna().all()
        assert set(f.language) >= {"latin", "devanagari"}
    else:
        assert f.tags_count.notna().all() and f.publish_hour.between(0, 23).all()


def test_2017_vs_2020_drifts_and_the_reduced_schema_skips_what_it_lacks(settings):
    r = detect_drift(DATA / "2017_US.csv", DATA / "2020_US.csv", settings, labels=True)
    assert r.drift and r.features["category"]["drift"] and r.features["engagement"]["drift"]
    red = detect_drift(DATA / "2017_IN_reduced_sample.csv", DATA / "2020_IN.csv", settings)
    assert red.features["tags_count"].get("skipped") and red.features["tags_count"]["drift"] is False
    assert red.features["title_chars"]["n_reference"] == 200


def test_html_report_is_self_contained(settings, tmp_path):
    r = detect_drift(*_frames(shift=0.5), settings)
    page = write_drift_report(r, tmp_path / "out", settings)
    html = page.read_text()
    assert page == tmp_path / "out" / "drift.html" and json.loads((tmp_path / "out" / "drift.json").read_text())["drift"] is True
    assert html.count('src="data:image/png;base64,') == 3
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "<script" not in html and "@import" not in html
    assert "DRIFT" in html and "score drifted" in html


def test_mlflow_metrics_and_prometheus_textfile(settings, tmp_path):
    import mlflow
    r = detect_drift(*_frames(shift=0.5), settings)
    page = write_drift_report(r, tmp_path / "out", settings)
    run_id = track_drift(r, settings, page, run_name="test", cwd=tmp_path)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns.db")
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "ytempire-drift"
    m = run.data.metrics
    assert (m["drift"], m["score.drift"], m["length.drift"], m["drifted_features"]) == (1.0, 1.0, 0.0, 1.0)
    assert abs(m["score.psi"] - r.features["score"]["psi"]) < 1e-9 and "score.p_value" in m
    assert {a.path for a in client.list_artifacts(run_id, "drift")} == {"drift/drift.html", "drift/drift.json"}
    for prom in (tmp_path / "out" / "drift.prom", tmp_path / "textfile" / "ytempire_drift.prom"):
        text = prom.read_text()
        assert re.search(r'^ytempire_drift_psi\{feature="score"\} 0\.\d+', text, re.M), text
        assert "ytempire_drift_detected 1.0" in text and "ytempire_drift_alerts 1.0" in text
        assert 'ytempire_drift_feature_drifted{feature="length"} 0.0' in text
    assert not (tmp_path / "textfile" / "ytempire.prom").exists()     # the pipeline's own textfile is left alone
    assert (tmp_path / "mlartifacts").is_dir()


def test_check_drift_end_to_end_without_a_model(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                           # MLflow's artifacts go to the working directory, as for the CLI
    r, page = check_drift(DATA / "2017_US.csv", DATA / "2020_US.csv", settings, tmp_path / "out")
    assert r.drift and page.is_file() and (tmp_path / "out" / "drift.prom").is_file()
    assert "prediction" not in r.features and any("no engagement model" in n for n in r.notes)
    assert "ytempire engagement train --data" in r.recommendation and "2020_US.csv" in r.recommendation


def test_bad_input_is_one_line_naming_the_fix(tmp_path, settings):
    good = DATA / "2020_US.csv"
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("video_id,trending_date,title,views\n")
    (tmp_path / "none").mkdir()
    cases = [(tmp_path / "missing.csv", "does not exist"), (tmp_path / "cols.csv", "lacks columns"),
             (tmp_path / "empty.csv", "is empty"), (tmp_path / "header.csv", "no rows"), (tmp_path / "none", "holds no trending CSV")]
    for path, problem in cases:
        with pytest.raises(InputError) as e:
            detect_drift(good, path, settings)
        msg = str(e.value)
        assert problem in msg and "\n" not in msg and msg.startswith("current"), msg
        assert re.search(r"CSV|--reference|--current", msg), msg
    with pytest.raises(InputError, match="share no feature columns"):
        detect_drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}), settings)
    with pytest.raises(InputError, match="has no rows"):
        detect_drift(pd.DataFrame({"a": []}), pd.DataFrame({"a": [1.0]}), settings)


def test_check_drift_with_a_registered_champion(settings, tmp_path, monkeypatch):
    "Prediction and performance drift with the champion loaded from the registry (an MLflow pyfunc), as the CLI does."
    monkeypatch.chdir(tmp_path)                           # the default experiment's artifacts (./mlruns) stay in tmp_path
    import mlflow
    from ytempire.models import engagement_uri, fit_predictor, load_videos, register_predictor
    st = Settings(env={"YTEMPIRE_TRACKING_MLFLOW_URI": f"sqlite:///{tmp_path}/mlruns.db", "YTEMPIRE_TRACKING_WANDB": "false"})
    predictor = fit_predictor(load_videos([DATA / "2020_GB.csv"]), "ridge")
    uri = engagement_uri(st)
    mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
    with mlflow.start_run():
        register_predictor(predictor, st, tmp_path, "champion")
    r, page = check_drift(DATA / "2017_US.csv", [DATA / "2020_US.csv", DATA / "2020_GB.csv"], st, tmp_path / "out", track=False)
    seen = int(predictor.unseen(window_videos([DATA / "2020_US.csv", DATA / "2020_GB.csv"]).video_id).__invert__().sum())
    assert seen > 300                                   # the GB videos it was trained on are in the current window
    pred, perf = r.features["prediction"], r.features["performance"]
    assert pred["videos"] == "unseen by the model" and pred["n_current"] == 632 - seen and pred["n_reference"] == 791
    assert perf["test"] == "spearman" and perf["n_current"] == 632 - seen and -1 <= perf["current_spearman"] <= 1
    assert any("ridge trained on" in n for n in r.notes) and any("training data" in n for n in r.notes)
    assert "prediction" in json.loads((tmp_path / "out" / "drift.json").read_text())["features"]

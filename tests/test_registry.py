"""The model registry (45_registry) on a throwaway MLflow store: model cards, the promotion rule (a worse challenger
refused in one line, a better one promoted, figures from other held-out data never compared), the self-contained
evaluation dashboard, experiment kinds, and MLflow Tracing of a provider call (40_tracking) against the loopback
OpenAI API of tests/mockapi.py."""
import re
import numpy as np
import pytest
from conftest import ROOT
from ytempire.config import Settings, InputError
from ytempire.registry import MODELS, evaluation_dashboard, list_models, model_card, promote, register_llm

pytestmark = pytest.mark.xdist_group("registry")
DATA = str(ROOT / "data" / "trending" / "2020_CA_sample.csv")


def settings(tmp, **over):
    uri = f"sqlite:///{tmp}/mlruns.db"
    return Settings(env={}, overrides={"tracking.mlflow_uri": uri, "engagement.mlflow_uri": uri, "tracking.wandb": "false",
                                       "engagement.oof_folds": "2", **over})


def client_of(st):
    import mlflow
    uri = st.get("tracking", "mlflow_uri")
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store holding every model: engagement v1 (@champion) and v2 (the same model retrained: @challenger), CTR v1
    and v2 on the same SIMULATED A/B data (the second with a strong penalty) and v3 on other labels, and an LLM file."""
    from ytempire.models import train_engagement
    from ytempire.thumbscore import simulated_channel, train_ctr_model
    tmp = tmp_path_factory.mktemp("registry")
    st = settings(tmp)
    eng = [train_engagement(st, data=DATA, models=["category_median"], epochs=1, out_dir=tmp / f"eng{i}") for i in (1, 2)]
    sim = simulated_channel(30, 4, seed=3)
    ctr = [train_ctr_model(sim, st, out_dir=tmp / "good"), train_ctr_model(sim, st, out_dir=tmp / "weak", C=0.001),
           train_ctr_model(sim.assign(clicks=np.random.default_rng(4).binomial(sim.impressions, 0.03)), st, out_dir=tmp / "flat")]
    gguf = tmp / "SmolLM2-135M-Instruct-Q4_1.gguf"
    gguf.write_bytes(b"GGUF" + bytes(256))
    register_llm(st, gguf, benchmark={"tokens_per_s": 40.0, "ttft_p95_ms": 300.0})
    return tmp, st, eng, ctr


def test_ctr_promotion_rule(store):
    _, st, _, ctr = store
    good, weak = (r.metrics["heldout.pairwise_accuracy"] for r in ctr[:2])
    assert good > weak and [r.alias for r in ctr] == ["champion", "champion", "challenger"]    # the trainer's rule: beats 0.5
    client = client_of(st)
    # the better version 1 takes @champion back from version 2 on the same held-out evaluation
    up = promote(st, "thumbnail-ctr", "1")
    assert up.promoted and (up.new, up.old) == (pytest.approx(good), pytest.approx(weak)) and "same held-out evaluation" in up.reason
    assert str(client.get_model_version_by_alias("ytempire-thumbnail-ctr", "champion").version) == "1"
    # the worse version 2 is refused, in one line naming both figures
    down = promote(st, "ytempire-thumbnail-ctr", "2")
    assert not down.promoted and "\n" not in str(down)
    assert f"{weak:.3f} does not beat champion version 1's {good:.3f}" in down.reason
    assert str(client.get_model_version_by_alias("ytempire-thumbnail-ctr", "champion").version) == "1"
    # the @challenger (version 3) learnt from other labels: not comparable, refused whatever its figure
    other = promote(st, "thumbnail-ctr")
    assert (other.version, other.promoted) == ("3", False) and "other held-out data" in other.reason
    assert str(client.get_model_version_by_alias("ytempire-thumbnail-ctr", "challenger").version) == "3"


def test_engagement_challenger_that_does_not_beat_is_refused(store):
    _, st, eng, _ = store
    assert [r.alias for r in eng] == ["champion", "challenger"]
    r = promote(st, "engagement")                 # version 2, the @challenger: the same model on the same held-out splits
    mean = eng[0].predictor.evaluation["mean"]
    assert (r.version, r.champion, r.promoted) == ("2", "1", False) and "\n" not in r.reason
    assert f"{mean:.3f} does not beat champion version 1's {mean:.3f} on the same held-out evaluation" in r.reason
    tags = client_of(st).get_model_version("ytempire-engagement", "2").tags     # cached: no download next time
    assert tags["evaluation_fingerprint"] == eng[0].predictor.evaluation["fingerprint"]


def test_promote_bad_input_is_one_line(store):
    _, st, _, _ = store
    for name, version, text in (("gpt", None, "choose one of engagement, thumbnail-ctr, llm"), ("engagement", "9", "has no version 9")):
        with pytest.raises(InputError) as e: promote(st, name, version)
        assert text in str(e.value) and "\n" not in str(e.value)
    llm = promote(st, "llm", "1")
    assert not llm.promoted and llm.reason == "already @champion"


def test_model_cards(store):
    _, st, eng, _ = store
    client = client_of(st)
    for name, version in (("engagement", None), ("thumbnail-ctr", "1"), ("llm", None)):
        card = model_card(st, name, version)
        e = MODELS[name]
        for part in ("## Intended use", "## Data", "## Splits", "## Metrics", "## Limits", e.data, e.limits, "@champion"):
            assert part in card, (name, part)
        mv = client.get_model_version(e.registry_name(st), version or "1")
        assert mv.description == card
        assert client.list_artifacts(mv.run_id, "model_card")[0].path == f"model_card/v{mv.version}.md"
    card = model_card(st, "engagement")
    assert "| test/mean |" in card and f"{eng[0].predictor.evaluation['mean']:.3f}" in card
    llm = model_card(st, "llm")
    assert "quantisation: Q4_1" in llm and "sha256: " in llm and "bench.tokens_per_s: 40" in llm


def test_list_models(store):
    _, st, _, _ = store
    t = list_models(st)
    assert set(t.model) == {"engagement", "thumbnail-ctr", "llm"}
    ctr = t[t.model == "thumbnail-ctr"].set_index("version")
    assert ctr.loc[3, "aliases"] == "challenger" and ctr.value.between(0.4, 1).all()


def test_dashboard_self_contained_one_section_per_model_and_split(store):
    tmp, st, _, _ = store
    page = evaluation_dashboard(st, tmp / "dash" / "models.html")
    html = page.read_text()
    assert "<script" not in html and "src=\"http" not in html and "href=\"http" not in html and "<link" not in html
    sections = re.findall(r'class="split" data-model="([^"]+)" data-split="([^"]+)"', html)
    assert {s for m, s in sections if m == "engagement"} >= {"test/mean", "test/time", "test/channel", "validation/mean"}
    assert {s for m, s in sections if m == "thumbnail-ctr"} == {"grouped-cv/pairwise_accuracy", "grouped-cv/spearman"}
    assert len(sections) == len(set(sections)) and html.count("data:image/png;base64,") == len(sections)
    assert 'id="llm"' in html
    client = client_of(st)
    exp = client.get_experiment_by_name("ytempire-registry")
    run = client.search_runs([exp.experiment_id], "tags.mlflow.runName = 'evaluation-dashboard'")[0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "engagement.test.mean")] == [1, 2]


def test_experiments_tagged_by_kind(store):
    _, st, _, _ = store
    client = client_of(st)
    for name in ("ytempire-engagement", "ytempire-thumbnail-ctr", "ytempire-registry"):
        assert client.get_experiment_by_name(name).tags["mlflow.experimentKind"] == "custom_model_development", name


def test_traced_provider_call(tmp_path, monkeypatch):
    "An OpenAI call through the ledger (a 500 that echoes the key, then a success): one trace, a span per attempt, no secret."
    import mlflow
    from mockapi import MockAPI
    from ytempire.ledger import Ledger
    from ytempire.schemas import Brief, RunRecord, StageRun, TrendReport
    from ytempire.scripts import write_script
    from ytempire.tracking import Tracker
    secret = "test-secret-value-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    from test_providers import payload
    brief = Brief(topic="How coffee roasting works", duration=30)
    echo = {"error": {"message": f"upstream failed for key {secret}", "type": "server_error"}}
    with MockAPI([("status", 500, echo, {}), ("ok", payload(brief), {"prompt_tokens": 1200, "completion_tokens": 800})]) as m:
        st = Settings(env={"OPENAI_API_KEY": secret}, overrides={
            "paths.ledger": str(tmp_path / "ledger.db"), "retry.attempts": 3, "retry.max_seconds": 20, "text.timeout": 5,
            "text.openai_base_url": m.openai_base, "tracking.mlflow_uri": f"sqlite:///{tmp_path}/mlruns.db", "tracking.wandb": "false"})
        script = write_script(brief, TrendReport(), st, ledger=Ledger(st.get("paths", "ledger")), run_id="run-1")
    assert script.provider == "openai"
    record = RunRecord(run_id="run-1", brief=brief, stages=[StageRun(stage="11-script", seconds=30.0)])
    with Tracker(st, "run-1", cwd=tmp_path) as tr:
        trace_id = tr.trace_run(record, prompt_version=script.prompt_version)      # calls read from [paths] ledger
    client = mlflow.MlflowClient(tracking_uri=st.get("tracking", "mlflow_uri"))
    exp = client.get_experiment_by_name("ytempire")
    traces = mlflow.search_traces(locations=[exp.experiment_id], return_type="list")
    assert [t.info.trace_id for t in traces] == [trace_id]
    assert traces[0].info.trace_metadata["mlflow.sourceRun"] == tr.mlflow_run_id
    calls = [sp for sp in traces[0].data.spans if sp.name == "text:openai"]
    assert [sp.attributes["outcome"] for sp in calls] == ["server_error", "ok"]
    ok = calls[1].attributes
    assert (ok["provider"], ok["model"], ok["units"], ok["unit"]) == ("openai", "gpt-4.1", 2000, "tokens")
    assert ok["cost_usd"] == pytest.approx((1200 * 2.0 + 800 * 8.0) / 1e6) and ok["mlflow.chat.tokenUsage"] == {"total_tokens": 2000}
    assert ok["prompt_version"] == script.prompt_version and ok["latency_s"] > 0
    assert secret not in traces[0].to_json() and "***" in calls[0].attributes["error"]
    assert client.get_experiment(exp.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_tracing_error_is_a_warning(tmp_path, monkeypatch, caplog):
    import ytempire.tracking as tracking
    from ytempire.schemas import Brief, RunRecord
    def broken(*a, **kw): raise RuntimeError("store unreachable")
    monkeypatch.setattr(tracking, "log_run_trace", broken)
    st = Settings(env={}, overrides={"tracking.mlflow_uri": f"sqlite:///{tmp_path}/mlruns.db", "tracking.wandb": "false",
                                     "paths.ledger": str(tmp_path / "ledger.db")})
    with tracking.Tracker(st, "r", cwd=tmp_path) as tr:
        assert tr.trace_run(RunRecord(run_id="r", brief=Brief(topic="x"))) is None
    assert "run not traced in MLflow (RuntimeError: store unreachable)" in caplog.text

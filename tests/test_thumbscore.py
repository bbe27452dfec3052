"""35_thumbscore: image features ordered right, faces on a real portrait, text features from our own variants, the CTR
model trained on a SIMULATED channel (no real CTR data exists here) beating a no-skill ranking and registered in a
temporary MLflow store, and the legibility fallback of rank_variants."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from ytempire.config import InputError, Settings
from ytempire.schemas import Brief, Scene, Script
from ytempire.thumbnails import layout_bold, make_thumbnails
from ytempire.design import PALETTES
from ytempire.thumbscore import (FEATURES, TEXT_FEATURES, features_frame, load_ctr_model, rank_variants, simulated_channel,
                                 thumbnail_features, train_ctr_model, training_rows)

pytestmark = pytest.mark.xdist_group("thumbscore")


def settings(tmp_path):
    return Settings(env={}, overrides={"tracking.mlflow_uri": f"sqlite:///{tmp_path}/mlruns.db", "tracking.wandb": "false"})


@pytest.fixture(scope="module")
def thumbs(tmp_path_factory):
    scenes = [Scene(narration="n", on_screen="o", kind="hook")] + [Scene(narration="n", on_screen="o")] * 4
    script = Script(title="t", hook="h", scenes=scenes, cta="c", description="d", provider="test")
    return make_thumbnails(script, Brief(topic="How coffee roasting works"), Settings(env={}), tmp_path_factory.mktemp("thumbs"))


def test_pixel_features_order_images(tmp_path):
    rng = np.random.default_rng(0)
    grey = Image.new("RGB", (1280, 720), (128, 128, 128))
    colour = Image.fromarray(np.repeat(np.repeat(rng.choice([0, 255], (9, 16, 3)).astype(np.uint8), 80, 0), 80, 1))
    dark, bright = Image.new("RGB", (640, 360), (30, 30, 30)), Image.new("RGB", (640, 360), (220, 220, 220))
    noise = Image.fromarray(rng.integers(0, 256, (360, 640), dtype=np.uint8)).convert("RGB")
    colour.save(tmp_path / "colour.jpg", quality=95)
    f = {k: thumbnail_features(v) for k, v in dict(grey=grey, dark=dark, bright=bright, noise=noise).items()}
    f["colour"] = thumbnail_features(tmp_path / "colour.jpg")           # a JPEG file as well as in-memory images
    assert f["grey"]["colourfulness"] == 0 and f["colour"]["colourfulness"] > 82 > 0      # "extremely colourful" on H&S's scale
    assert f["grey"]["saturation"] == 0 and f["colour"]["saturation"] > 0.5
    assert f["dark"]["brightness"] < 0.15 < 0.85 < f["bright"]["brightness"]
    assert f["grey"]["contrast"] == 0 < f["colour"]["contrast"] and f["noise"]["contrast"] > 0.2
    assert f["grey"]["edge_density"] == 0 < f["colour"]["edge_density"] < f["noise"]["edge_density"]
    for v in f.values():
        assert (v["faces"], v["face_count"], v["face_area"]) == (0, 0, 0)         # no face in any synthetic picture
        assert all(np.isnan(v[k]) for k in TEXT_FEATURES)                       # foreign images: text features unknown
    # the working size: the same picture at half the size measures the same
    big, small = thumbnail_features(colour), thumbnail_features(colour.resize((640, 360), Image.NEAREST))
    assert small["colourfulness"] == pytest.approx(big["colourfulness"], rel=1e-3) and small["faces"] == big["faces"] == 0


def test_face_found_on_a_real_portrait():
    "matplotlib's bundled public-domain portrait of Grace Hopper: the only real face photo available offline."
    from matplotlib import cbook
    f = thumbnail_features(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    assert f["faces"] == 1 and f["face_count"] == 1 and 0.05 < f["face_area"] < 0.5


def test_unreadable_image_is_one_line_error(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"): thumbnail_features(tmp_path / "x.png")


def test_text_features_from_our_variants(thumbs):
    v = thumbs.variants[0]
    ours = thumbnail_features(v.path, v)
    assert ours["words"] == v.score_parts["word_count"] and ours["legibility"] == v.score
    assert ours["text_height"] == pytest.approx(v.score_parts["cap_share"]) and ours["text_contrast"] >= 3
    drawn = layout_bold(1280, 720, PALETTES["ember"], "coffee roasting", "Explained")
    d = thumbnail_features(drawn.image, {"drawn": drawn, "headline": "coffee roasting"})
    assert d["words"] == 2 and 0.05 < d["text_height"] < 0.3 and 0 < d["legibility"] <= 10
    frame = features_frame(thumbs)
    assert list(frame.columns) == ["variant", "path", *FEATURES] and len(frame) == len(thumbs.variants)
    assert frame[TEXT_FEATURES].notna().all().all()


def test_training_rows_checks_the_counts():
    sim = simulated_channel(6, 3, seed=2)
    with pytest.raises(InputError, match="more clicks than impressions"):
        training_rows(sim.assign(clicks=sim.impressions + 1), 500)
    assert len(training_rows(sim, 0)) == 18
    low = sim.video_id.isin(["sim-000", "sim-001", "sim-002", "sim-003"])
    few = sim.assign(impressions=np.where(low, 100, sim.impressions), clicks=np.where(low, 3, sim.clicks))
    with pytest.raises(InputError, match="only 2 videos"): training_rows(few, 500)


def test_rank_falls_back_to_legibility(tmp_path, thumbs):
    st = settings(tmp_path)
    assert load_ctr_model(st) is None and not (tmp_path / "mlruns.db").exists()     # looking creates no store
    r = rank_variants(thumbs, st)
    assert set(r.source) == {"legibility"} and r["rank"].tolist() == list(range(1, len(thumbs.variants) + 1))
    by_score = sorted(thumbs.variants, key=lambda v: -v.score)
    assert r.score.tolist() == [v.score for v in by_score]
    foreign = rank_variants([v.path for v in thumbs.variants[:2]], st)            # no metadata, no model: nothing to rank by
    assert foreign.score.isna().all() and foreign["rank"].tolist() == [1, 2]


def test_train_beats_baseline_and_registers_champion(tmp_path, thumbs):
    import mlflow
    st = settings(tmp_path)
    assert load_ctr_model(st) is None
    sim = simulated_channel(40, 4, seed=3)                    # SIMULATED: features -> true CTR by a stated formula
    res = train_ctr_model(sim, st, out_dir=tmp_path / "train")
    m = res.metrics
    assert res.beats_baseline and res.alias == "champion" and res.version == "1"
    assert m["heldout.pairwise_accuracy"] > 0.8 > 0.5 == m["baseline.pairwise_accuracy"] and m["heldout.spearman"] > 0.7
    assert m["simulated.true_pairwise_accuracy"] > 0.85 and abs(m["legibility.pairwise_accuracy"] - 0.5) < 0.15
    assert m["heldout.videos"] == 40 and m["heldout.pairs"] == 240
    # the logged held-out table is the one the metric comes from
    table = pd.read_csv(tmp_path / "train" / "heldout_videos.csv")
    assert table.right.sum() / table.pairs.sum() == pytest.approx(m["heldout.pairwise_accuracy"])
    client = mlflow.MlflowClient(tracking_uri=st.get("tracking", "mlflow_uri"))
    run = client.get_run(res.mlflow_run_id)
    assert run.data.params["data"] == "simulated" and run.data.metrics["heldout.pairwise_accuracy"] == pytest.approx(m["heldout.pairwise_accuracy"])
    assert client.get_experiment(run.info.experiment_id).name == "ytempire-thumbnail-ctr"
    assert str(client.get_model_version_by_alias("ytempire-thumbnail-ctr", "champion").version) == "1"
    # the effects it learnt have the simulated signs
    eff = res.model.effects()
    assert eff["text_height"] > 0.1 and eff["colourfulness"] > 0.05 and eff["words"] < -0.05 and eff["edge_density"] < -0.03
    # loaded back (whatever MLflow's global URIs are: a fresh process has other ones), it ranks our variants by predicted CTR
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/elsewhere.db"); mlflow.set_registry_uri(f"sqlite:///{tmp_path}/elsewhere.db")
    model = load_ctr_model(st)
    assert model.version == "1"
    r = rank_variants(thumbs, st)
    assert set(r.source) == {"ctr-model v1"} and r.score.is_monotonic_decreasing and r.score.between(0.001, 0.2).all()
    assert r.score.tolist() == pytest.approx(sorted(model.predict(features_frame(thumbs)), reverse=True))
    # a channel where thumbnails make no difference: the new version is only a challenger, the champion stays
    rng = np.random.default_rng(4)
    flat = sim.assign(clicks=rng.binomial(sim.impressions, 0.03))
    res2 = train_ctr_model(flat, st, out_dir=tmp_path / "flat")
    assert not res2.beats_baseline and res2.alias == "challenger" and res2.version == "2"
    assert abs(res2.metrics["heldout.pairwise_accuracy"] - 0.5) < 0.1
    assert load_ctr_model(st).version == "1"
    # stage 31 with the champion: each variant carries its predicted CTR, and the legible one ranked first is chosen
    from ytempire.pipeline import thumbnail_stage
    scenes = [Scene(narration="n", on_screen="o", kind="hook")] + [Scene(narration="n", on_screen="o")] * 4
    script = Script(title="t", hook="h", scenes=scenes, cta="c", description="d", provider="test")
    staged = thumbnail_stage(script, Brief(topic="How coffee roasting works"), None, st, tmp_path / "stage", ctr_model=model)
    pred = {t.variant: t.score_parts["predicted_ctr"] for t in staged.variants}
    assert len(pred) == len(staged.variants) and len(set(pred.values())) > 1
    legible = [t for t in staged.variants if t.legible] or staged.variants
    assert staged.variants[staged.chosen].variant == max(legible, key=lambda t: pred[t.variant]).variant
    plain = thumbnail_stage(script, Brief(topic="How coffee roasting works"), None, st, tmp_path / "plain")
    assert all("predicted_ctr" not in t.score_parts for t in plain.variants)

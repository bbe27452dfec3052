"""Trend sources and detection: the CSV importer on bad files (one-line errors naming the file), both schemas and the
duplicates between them; the YouTube Data API v3 client (official google-api-python-client, bundled discovery
document) against a loopback server speaking the API's JSON (tests/mockyoutube.py): success with quota units in the
ledger, paging, 403 quotaExceeded, 500 retried, a provider over its daily quota sending nothing, fallback to CSV;
and the `ytempire trends` command."""
import json
import pytest
from conftest import ROOT, ytempire
from mockyoutube import MockYouTube
from ytempire.config import Settings, InputError
from ytempire.ledger import Ledger, Guard, Metrics
from ytempire.schemas import Brief, CostRecord
from ytempire.trends import (COLUMNS, CsvTrendSource, TrendSource, TrendSourceError, YouTubeTrendSource, load_trending,
                             research_trends, trend_report, trending_videos)

DATA = ROOT / "data" / "trending"
HEADER_2020 = ("video_id,title,publishedAt,channelId,channelTitle,categoryId,trending_date,tags,view_count,likes,dislikes,"
               "comment_count,thumbnail_link,comments_disabled,ratings_disabled,description\n")

BAD = {  # name: (bytes, part of the one-line message)
    "empty.csv": (b"", "is empty"),
    "blank.csv": (b"\n\n  \n", "is empty"),
    "garbage.csv": (bytes(range(256)) * 16, "is binary"),
    "nul.csv": (b"video_id,title\x00\x00,views\n", "is binary"),
    "cp1252.csv": ("video_id,trending_date,title,views\nx,17.14.11,Caf\u00e9 \u2013 d\u00e9j\u00e0 vu,1\n".encode("cp1252"), "is not UTF-8"),
    "utf16.csv": ("video_id,trending_date,title,views\n".encode("utf-16"), "UTF-16"),
    "columns.csv": (b"id,name,count\n1,a,2\n", "lacks columns video_id, title, trending_date, views"),
    "header.csv": (HEADER_2020.encode(), "no rows"),
    "dates.csv": (b"video_id,trending_date,title,views\nx,17.14.11,T,1\ny,not-a-date,T,2\n", "not dates (first: 'not-a-date' on line 3)"),
    "views.csv": (b"video_id,trending_date,title,views\nx,17.14.11,T,many\n", "is not view counts"),
    "quotes.csv": (b'video_id,trending_date,title,views\n"x,17.14.11,"T"x"y,1\n', "trending data"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_csv_one_line_error(tmp_path, name):
    content, part = BAD[name]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError) as e:
        load_trending([tmp_path / name])
    msg = str(e.value)
    assert name in msg and part in msg and "\n" not in msg, msg


def test_missing_file_and_cli_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_trending([tmp_path / "nope.csv"])
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 4)
    r = ytempire("trends", "--data", tmp_path / "garbage.csv", cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "garbage.csv is binary" in r.stderr, r.stderr


def test_every_bundled_file_and_schemas():
    df = load_trending([DATA])
    assert list(df.columns) == COLUMNS
    assert set(df.country) == {"US", "GB", "IN", "BR", "CA", "DE", "FR", "MX"} and set(df.schema) == {"2017", "2017-reduced", "2020"}
    assert df.trending_date.notna().all() and str(df.trending_date.dt.tz) == "UTC"
    assert not df.duplicated(["video_id", "trending_date", "country"]).any()
    assert (df.category != "Unknown").mean() > 0.99
    us17 = df[df.source.eq("2017_US.csv")]
    assert len(us17) == 3000 and us17.video_id.nunique() == 791 and us17.trending_date.min().strftime("%Y-%m-%d") == "2017-11-14"


def test_reduced_schema_dedup_and_country_column(tmp_path):
    full = (DATA / "2017_US.csv").read_text(encoding="utf-8")
    src = load_trending([DATA / "2017_US.csv"]).head(40)
    (tmp_path / "2017_US.csv").write_text(full, encoding="utf-8")
    reduced = src[["video_id"]].assign(trending_date=src.trending_date.dt.strftime("%y.%d.%m"), title=src.title,
                                       category_id=src.category_id, views=src.views, likes=src.likes, dislikes=0, comment_count=0)
    extra = "#NAME?,17.14.11,lost id,22,1,1,0,0\nnew1,18.01.02,New year,43,10,1,0,0\n"
    (tmp_path / "2017_US_reduced.csv").write_text(reduced.to_csv(index=False) + extra, encoding="utf-8")
    both = load_trending([tmp_path])
    assert len(both) == 3001                                   # 40 duplicates and the #NAME? row dropped, one new row
    new = both.set_index("video_id").loc["new1"]
    assert (new.schema, new.country, new.category, new.channel, new.tags) == ("2017-reduced", "US", "Shows", "", [])
    assert both[both.video_id.isin(src.video_id)].schema.eq("2017").all()   # the complete rows win
    # no country in the file name: the `country` column; neither: ""
    (tmp_path / "mine.csv").write_text("video_id,trending_date,title,views,country\na,2024-01-01T00:00:00Z,T,5,de\n", encoding="utf-8")
    assert load_trending([tmp_path / "mine.csv"]).country.tolist() == ["DE"]


def test_trend_report_and_cli_json(tmp_path):
    rep = trend_report(load_trending([DATA / "2017_US.csv"]), "US", top=5)
    assert len(rep) == 5 and rep.views_per_day.notna().all() and rep.hours_to_trend.notna().all()
    r = ytempire("trends", "--country", "US", "--top", "3", "--json", "--data", DATA / "2020_US.csv", DATA / "2020_IN.csv",
                 cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 3 and {x["country"] for x in rows} == {"US"} and {"views_per_day", "rising", "best_hour"} <= set(rows[0])
    r = ytempire("trends", "--country", "FR", cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "available: GB, US" in r.stderr


# --- the YouTube Data API v3 client against the loopback server

def yt_settings(tmp_path, m, **over):
    o = {"paths.ledger": str(tmp_path / "ledger.db"), "retry.attempts": 3, "retry.max_seconds": 10, "trends.youtube_timeout": 5,
         "trends.youtube_base_url": m.url}
    o.update({k.replace("__", "."): v for k, v in over.items()})
    return Settings(env={"YOUTUBE_API_KEY": "yt-test-key-123"}, overrides=o)


def source(st, run_id="t"):
    led = Ledger(st.get("paths", "ledger"))
    return YouTubeTrendSource(st, led, run_id, Guard(led, st, run_id, metrics=Metrics())), led


def test_youtube_most_popular_paged_units_in_ledger(tmp_path):
    with MockYouTube(videos=120) as m:
        yt, led = source(yt_settings(tmp_path, m))
        assert isinstance(yt, TrendSource)
        df = yt.videos("gb", limit=120)
        seen = m.requests
    assert len(df) == 120 and list(df.columns) == COLUMNS and df.video_id.is_unique
    assert set(df.country) == {"GB"} and set(df.schema) == {"api"} and df.views.gt(0).all()
    assert df.comments_disabled.sum() > 0 and (df.category != "Unknown").all() and df.published.notna().all()
    paths = [r["path"] for r in seen]
    assert paths == ["/youtube/v3/videos"] * 3 + ["/youtube/v3/videoCategories"]
    q = seen[0]["query"]
    assert (q["chart"], q["regionCode"], q["part"], q["key"]) == ("mostPopular", "GB", "snippet,statistics", "yt-test-key-123")
    assert seen[1]["query"]["pageToken"] == "CAAQ50"
    calls = led.calls()
    assert list(calls.model) == ["videos.list"] * 3 + ["videoCategories.list"]
    assert set(calls.provider) == {"youtube"} and set(calls.unit) == {"units"} and set(calls.outcome) == {"ok"}
    assert led.usage("youtube") == 4 and calls.cost_usd.sum() == 0


def test_youtube_search_costs_100_units(tmp_path):
    with MockYouTube(videos=30) as m:
        yt, led = source(yt_settings(tmp_path, m))
        df = yt.search("minecraft", order="date", published_after="2024-01-01", country="US", limit=30)
        q = m.requests[0]["query"]
    assert len(df) == 30 and df.video_id.str.startswith("vid").all() and df.published.notna().all()
    assert (q["q"], q["order"], q["publishedAfter"], q["type"]) == ("minecraft", "date", "2024-01-01T00:00:00Z", "video")
    assert led.usage("youtube") == 100 and list(led.calls().units) == [100]


def test_youtube_quota_exceeded_403_not_retried(tmp_path):
    with MockYouTube(default=("403", "quotaExceeded")) as m:
        yt, led = source(yt_settings(tmp_path, m))
        with pytest.raises(TrendSourceError) as e:
            yt.videos("US")
        n = m.count()
    msg = str(e.value)
    assert n == 1 and "403 quotaExceeded" in msg and "\n" not in msg and "yt-test-key-123" not in msg
    calls = led.calls()
    assert list(calls.outcome) == ["error"] and "quotaExceeded" in calls.error[0] and "yt-test-key-123" not in calls.error[0]
    assert led.usage("youtube") == 0


def test_youtube_500_retried_then_error(tmp_path):
    with MockYouTube([("500",), ("500",)]) as m:     # two failures, then success
        yt, led = source(yt_settings(tmp_path, m))
        cats = yt.categories("US")
    assert cats[20] == "Gaming" and list(led.calls().outcome) == ["server_error", "server_error", "ok"]
    with MockYouTube(default=("500",)) as m:
        yt, led = source(yt_settings(tmp_path, m, retry__attempts=2))
        with pytest.raises(TrendSourceError, match="failed after 2 attempts"):
            yt.categories("US")
        assert m.count() == 2


def test_youtube_over_daily_quota_sends_nothing(tmp_path):
    with MockYouTube() as m:
        st = yt_settings(tmp_path, m, quotas__youtube=150)
        yt, led = source(st)
        led.record(CostRecord(provider="youtube", model="search.list", capability="trends", units=100, unit="units"), "earlier")
        with pytest.raises(TrendSourceError, match="youtube daily quota"):
            yt.search("anything")                         # 100 + 100 > 150
        assert m.count() == 0
        yt.categories("US")                               # 1 unit still fits
        assert m.count() == 1
    assert list(led.calls().outcome) == ["ok", "quota", "ok"]


def test_fallback_to_csv_with_reason(tmp_path):
    with MockYouTube(default=("403", "quotaExceeded")) as m:
        st = yt_settings(tmp_path, m, trends__providers="youtube, csv")
        led = Ledger(st.get("paths", "ledger"))
        videos, why = trending_videos(st, "US", ledger=led)
        rep = research_trends(Brief(topic="Easy pasta recipe"), st, ledger=led, run_id="run-7")
    assert set(videos.source) == {"2020_US.csv"} and len(why) == 1 and "quotaExceeded" in why[0] and "csv served" in why[0]
    assert "youtube failed" in rep.source and rep.keywords and rep.provider == "csv"
    [fb] = rep.fallbacks
    assert (fb.capability, fb.failed, fb.served_by) == ("trends", "youtube", "csv") and "403 quotaExceeded" in fb.reason
    assert "yt-test-key-123" not in fb.reason
    calls = led.calls(run_id="run-7")                            # the stage's API call is in the ledger under the run's id
    assert list(zip(calls.provider, calls.model, calls.outcome)) == [("youtube", "videos.list", "error")]
    assert isinstance(CsvTrendSource([DATA / "2020_US.csv"]), TrendSource)


def test_research_trends_served_by_youtube_under_the_run_id(tmp_path):
    with MockYouTube(videos=60) as m:
        st = yt_settings(tmp_path, m, trends__providers="youtube, csv", trends__relevance="false")
        led = Ledger(st.get("paths", "ledger"))
        rep = research_trends(Brief(topic="Minecraft survival tips"), st, ledger=led, run_id="run-8",
                              guard=Guard(led, st, "run-8", metrics=Metrics()))
    assert (rep.provider, rep.fallbacks, rep.source) == ("youtube", [], "youtube") and rep.videos_considered == 60
    calls = led.calls(run_id="run-8")
    assert set(calls.provider) == {"youtube"} and calls.outcome.eq("ok").all() and len(led.calls(run_id="-")) == 0
    assert list(calls.model) == ["videos.list", "videos.list", "videoCategories.list"] and led.usage("youtube") == 3


def test_trend_keywords_only_when_relevant_to_the_topic(caplog):
    "The demo topic matches one coffee-crisis video: none of its tags is about roasting, and each decision is logged."
    import logging
    from ytempire.config import Settings
    st = Settings(env={})
    with caplog.at_level(logging.INFO, logger="ytempire.trends"):
        rep = research_trends(Brief(topic="How coffee roasting works"), st, run_id="demo")
    floor = st.getfloat("trends", "min_keyword_relevance")
    assert rep.keywords == [] and {"agriculture", "cafetero", "climate change news", "growing coffee"} <= set(rep.dropped_keywords)
    assert set(rep.keyword_relevance) == set(rep.dropped_keywords) and max(rep.keyword_relevance.values()) < floor
    assert rep.related_titles == [] and rep.provider == "csv"
    lines = [r.getMessage() for r in caplog.records if "trend keyword" in r.getMessage()]
    assert len(lines) == len(rep.keyword_relevance) and all("dropped: relevance" in x and "[demo]" in x for x in lines)
    f1 = research_trends(Brief(topic="Formula 1 race highlights"), st)
    assert {"grand prix", "motor racing"} <= set(f1.keywords) and all(f1.keyword_relevance[k] >= floor for k in f1.keywords)


def test_run_record_says_which_trend_source_served(tmp_path):
    "A run whose YouTube source is over quota: the API call is in the run's costs, the fallback in run.json, csv the provider."
    from ytempire.config import Settings
    from ytempire.pipeline import make_video
    from ytempire.schemas import RunRecord
    with MockYouTube(default=("403", "quotaExceeded")) as m:
        st = Settings(env={"YOUTUBE_API_KEY": "yt-test-key-123"}, overrides={
            "paths.ledger": str(tmp_path / "ledger.db"), "trends.providers": "youtube, csv", "trends.youtube_base_url": m.url,
            "trends.relevance": "false", "tracking.enabled": "false", "text.providers": "offline",
            "engagement.mlflow_uri": "sqlite:////nonexistent/ytempire-tests/mlruns.db"})
        rec = make_video(Brief(topic="Easy pasta recipe", duration=8), st, tmp_path / "run", progress=False)
    saved = RunRecord.model_validate_json((tmp_path / "run" / "run.json").read_text(), context={"root": str(tmp_path / "run")})
    for r in (rec, saved):
        assert r.providers["trends"] == "csv" and r.providers["text"] == "offline-template"
        assert [(f.capability, f.failed, f.served_by) for f in r.fallbacks] == [("trends", "youtube", "csv")]
        assert [(c.provider, c.model, c.outcome) for c in r.costs if c.capability == "trends"] == [("youtube", "videos.list", "error")]
        assert next(s for s in r.stages if s.stage == "10-trends").provider == "csv"
    assert r.metrics["run.fallbacks"] == 1 and "yt-test-key-123" not in (tmp_path / "run" / "run.json").read_text()

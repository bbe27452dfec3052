"""The channel side of the YouTube APIs (ytempire/youtube.py) with the official client (google-api-python-client, bundled
discovery documents, google-auth) pointed at a loopback server speaking the Data API, the Reporting API and an OAuth
token endpoint (tests/mockyoutube.py): thumbnails.set uploads the file intact and costs 50 units; 403 quotaExceeded is
one line and not retried; 500 and 429 (after its Retry-After) and timeouts are retried with each attempt in the ledger;
set_title keeps the snippet; the reach report is parsed, paged, filtered and a regenerated day replaces the old one;
credentials are refreshed at the token endpoint and never reach the ledger or the logs."""
import json, logging, time
from datetime import date, datetime, timezone
from pathlib import Path
import pytest
from PIL import Image
from mockyoutube import REACH_HEADER, MockYouTube
from ytempire.config import ConfigError, InputError, Settings
from ytempire.ledger import Guard, Ledger, Metrics
from ytempire.youtube import REACH_COLUMNS, ChannelError, YouTubeChannel, channel_credentials

VIDEO, OTHER = "abcDEF12345", "xyzXYZ98765"
TOKEN = "mock-access-token"


def settings(tmp_path, env=None, **over):
    o = {"youtube.timeout": "3", "retry.max_wait": "5", "paths.ledger": str(tmp_path / "ledger.db")}
    o.update({k.replace("__", "."): str(v) for k, v in over.items()})
    return Settings(env={"YOUTUBE_OAUTH_TOKEN": TOKEN} if env is None else env, overrides=o)


def channel(m, tmp_path, env=None, credentials=None, **over):
    s = settings(tmp_path, env, **over)
    ledger = Ledger(tmp_path / "ledger.db")
    ch = YouTubeChannel(s, ledger=ledger, run_id="ab-test", guard=Guard(ledger, s, "ab-test", metrics=Metrics()),
                        credentials=credentials, data_base_url=m.url, reporting_base_url=m.url)
    return ch, ledger


def png(tmp_path, name="thumb.png", colour=(200, 40, 40)) -> Path:
    p = tmp_path / name
    Image.new("RGB", (128, 72), colour).save(p)
    return p


def calls(ledger, provider=None):
    df = ledger.calls()
    return df if provider is None else df[df.provider.eq(provider)].reset_index(drop=True)


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


# -- thumbnails.set

def test_set_thumbnail_uploads_png_intact_and_costs_50_units(tmp_path):
    p = png(tmp_path)
    with MockYouTube() as m:
        ch, ledger = channel(m, tmp_path)
        out = ch.set_thumbnail(VIDEO, p)
        jpg = tmp_path / "thumb.jpg"
        Image.new("RGB", (128, 72), (0, 90, 200)).save(jpg, quality=90)
        ch.set_thumbnail(OTHER, jpg)
    assert out["kind"] == "youtube#thumbnailSetResponse" and out["items"][0]["default"]["width"] == 120
    assert m.thumbnails[VIDEO] == ("image/png", p.read_bytes())              # the bytes arrived unchanged
    assert m.thumbnails[OTHER] == ("image/jpeg", jpg.read_bytes())
    req = [r for r in m.requests if r["route"] == "thumbnails.set"]
    assert [(r["method"], r["query"]["uploadType"], r["query"]["videoId"], r["auth"]) for r in req] == [
        ("POST", "media", VIDEO, True), ("POST", "media", OTHER, True)]
    df = calls(ledger)
    assert df[["provider", "capability", "model", "units", "unit", "outcome", "run_id"]].values.tolist() == [
        ["youtube", "channel", "thumbnails.set", 50.0, "units", "ok", "ab-test"]] * 2
    assert ledger.usage("youtube") == 100


def test_set_thumbnail_refuses_bad_files_before_any_request(tmp_path):
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024))
    (tmp_path / "pic.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    with MockYouTube() as m:
        ch, ledger = channel(m, tmp_path)
        for name, part in [("missing.png", "does not exist"), ("big.png", "YouTube takes at most 2 MB"), ("pic.webp", "is not a PNG or JPEG")]:
            with pytest.raises(InputError) as e:
                ch.set_thumbnail(VIDEO, tmp_path / name)
            assert part in one_line(e)
        with pytest.raises(InputError, match="is not a YouTube video id"):
            ch.set_thumbnail("https://youtu.be/abcDEF12345", png(tmp_path))
    assert m.count() == 0 and calls(ledger).empty


def test_quota_exceeded_is_one_line_and_not_retried(tmp_path):
    with MockYouTube(channel_actions={"thumbnails.set": [("403", "quotaExceeded")]}) as m:
        ch, ledger = channel(m, tmp_path)
        with pytest.raises(ChannelError) as e:
            ch.set_thumbnail(VIDEO, png(tmp_path))
    msg = one_line(e)
    assert "thumbnails.set: 403 quotaExceeded" in msg and "resets at midnight Pacific time" in msg, msg
    assert m.count("thumbnails.set") == 1 and VIDEO not in m.thumbnails
    assert calls(ledger)[["outcome", "units"]].values.tolist() == [["error", 0.0]]


def test_server_errors_are_retried_then_succeed(tmp_path):
    with MockYouTube(channel_actions={"thumbnails.set": [("500",), ("500",)]}) as m:
        ch, ledger = channel(m, tmp_path)
        ch.set_thumbnail(VIDEO, png(tmp_path))
    assert m.count("thumbnails.set") == 3 and VIDEO in m.thumbnails
    df = calls(ledger)
    assert df.outcome.tolist() == ["server_error", "server_error", "ok"] and df.units.tolist() == [0, 0, 50]
    assert "500 backendError" in df.error[0]
    with MockYouTube(channel_actions={"thumbnails.set": [("500",)] * 5}) as m:
        ch, ledger = channel(m, tmp_path / "again")
        with pytest.raises(ChannelError) as e:
            ch.set_thumbnail(VIDEO, png(tmp_path))
    assert "failed (500 backendError" in one_line(e) and "no more attempts" in str(e.value) and m.count("thumbnails.set") == 3


def test_rate_limit_waits_for_retry_after(tmp_path):
    with MockYouTube(channel_actions={"thumbnails.set": [("429", 2)]}) as m:
        ch, ledger = channel(m, tmp_path)
        ch.set_thumbnail(VIDEO, png(tmp_path))
    t = [r["time"] for r in m.requests if r["route"] == "thumbnails.set"]
    assert len(t) == 2 and t[1] - t[0] >= 2.0, t                # Retry-After: 2 honoured
    assert calls(ledger).outcome.tolist() == ["rate_limited", "ok"]
    with MockYouTube(channel_actions={"thumbnails.set": [("429", 60)]}) as m:   # longer than [retry] max_wait: no retry
        ch, _ = channel(m, tmp_path / "long")
        t0 = time.monotonic()
        with pytest.raises(ChannelError, match="429 rateLimitExceeded"):
            ch.set_thumbnail(VIDEO, png(tmp_path))
    assert m.count("thumbnails.set") == 1 and time.monotonic() - t0 < 5


def test_timeout_is_retried(tmp_path):
    with MockYouTube(channel_actions={"videos.list": [("timeout", 3)]}) as m:
        ch, ledger = channel(m, tmp_path, youtube__timeout=0.5)
        ch.set_title(VIDEO, "Coffee roasting, explained")
    assert calls(ledger).outcome.tolist() == ["timeout", "ok", "ok"]
    assert m.channel_videos[VIDEO]["snippet"]["title"] == "Coffee roasting, explained"


def test_own_quota_refuses_before_sending(tmp_path):
    with MockYouTube() as m:
        ch, ledger = channel(m, tmp_path, quotas__youtube=60)      # shared with the trend source's units
        ch.set_thumbnail(VIDEO, png(tmp_path))
        with pytest.raises(ChannelError) as e:
            ch.set_thumbnail(OTHER, png(tmp_path))
    assert "thumbnails.set not sent: youtube daily quota: 50 of 60 units used today" in one_line(e)
    assert m.count("thumbnails.set") == 1 and calls(ledger).outcome.tolist() == ["ok", "quota"]


# -- set_title

def test_set_title_keeps_category_description_and_tags(tmp_path):
    with MockYouTube() as m:
        ch, ledger = channel(m, tmp_path)
        out = ch.set_title(VIDEO, "  Coffee roasting in 60 seconds ")
    sent = m.updates[0]
    assert sent["id"] == VIDEO and sent["snippet"] == {"title": "Coffee roasting in 60 seconds", "description": "Beans, heat and time.",
                                                       "tags": ["coffee"], "categoryId": "27", "defaultLanguage": "en"}
    now = m.channel_videos[VIDEO]["snippet"]
    assert (now["title"], now["categoryId"], now["description"], now["tags"]) == ("Coffee roasting in 60 seconds", "27",
                                                                                 "Beans, heat and time.", ["coffee"])
    assert out["snippet"]["title"] == "Coffee roasting in 60 seconds"
    assert [(r["method"], r["route"]) for r in m.requests] == [("GET", "videos.list"), ("PUT", "videos.update")]
    df = calls(ledger)
    assert df[["model", "units"]].values.tolist() == [["videos.list", 1.0], ["videos.update", 50.0]] and ledger.usage("youtube") == 51


def test_set_title_unknown_video_and_bad_titles(tmp_path):
    with MockYouTube() as m:
        ch, _ = channel(m, tmp_path)
        with pytest.raises(ChannelError) as e:
            ch.set_title("nope0000000", "A title")
        assert "video nope0000000 was not found" in one_line(e) and m.count("videos.update") == 0
        for title, part in [("", "empty"), ("x" * 101, "YouTube allows 100"), ("Best <ever>", "holds < or >")]:
            with pytest.raises(InputError, match=part):
                ch.set_title(VIDEO, title)
        assert m.count() == 1


# -- the reach report

def reach_csv(rows) -> str:
    "rows: (yyyymmdd, video, country, impressions, ctr)"
    return REACH_HEADER + "".join(f"{d},UCmockchannel,{v},on_demand,not_subscribed,{c},{i},{r}\n" for d, v, c, i, r in rows)


def test_reach_report_two_days_two_videos(tmp_path):
    with MockYouTube(report_page_size=1) as m:
        m.add_report(date(2026, 11, 10), reach_csv([("20261110", VIDEO, "US", 1000, 0.052), ("20261110", VIDEO, "GB", 500, 0.031),
                                                     ("20261110", OTHER, "US", 300, 0.07)]))
        m.add_report(date(2026, 11, 11), reach_csv([("20261111", VIDEO, "US", 1200, 0.05), ("20261111", OTHER, "US", 333, 0.0333),
                                                     ("20261111", OTHER, "DE", 10, 0.0)]))
        m.add_report(date(2026, 11, 14), reach_csv([("20261114", VIDEO, "US", 5, 0.2)]))          # outside the range
        ch, ledger = channel(m, tmp_path)
        df = ch.reach_report(date(2026, 11, 10), "2026-11-11")
        only = ch.reach_report(date(2026, 11, 10), date(2026, 11, 11), video_ids=[OTHER])
    assert list(df.columns) == REACH_COLUMNS and str(df.date.dt.tz) == "UTC"
    got = [(d.strftime("%Y-%m-%d"), v, i, c) for d, v, i, c in zip(df.date, df.video_id, df.impressions, df.clicks)]
    assert got == [("2026-11-10", VIDEO, 1500, 52 + 16), ("2026-11-10", OTHER, 300, 21),
                   ("2026-11-11", VIDEO, 1200, 60), ("2026-11-11", OTHER, 343, 11)]
    assert df.ctr.round(5).tolist() == [round(68 / 1500, 5), 0.07, 0.05, round(11 / 343, 5)]
    assert only.video_id.tolist() == [OTHER, OTHER] and only.clicks.tolist() == [21, 11]
    lists = [r for r in m.requests if r["route"] == "reports.list"][:2]
    assert [r["query"].get("startTimeAtOrAfter") for r in lists] == ["2026-11-10T00:00:00Z"] * 2
    assert lists[0]["query"]["startTimeBefore"] == "2026-11-12T00:00:00Z" and lists[1]["query"]["pageToken"] == "1"
    rep = calls(ledger, "youtube_reporting")
    assert set(rep.capability) == {"reports"} and set(rep.unit) == {"requests"} and rep.outcome.eq("ok").all()
    assert rep.model.tolist()[:5] == ["jobs.list", "jobs.reports.list", "jobs.reports.list", "media.download", "media.download"]
    assert ledger.usage("youtube") == 0 and ledger.usage("youtube_reporting") == len(rep)


def test_reach_report_creates_the_job_once(tmp_path):
    with MockYouTube() as m:
        ch, ledger = channel(m, tmp_path)
        first = ch.reach_report(date(2026, 11, 1), date(2026, 11, 7))
        again = ch.reach_report(date(2026, 11, 1), date(2026, 11, 7))
    assert first.empty and again.empty and list(first.columns) == REACH_COLUMNS
    assert [(j["reportTypeId"], j["name"]) for j in m.jobs] == [("channel_reach_basic_a1", "ytempire reach")]
    assert m.count("jobs.create") == 1 and calls(ledger, "youtube_reporting").model.tolist() == [
        "jobs.list", "jobs.create", "jobs.reports.list", "jobs.list", "jobs.reports.list"]


def test_regenerated_day_replaces_the_old_report(tmp_path):
    with MockYouTube() as m:
        m.add_report(date(2026, 11, 10), reach_csv([("20261110", VIDEO, "US", 1000, 0.05)]),
                     created=datetime(2026, 11, 12, 9, tzinfo=timezone.utc))
        m.add_report(date(2026, 11, 10), reach_csv([("20261110", VIDEO, "US", 1100, 0.06)]),      # regenerated with late data
                     created=datetime(2026, 11, 15, 9, tzinfo=timezone.utc))
        m.add_report(date(2026, 11, 11), reach_csv([("20261111", VIDEO, "US", 700, 0.1)]))
        ch, _ = channel(m, tmp_path)
        df = ch.reach_report(date(2026, 11, 10), date(2026, 11, 11))
    assert df[["impressions", "clicks"]].values.tolist() == [[1100, 66], [700, 70]]
    assert m.count("media.download") == 2                 # the older report of the 10th is not downloaded


def test_damaged_report_and_malformed_json(tmp_path):
    with MockYouTube(channel_actions={"media.download": [("malformed",)], "jobs.list": [("malformed",)]}) as m:
        rep = m.add_report(date(2026, 11, 10), reach_csv([("20261110", VIDEO, "US", 1000, 0.05)]))
        ch, ledger = channel(m, tmp_path)
        with pytest.raises(ChannelError) as e:
            ch.reach_report(date(2026, 11, 10), date(2026, 11, 10))
    msg = one_line(e)
    assert f"report {rep['id']} (2026-11-10) is not a CSV" in msg, msg
    assert calls(ledger).outcome.tolist()[:2] == ["malformed", "ok"]            # the truncated jobs.list JSON was retried


def test_reporting_errors(tmp_path):
    with MockYouTube(channel_actions={"jobs.list": [("403", "quotaExceeded")]}) as m:
        ch, _ = channel(m, tmp_path)
        with pytest.raises(ChannelError, match="YouTube Reporting API jobs.list: 403 quotaExceeded; the daily quota resets"):
            ch.reach_report(date(2026, 11, 10), date(2026, 11, 10))
    with MockYouTube(channel_actions={"media.download": [("500",), ("429", 1)]}) as m:
        m.add_report(date(2026, 11, 10), reach_csv([("20261110", VIDEO, "US", 10, 0.1)]))
        ch, ledger = channel(m, tmp_path / "retry")
        assert ch.reach_report(date(2026, 11, 10), date(2026, 11, 10)).clicks.tolist() == [1]
    assert calls(ledger, "youtube_reporting").outcome.tolist()[-3:] == ["server_error", "rate_limited", "ok"]
    with pytest.raises(InputError, match="before it starts"):
        ch.reach_report(date(2026, 11, 10), date(2026, 11, 9))


# -- credentials

def authorized_user_file(tmp_path, refresh_token="mock-refresh-token", secret="client-secret-Zq81") -> Path:
    f = tmp_path / "youtube-user.json"
    f.write_text(json.dumps({"type": "authorized_user", "client_id": "123-mock.apps.googleusercontent.com", "client_secret": secret,
                             "refresh_token": refresh_token, "token_uri": "http://127.0.0.1:9/evil"}))
    return f


def test_missing_and_broken_credentials(tmp_path):
    with pytest.raises(ConfigError) as e:
        YouTubeChannel(settings(tmp_path, env={}))
    assert "set YOUTUBE_CREDENTIALS to an authorized-user JSON file" in one_line(e)
    (tmp_path / "sa.json").write_text(json.dumps({"type": "service_account", "client_email": "x@y"}))
    with pytest.raises(ConfigError, match="is a service_account file"):
        channel_credentials(settings(tmp_path, env={"YOUTUBE_CREDENTIALS": str(tmp_path / "sa.json")}))
    # the file's own token_uri is ignored (google-auth): only the caller moves the token endpoint
    f = authorized_user_file(tmp_path)
    assert channel_credentials(settings(tmp_path, env={"YOUTUBE_CREDENTIALS": str(f)})).token_uri == "https://oauth2.googleapis.com/token"


def test_authorized_user_file_refreshes_at_the_token_endpoint(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    f = authorized_user_file(tmp_path)
    with MockYouTube(tokens=()) as m:          # no access token is valid until the mock issues one
        env = {"YOUTUBE_CREDENTIALS": str(f)}
        creds = channel_credentials(settings(tmp_path, env), token_uri=m.url + "/token")
        ch, ledger = channel(m, tmp_path, env=env, credentials=creds)
        ch.set_thumbnail(VIDEO, png(tmp_path))
        assert len(m.issued) == 1 and creds.token == m.issued[0] and creds.valid
        m.tokens.clear()                        # revoked: the next request gets 401, google-auth refreshes and retries once
        ch.set_title(VIDEO, "Refreshed")
        secrets = [m.issued[0], m.issued[1], "mock-refresh-token", "client-secret-Zq81"]
    assert len(m.issued) == 2 and creds.token == m.issued[1] and VIDEO in m.thumbnails
    assert [r["route"] for r in m.requests] == ["token", "thumbnails.set", "videos.list", "token", "videos.list", "videos.update"]
    assert [r["status"] for r in m.requests] == [200, 200, 401, 200, 200, 200]
    db = (tmp_path / "ledger.db").read_bytes()
    text = caplog.text + json.dumps(ledger.calls().astype(str).values.tolist())
    for s in secrets: assert s.encode() not in db and s not in text, s
    assert "thumbnail of abcDEF12345 set" in caplog.text          # the log is there, without the secrets


def test_refused_credentials_name_the_fix(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with MockYouTube() as m:
        ch, ledger = channel(m, tmp_path, env={"YOUTUBE_OAUTH_TOKEN": "stale-token-8e1f"})   # not one the mock knows
        with pytest.raises(ChannelError) as e:
            ch.set_thumbnail(VIDEO, png(tmp_path))
    msg = one_line(e)
    assert "the access token was refused" in msg and "cannot be refreshed; set YOUTUBE_CREDENTIALS" in msg, msg
    assert m.count("thumbnails.set") == 1 and [r["status"] for r in m.requests] == [401]
    with MockYouTube(channel_actions={"videos.update": [("403", "forbidden")]}) as m:
        ch, _ = channel(m, tmp_path / "forbidden")
        with pytest.raises(ChannelError) as e:
            ch.set_title(VIDEO, "Mine?")
    assert "refused the credentials (403 forbidden" in one_line(e) and m.count("videos.update") == 1
    assert "stale-token-8e1f" not in caplog.text and b"stale-token-8e1f" not in (tmp_path / "ledger.db").read_bytes()


# -- the mock's other upload forms and a server that never answers

def test_mock_accepts_resumable_and_multipart_uploads(tmp_path):
    import urllib.request
    import google_auth_httplib2, httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build
    from googleapiclient.http import MediaFileUpload
    p = png(tmp_path)
    with MockYouTube() as m:
        http = google_auth_httplib2.AuthorizedHttp(Credentials(token=TOKEN), http=httplib2.Http(timeout=5))
        yt = build("youtube", "v3", http=http, static_discovery=True, client_options={"api_endpoint": m.url})
        req = yt.thumbnails().set(videoId=VIDEO, media_body=MediaFileUpload(str(p), mimetype="image/png", resumable=True))
        req.uri = req.uri.replace("https://", "http://", 1)       # what YouTubeChannel's _endpoint_scheme does
        assert req.execute()["kind"] == "youtube#thumbnailSetResponse"
        assert m.thumbnails[VIDEO] == ("image/png", p.read_bytes())
        boundary = "==mock=="
        body = (f"--{boundary}\r\ncontent-type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\ncontent-type: image/png\r\n"
                f"content-transfer-encoding: binary\r\n\r\n").encode() + p.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        r = urllib.request.Request(f"{m.url}/upload/youtube/v3/thumbnails/set?videoId={OTHER}&uploadType=multipart", data=body,
                                   headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": f'multipart/related; boundary="{boundary}"'})
        with urllib.request.urlopen(r, timeout=5) as resp: assert resp.status == 200
    assert m.thumbnails[OTHER] == ("image/png", p.read_bytes())
    assert [(r["method"], r["query"].get("uploadType")) for r in m.requests] == [("POST", "resumable"), ("PUT", "resumable"), ("POST", "multipart")]


def test_server_that_never_answers_is_one_line(tmp_path):
    with MockYouTube(channel_actions={"jobs.list": [("timeout", 5)] * 2}) as m:
        ch, ledger = channel(m, tmp_path, youtube__timeout=0.3, retry__attempts=2)
        t0 = time.monotonic()
        with pytest.raises(ChannelError) as e:
            ch.reach_report(date(2026, 11, 10), date(2026, 11, 10))
    assert "YouTube Reporting API jobs.list is unreachable after 2 attempts (TimeoutError)" in one_line(e)
    assert calls(ledger).outcome.tolist() == ["timeout", "timeout"] and time.monotonic() - t0 < 4

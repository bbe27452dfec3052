"""`ytempire upload` (ytempire/youtube.py upload_run, YouTubeUploader) with the official client (google-api-python-client,
bundled discovery document) against the loopback server of tests/mockyoutube.py: a resumable videos.insert in several
chunks, then thumbnails.set and captions.insert (1,600 + 50 + 400 units in the ledger, upload.json); a connection
reset halfway through the video's bytes and resumed from the server's offset after asking for the status; a connection
closed after a whole chunk; 503 then success; 403 quotaExceeded in one line; a rerun that uploads nothing twice; the
command's one-line errors. The run directory is built by hand (fake video bytes: the server does not decode them)."""
import contextlib, io, json, logging, os, time
from datetime import datetime, timezone
from pathlib import Path
import pytest
from PIL import Image
from conftest import clean_env, ytempire
from mockyoutube import MockYouTube
from ytempire.cli import main
from ytempire.config import InputError, Settings
from ytempire.ledger import Ledger
from ytempire.youtube import ChannelError, load_upload, upload_run

TOKEN = "mock-access-token"
CHUNK = 256 * 1024
VIDEO_BYTES = int(5.5 * CHUNK)          # six chunks, the last one half
METADATA = {"title": "Why cats purr: Explained in 6 Seconds",
            "description": "Why cats purr, explained clearly: Put it all together. Subscribe for more like this, and share it "
                           "with someone who needs it.\n\n#WhyCatsPurr #CatsPurr\n\nCredits:\nIcons: Material Design Icons by "
                           "Austin Andrews and Google (CC BY 4.0)",
            "tags": ["why cats purr", "cats purr"], "hashtags": ["#WhyCatsPurr", "#CatsPurr"],
            "defaultLanguage": "en", "defaultAudioLanguage": "en"}
SRT = ("1\n00:00:00,446 --> 00:00:03,267\nLet's find out why cats\npurr, clearly and fast.\n\n"
       "2\n00:00:03,445 --> 00:00:04,500\nPut it all together.\n")


@pytest.fixture
def run_dir(tmp_path) -> Path:
    "A finished run as `ytempire make` leaves it, with fake video bytes (a 6 s make takes ~40 s here)."
    d = tmp_path / "run"
    d.mkdir()
    (d / "video.mp4").write_bytes(os.urandom(VIDEO_BYTES))
    Image.new("RGB", (128, 72), (200, 40, 40)).save(d / "thumbnail.png")
    (d / "subtitles.srt").write_text(SRT, encoding="utf-8")
    (d / "metadata.json").write_text(json.dumps(METADATA, indent=2), encoding="utf-8")
    (d / "run.json").write_text(json.dumps({"run_id": "run-abc123", "brief": {"topic": "Why cats purr", "language": "en"}}))
    return d


def settings(tmp_path, m, env=None, **over) -> Settings:
    o = {"youtube.data_base_url": m.url, "youtube.reporting_base_url": m.url, "youtube.timeout": "3", "youtube.upload_chunk_mb": "0.25",
         "retry.max_wait": "5", "paths.ledger": str(tmp_path / "ledger.db")}
    o.update({k.replace("__", "."): str(v) for k, v in over.items()})
    return Settings(env={"YOUTUBE_OAUTH_TOKEN": TOKEN} if env is None else env, overrides=o)


def calls(tmp_path, model=None):
    df = Ledger(tmp_path / "ledger.db").calls()
    return df if model is None else df[df.model.eq(model)].reset_index(drop=True)


def chunk_puts(m) -> list[str]:
    "Content-Range of each videos.insert PUT, in order (`bytes */N` is a status query)."
    return [r["content_range"] for r in m.requests if r["route"] == "videos.insert" and r["method"] == "PUT"]


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


# -- a whole upload

def test_full_upload_in_chunks_with_thumbnail_and_captions(run_dir, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with MockYouTube() as m:
        record, done = upload_run(run_dir, settings(tmp_path, m))
    vid = record.video_id
    assert done == ["videos.insert", "thumbnails.set", "captions.insert"]
    up = m.uploads[vid]
    assert up["bytes"] == (run_dir / "video.mp4").read_bytes() and up["content_type"] == "video/mp4"
    assert up["body"]["snippet"] == {"title": METADATA["title"], "description": METADATA["description"], "tags": METADATA["tags"],
                                     "categoryId": "27", "defaultLanguage": "en", "defaultAudioLanguage": "en"}
    assert up["body"]["status"] == {"privacyStatus": "private", "selfDeclaredMadeForKids": False}
    assert chunk_puts(m) == [f"bytes {i * CHUNK}-{min((i + 1) * CHUNK, VIDEO_BYTES) - 1}/{VIDEO_BYTES}" for i in range(6)]
    assert m.thumbnails[vid] == ("image/png", (run_dir / "thumbnail.png").read_bytes())
    [(snippet, srt)] = m.captions[vid]
    assert snippet == {"videoId": vid, "language": "en", "name": "", "isDraft": False} and srt == SRT.encode()
    df = calls(tmp_path)
    assert df[["model", "units", "outcome"]].values.tolist() == [
        ["videos.insert", 1600.0, "ok"], ["thumbnails.set", 50.0, "ok"], ["captions.insert", 400.0, "ok"]]
    assert set(df.run_id) == {(run_dir / ".run_id").read_text().strip()}        # the run's own id
    assert Ledger(tmp_path / "ledger.db").usage("youtube") == 2050
    saved = json.loads((run_dir / "upload.json").read_text())
    assert (saved["video_id"], saved["url"], saved["privacy"], saved["publish_at"], saved["units"]) == (
        vid, f"https://www.youtube.com/watch?v={vid}", "private", None, 2050)
    assert {k: (s["status"], s["units"]) for k, s in saved["steps"].items()} == {
        "videos.insert": ("done", 1600), "thumbnails.set": ("done", 50), "captions.insert": ("done", 400)}
    assert saved["video_bytes"] == VIDEO_BYTES and len(saved["video_sha256"]) == 64
    assert not list(run_dir.glob(".*.part"))                                      # written atomically
    for where in (caplog.text, (run_dir / "upload.json").read_text(), df.astype(str).to_string()):
        assert TOKEN not in where


def test_scheduled_upload_is_private_until_publish_at(run_dir, tmp_path, caplog):
    with MockYouTube() as m:
        s = settings(tmp_path, m, youtube__made_for_kids="true")
        record, _ = upload_run(run_dir, s, publish_at="2099-01-02T10:00+02:00")
        n = m.count()
        # the same command after the publishing time: no error, nothing to do; other flags only warn
        later = datetime(2100, 1, 1, tzinfo=timezone.utc)
        assert upload_run(run_dir, s, publish_at="2099-01-02T10:00+02:00", now=later)[1] == []
        assert "already uploaded" not in caplog.text
        assert upload_run(run_dir, s, privacy="public", now=later)[1] == [] and m.count() == n
    assert "already uploaded as private" in caplog.text and "change them in YouTube Studio" in caplog.text
    status = m.uploads[record.video_id]["body"]["status"]
    assert status == {"privacyStatus": "private", "publishAt": "2099-01-02T08:00:00Z", "selfDeclaredMadeForKids": True}
    assert (record.privacy, record.publish_at) == ("private", "2099-01-02T08:00:00Z")


# -- failures during the upload

def test_connection_dropped_halfway_resumes_from_the_servers_offset(run_dir, tmp_path, caplog):
    half = VIDEO_BYTES // 2                       # in the third chunk: the server keeps 3/4 of it, then resets the connection
    fraction = (half - 2 * CHUNK) / CHUNK
    with MockYouTube(channel_actions={"videos.insert": [("ok",), ("ok",), ("ok",), ("drop", fraction)]}) as m:
        record, _ = upload_run(run_dir, settings(tmp_path, m))
    assert m.uploads[record.video_id]["bytes"] == (run_dir / "video.mp4").read_bytes()     # every byte once, in order
    puts = chunk_puts(m)
    dropped = [r["status"] for r in m.requests if r["route"] == "videos.insert"].index("dropped")
    assert puts[2:5] == [f"bytes {2 * CHUNK}-{3 * CHUNK - 1}/{VIDEO_BYTES}",      # the chunk cut at `half`
                         f"bytes */{VIDEO_BYTES}",                                # the resume asked where the upload stands
                         f"bytes {half}-{half + CHUNK - 1}/{VIDEO_BYTES}"]        # and went on from the server's offset
    assert m.requests[dropped + 1]["status"] == 308 and dropped == 3
    assert sum(1 for r in m.requests if r["route"] == "videos.insert" and r["method"] == "POST") == 1   # one session, one video
    assert len(m.uploads) == 1
    df = calls(tmp_path, "videos.insert")
    assert df[["outcome", "units"]].values.tolist() == [["connection", 0.0], ["ok", 1600.0]]
    assert "ConnectionResetError" in df.error[0]
    assert f"resuming the upload of video.mp4 after {2 * CHUNK:,} of {VIDEO_BYTES:,} bytes" in caplog.text


def test_upload_process_killed_mid_video_is_resumed_by_the_next(run_dir, tmp_path):
    "SIGKILL while the fourth chunk waits for its answer: a new `ytempire upload` goes on in the same session, one video."
    import signal, subprocess
    from conftest import BIN
    env = clean_env(YOUTUBE_OAUTH_TOKEN=TOKEN, YTEMPIRE_PATHS_LEDGER=tmp_path / "ledger.db", YTEMPIRE_YOUTUBE_UPLOAD_CHUNK_MB="0.25",
                    YTEMPIRE_RETRY_MAX_WAIT="5", YTEMPIRE_YOUTUBE_TIMEOUT="60")
    cmd, kept_file = [str(BIN / "ytempire"), "upload", str(run_dir), "--no-progress"], run_dir / "upload.session.json"
    with MockYouTube(channel_actions={"videos.insert": [("ok",)] * 4 + [("timeout", 60)]}, max_seconds=150) as m:
        env["YTEMPIRE_YOUTUBE_DATA_BASE_URL"] = m.url
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 90
            while not (len(chunk_puts(m)) == 4 and kept_file.exists()):
                assert p.poll() is None and time.monotonic() < end, p.stderr.read() if p.poll() is not None else "timed out"
                time.sleep(0.1)
        finally:
            p.send_signal(signal.SIGKILL); p.wait(10)
        kept = json.loads(kept_file.read_text())
        assert kept["uri"].startswith(m.url) and kept["video_bytes"] == VIDEO_BYTES and oct(kept_file.stat().st_mode)[-3:] == "600"
        assert load_upload(run_dir) is None and not m.uploads            # the first process died before the video was done
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "resuming the upload of video.mp4 in the session an earlier run opened" in r.stderr
        puts = chunk_puts(m)
        assert puts[4:6] == [f"bytes */{VIDEO_BYTES}",                               # where does the kept session stand?
                             f"bytes {3 * CHUNK}-{4 * CHUNK - 1}/{VIDEO_BYTES}"]    # on from the three chunks the server has
        assert sum(1 for x in m.requests if x["route"] == "videos.insert" and x["method"] == "POST") == 1   # one session
        (vid, up), = m.uploads.items()
        assert up["bytes"] == (run_dir / "video.mp4").read_bytes() and load_upload(run_dir).video_id == vid
    assert not kept_file.exists()
    assert calls(tmp_path, "videos.insert")[["outcome", "units"]].values.tolist() == [["ok", 1600.0]]


def test_connection_closed_after_a_whole_chunk_costs_one_timeout(run_dir, tmp_path):
    # httplib2 sends the request once more by itself, with the chunk's stream already read: no bytes; the server waits
    with MockYouTube(channel_actions={"videos.insert": [("ok",), ("ok",), ("drop", 1.0, "close")]}) as m:
        t0 = time.monotonic()
        record, _ = upload_run(run_dir, settings(tmp_path, m, youtube__timeout=1))
        took = time.monotonic() - t0
    assert m.uploads[record.video_id]["bytes"] == (run_dir / "video.mp4").read_bytes()
    assert chunk_puts(m)[1:4] == [f"bytes {CHUNK}-{2 * CHUNK - 1}/{VIDEO_BYTES}"] * 2 + [f"bytes */{VIDEO_BYTES}"]
    assert 1.0 <= took < 10, took
    assert calls(tmp_path, "videos.insert").outcome.tolist() == ["timeout", "ok"]


def test_503_then_success(run_dir, tmp_path):
    with MockYouTube(channel_actions={"videos.insert": [("ok",), ("ok",), ("503",)]}) as m:
        record, _ = upload_run(run_dir, settings(tmp_path, m))
    assert m.uploads[record.video_id]["bytes"] == (run_dir / "video.mp4").read_bytes()
    assert [r["status"] for r in m.requests if r["route"] == "videos.insert"][:5] == [200, 308, 503, 308, 308]
    assert chunk_puts(m)[1:4] == [f"bytes {CHUNK}-{2 * CHUNK - 1}/{VIDEO_BYTES}", f"bytes */{VIDEO_BYTES}",
                                  f"bytes {CHUNK}-{2 * CHUNK - 1}/{VIDEO_BYTES}"]
    t = [r["time"] for r in m.requests if r["route"] == "videos.insert"]
    assert t[3] - t[2] >= 0.5                                                     # backed off before resuming
    assert calls(tmp_path, "videos.insert").outcome.tolist() == ["server_error", "ok"]


def test_quota_exceeded_is_one_line_and_not_retried(run_dir, tmp_path):
    with MockYouTube(channel_actions={"videos.insert": [("403", "quotaExceeded")]}) as m:
        with pytest.raises(ChannelError) as e:
            upload_run(run_dir, settings(tmp_path, m))
    assert one_line(e).startswith("YouTube Data API videos.insert: 403 quotaExceeded; the daily quota resets at midnight Pacific")
    assert m.count("videos.insert") == 1 and not m.uploads and load_upload(run_dir) is None
    assert calls(tmp_path).outcome.tolist() == ["error"]
    with MockYouTube() as m:                      # the ledger's own count refuses before sending: 1,600 > 1,000
        with pytest.raises(ChannelError) as e:
            upload_run(run_dir, settings(tmp_path / "own", m, quotas__youtube=1000))
    assert "videos.insert not sent: youtube daily quota: 0 of 1,000 units used today, this call may need 1,600" in one_line(e)
    assert m.count() == 0


# -- reruns

def test_rerun_does_only_the_missing_steps_and_never_uploads_twice(run_dir, tmp_path, caplog):
    with MockYouTube(channel_actions={"captions.insert": [("403", "forbidden")]}) as m:
        s = settings(tmp_path, m)
        record, done = upload_run(run_dir, s)
        assert done == ["videos.insert", "thumbnails.set"] and record.steps["captions.insert"].status == "failed"
        assert "captions.insert failed; the video" in caplog.text and "tries again" in caplog.text
        assert json.loads((run_dir / "upload.json").read_text())["units"] == 1650
        again, done = upload_run(run_dir, s)                  # only the captions
        assert done == ["captions.insert"] and again.video_id == record.video_id and again.units == 2050
        assert m.count("videos.insert") == 7 and m.count("thumbnails.set") == 1 and m.count("captions.insert") == 2
        n = m.count()
        third, done = upload_run(run_dir, settings(tmp_path, m, env={}))   # all done: nothing sent, no credentials needed
        assert done == [] and m.count() == n and third.units == 2050
    assert len(m.uploads) == 1 and Ledger(tmp_path / "ledger.db").usage("youtube") == 2050
    (run_dir / "video.mp4").write_bytes(os.urandom(1000))     # a new make into the same folder
    with pytest.raises(InputError) as e:
        upload_run(run_dir, Settings(env={}))
    assert "video.mp4 changed since it was uploaded as https://www.youtube.com/watch?v=" in one_line(e)


def test_missing_extras_are_skipped_then_done_by_a_rerun(run_dir, tmp_path):
    (run_dir / "thumbnail.png").rename(tmp_path / "thumbnail.png")
    with MockYouTube() as m:
        record, done = upload_run(run_dir, settings(tmp_path, m))
        assert done == ["videos.insert", "captions.insert"]
        assert (record.steps["thumbnails.set"].status, record.steps["thumbnails.set"].detail) == ("skipped", "the run has no thumbnail.png")
        (tmp_path / "thumbnail.png").rename(run_dir / "thumbnail.png")
        _, done = upload_run(run_dir, settings(tmp_path, m))
    assert done == ["thumbnails.set"] and m.count("thumbnails.set") == 1 and len(m.uploads) == 1


# -- the command

def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def env(monkeypatch, tmp_path):
    "The command's environment: credentials, the ledger in tmp_path, 256 KiB chunks (the endpoint is set per test)."
    for k in [k for k in os.environ if k.startswith("YTEMPIRE_") or k.startswith("YOUTUBE_")]: monkeypatch.delenv(k)
    for k, v in {"YOUTUBE_OAUTH_TOKEN": TOKEN, "YTEMPIRE_PATHS_LEDGER": str(tmp_path / "ledger.db"),
                 "YTEMPIRE_YOUTUBE_UPLOAD_CHUNK_MB": "0.25", "YTEMPIRE_RETRY_MAX_WAIT": "5"}.items():
        monkeypatch.setenv(k, v)
    return monkeypatch


def test_cli_uploads_and_prints_the_url_last(run_dir, env):
    with MockYouTube() as m:
        env.setenv("YTEMPIRE_YOUTUBE_DATA_BASE_URL", m.url)
        code, out, err = cli("upload", run_dir, "--privacy", "unlisted", "--no-progress")
        assert code == 0, err
        vid = next(iter(m.uploads))
        assert out.splitlines() == [f"uploaded {METADATA['title']!r} as {vid} (unlisted)", "thumbnails.set: done", "captions.insert: done",
                                    "quota: 2,050 YouTube Data API units", f"https://www.youtube.com/watch?v={vid}"]
        assert m.uploads[vid]["body"]["status"]["privacyStatus"] == "unlisted"
        code, out, _ = cli("upload", run_dir)
    assert code == 0 and out.splitlines()[0] == f"already uploaded as {vid} (unlisted): nothing left to do" and len(m.uploads) == 1


@pytest.mark.parametrize("args, code, part", [
    (["/nonexistent/run"], 2, "run directory /nonexistent/run does not exist"),
    (["{run}", "--privacy", "secret"], 2, "argument --privacy: invalid choice: 'secret'"),
    (["{run}", "--publish-at", "next friday"], 2, "--publish-at 'next friday' is not an ISO 8601 date-time"),
    (["{run}", "--publish-at", "2020-01-01T00:00Z"], 2, "is not in the future"),
    (["{run}", "--publish-at", "2099-01-01T00:00Z", "--privacy", "public"], 2, "leave --privacy out"),
])
def test_cli_flag_errors_are_one_line(run_dir, env, args, code, part):
    got, out, err = cli("upload", *[a.format(run=run_dir) for a in args])
    assert (got, out) == (code, "") and err.startswith("error: ") and err.count("\n") == 1 and part in err, err


def test_cli_run_and_credential_errors_are_one_line(run_dir, env, tmp_path):
    (run_dir / "metadata.json").write_text(json.dumps({**METADATA, "title": "x" * 120}))
    code, _, err = cli("upload", run_dir)
    assert code == 2 and err.count("\n") == 1 and "metadata.json: the title has 120 characters; YouTube allows 100: shorten it" in err
    (run_dir / "metadata.json").write_text(json.dumps(METADATA))
    env.delenv("YOUTUBE_OAUTH_TOKEN")
    code, _, err = cli("upload", run_dir)
    assert code == 2 and err.count("\n") == 1 and "no YouTube channel credentials: set YOUTUBE_CREDENTIALS" in err
    (run_dir / "video.mp4").unlink()
    code, _, err = cli("upload", run_dir)
    assert code == 2 and err.count("\n") == 1 and f"{run_dir} has no video.mp4; make it first: ytempire make" in err
    assert not (run_dir / "upload.json").exists()


def test_cli_quota_error_exits_non_zero(run_dir, tmp_path):
    "The installed command, as a user runs it: a scheduled upload refused by the quota is one line on stderr, exit 1."
    with MockYouTube(channel_actions={"videos.insert": [("403", "quotaExceeded")]}) as m:
        env = clean_env(YOUTUBE_OAUTH_TOKEN=TOKEN, YTEMPIRE_YOUTUBE_DATA_BASE_URL=m.url, YTEMPIRE_PATHS_LEDGER=tmp_path / "ledger.db")
        r = ytempire("upload", run_dir, "--publish-at", "2099-01-01T00:00Z", cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: YouTube Data API videos.insert: 403 quotaExceeded; the daily quota resets"), r.stderr
    assert TOKEN not in r.stderr and m.count("videos.insert") == 1


def test_client_retry_of_a_chunk_sends_it_empty(run_dir, tmp_path):
    "Why upload_video keeps next_chunk's num_retries at 0: the client's own retry of a 503 chunk sends the chunk's stream "
    "again once read (its Content-Length, no bytes), and the server waits for the bytes until the client times out."
    from googleapiclient.http import MediaFileUpload
    from ytempire.youtube import YouTubeUploader
    with MockYouTube(channel_actions={"videos.insert": [("ok",), ("503",)]}) as m:
        up = YouTubeUploader(settings(tmp_path, m, youtube__timeout=1))
        media = MediaFileUpload(str(run_dir / "video.mp4"), mimetype="video/mp4", chunksize=CHUNK, resumable=True)
        req = up.data.videos().insert(part="snippet", body={"snippet": {"title": "t"}}, media_body=media)
        req.uri = req.uri.replace("https://", "http://", 1)
        with pytest.raises(TimeoutError):
            req.next_chunk(num_retries=1)
        media.stream().close()
        time.sleep(0.2)                                          # the server notices the closed connection
    assert chunk_puts(m) == [f"bytes 0-{CHUNK - 1}/{VIDEO_BYTES}"] * 2
    assert [r["status"] for r in m.requests] == [200, 503, 400]    # 400: the retried chunk came without its bytes

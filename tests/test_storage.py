"""56_storage against a real S3 API: moto's server on a loopback port, spoken to by real boto3 (nothing patched).
A finished run is stored with every object and its manifest checked, a rerun sends nothing, a missing bucket and a
stopped server each fail in one line with no manifest, and a shared folder behaves the same."""
import hashlib, json, logging, re, socket
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from ytempire.config import ConfigError, Settings, YtempireError
from ytempire.storage import MANIFEST, STORED, LocalStore, S3Store, fetch_run, is_stored, run_files, store_run, stored_runs

BUCKET = "ytempire-test"
RUN = "2026-12-01-why-cats-purr"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    "Dummy credentials in the environment, and nothing from the machine's ~/.aws or an instance's metadata service."
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"), "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                 "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"): monkeypatch.delenv(k, raising=False)


@pytest.fixture
def s3(aws_env):
    "A moto S3 server on a free loopback port with the test bucket; stopped at teardown."
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    try: yield url, client, server, port
    finally:
        server.stop()
        from moto.backends import get_backend                 # moto keeps its buckets per process: start the next test empty
        get_backend("s3").reset()


def settings(**storage) -> Settings:
    return Settings(env={}, overrides={f"storage.{k}": v for k, v in storage.items()})


def fake_run(root: Path, video: bytes = b"v" * 1000) -> Path:
    "A finished run's top level as `publish` and `write_records` leave it (stand-in contents), with working state beside it."
    run = root / RUN
    outputs = {"video": "video.mp4", "subtitles": "subtitles.srt", "subtitles_ass": "subtitles.ass", "thumbnail": "thumbnail.png",
               "metadata": "metadata.json", "metrics": "metrics.prom", "report": "report.html", "run": "run.json"}
    (run / "thumbnails").mkdir(parents=True)
    for f in outputs.values(): (run / f).write_bytes(f.encode() * 100)
    (run / "video.mp4").write_bytes(video)
    for v in ("bold", "split"): (run / "thumbnails" / f"thumbnail-{v}.png").write_bytes(v.encode() * 50)
    (run / "stages" / "30-video").mkdir(parents=True); (run / "stages" / "30-video" / "output.json").write_text("{}")
    (run / "run.log").write_text("log\n"); (run / ".lock").write_text("")
    (run / "run.json").write_text(json.dumps({"run_id": f"{RUN}-abc123", "outputs": outputs}))
    return run


def objects(client, prefix=f"{RUN}/") -> dict[str, dict]:
    "Every object under `prefix`: its bytes' sha256 and size, its sha256 metadata, its ETag."
    out = {}
    for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        got = client.get_object(Bucket=BUCKET, Key=o["Key"])
        body = got["Body"].read()
        out[o["Key"][len(prefix):]] = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body),
                                       "meta": got["Metadata"].get("sha256"), "etag": got["ETag"]}
    return out


def requests_seen(caplog) -> list[tuple[str, str]]:
    "(method, path) of every request the moto server logged (werkzeug's access log): the server's own count."
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", r.getMessage()) for r in caplog.records if r.name == "werkzeug"]   # without its colours
    seen = [re.search(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/', line) for line in lines]
    return [m.groups() for m in seen if m]


def test_store_run_on_s3(s3, tmp_path):
    url, client, *_ = s3
    run = fake_run(tmp_path)
    on = settings(artifacts=f"s3://{BUCKET}/videos", endpoint_url=url)
    assert not is_stored(run, S3Store(BUCKET, "videos", url))
    out = store_run(run, on)
    names = run_files(run)
    assert names == ["metadata.json", "metrics.prom", "report.html", "run.json", "subtitles.ass", "subtitles.srt",
                     "thumbnail.png", "thumbnails/thumbnail-bold.png", "thumbnails/thumbnail-split.png", "video.mp4"]
    got = objects(client, f"videos/{RUN}/")
    assert sorted(got) == sorted(names + [MANIFEST])                       # the outputs and the manifest; no stage cache, no log
    manifest = json.loads(client.get_object(Bucket=BUCKET, Key=f"videos/{RUN}/{MANIFEST}")["Body"].read())
    assert manifest["run_id"] == f"{RUN}-abc123" and manifest["version"]
    assert [f["name"] for f in manifest["files"]] == names
    for f in manifest["files"]:                                             # what is in the bucket is what the run holds
        assert f["sha256"] == sha(run / f["name"]) == got[f["name"]]["sha256"] == got[f["name"]]["meta"]
        assert f["size"] == (run / f["name"]).stat().st_size == got[f["name"]]["size"]
    assert out["uri"] == f"s3://{BUCKET}/videos/{RUN}/" and sorted(out["sent"]) == names
    assert json.loads((run / STORED).read_text()) == json.loads(json.dumps(out))
    assert is_stored(run, S3Store(BUCKET, "videos", url)) and not is_stored(run, S3Store(BUCKET, "other", url))
    store = S3Store(BUCKET, "videos", url)
    assert stored_runs(store) == [RUN]
    fetch_run(store, RUN, tmp_path / "back")                               # the reader's side: every file checked
    assert sha(tmp_path / "back" / "video.mp4") == sha(run / "video.mp4")


def test_rerun_sends_only_what_changed(s3, tmp_path, caplog):
    url, client, *_ = s3
    run = fake_run(tmp_path)
    on = settings(artifacts=f"s3://{BUCKET}", endpoint_url=url)
    store_run(run, on)
    first = objects(client)
    caplog.set_level(logging.INFO, logger="werkzeug")
    caplog.clear()
    assert store_run(run, on)["sent"] == []
    assert [m for m, _ in requests_seen(caplog) if m in ("PUT", "POST", "DELETE")] == []       # the server saw no write
    assert objects(client) == first
    (run / "video.mp4").write_bytes(b"w" * 1000)                           # a remade video: it alone goes again, then the manifest
    caplog.clear()
    assert store_run(run, on)["sent"] == ["video.mp4"]
    writes = [(m, p) for m, p in requests_seen(caplog) if m in ("PUT", "POST", "DELETE")]
    assert writes == [("DELETE", f"/{BUCKET}/{RUN}/{MANIFEST}"), ("PUT", f"/{BUCKET}/{RUN}/video.mp4"),
                      ("PUT", f"/{BUCKET}/{RUN}/{MANIFEST}")]                # the old manifest goes first, the new one last
    assert objects(client)["video.mp4"]["sha256"] == sha(run / "video.mp4")


def test_large_file_goes_multipart(s3, tmp_path):
    url, client, *_ = s3
    run = fake_run(tmp_path, video=bytes(range(256)) * (12 * 4096))       # 12 MiB: three 5 MiB parts
    store_run(run, settings(), S3Store(BUCKET, "", url, multipart_mb=5))
    got = objects(client)["video.mp4"]
    assert got["etag"].strip('"').endswith("-3")                           # a multipart upload's ETag counts its parts
    assert got["sha256"] == got["meta"] == sha(run / "video.mp4")


def test_missing_bucket_is_one_line(s3, tmp_path):
    url, client, *_ = s3
    run = fake_run(tmp_path)
    with pytest.raises(ConfigError) as e: store_run(run, settings(artifacts="s3://no-such-bucket/videos", endpoint_url=url))
    assert str(e.value) == f"bucket 'no-such-bucket' does not exist at {url}; create it, or fix [storage] artifacts"
    assert not (run / STORED).exists() and "no-such-bucket" not in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_stopped_server_is_one_line_and_leaves_no_manifest(s3, tmp_path):
    url, client, server, port = s3
    run = fake_run(tmp_path)
    server.stop()
    with pytest.raises(YtempireError) as e: store_run(run, settings(artifacts=f"s3://{BUCKET}", endpoint_url=url))
    assert "\n" not in str(e.value) and str(e.value).startswith(f"cannot reach {url} to use s3://{BUCKET}/ after 5 retries")
    assert "check [storage] endpoint_url" in str(e.value)
    again = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)   # the same store, back up
    again.start()
    try:
        assert objects(client) == {} and not (run / STORED).exists()
        assert store_run(run, settings(artifacts=f"s3://{BUCKET}", endpoint_url=url))["sent"]    # now it goes through
    finally: again.stop()


def test_no_credentials_is_one_line(s3, tmp_path, monkeypatch):
    url, *_ = s3
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"): monkeypatch.delenv(k)
    with pytest.raises(ConfigError) as e: store_run(fake_run(tmp_path), settings(artifacts=f"s3://{BUCKET}", endpoint_url=url))
    assert str(e.value).startswith(f"no AWS credentials to use s3://{BUCKET}/; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


def test_shared_folder_works_the_same(tmp_path):
    run = fake_run(tmp_path)
    on = settings(artifacts=str(tmp_path / "shared" / "videos"))
    out = store_run(run, on)
    dest = tmp_path / "shared" / "videos" / RUN
    manifest = json.loads((dest / MANIFEST).read_text())
    assert out["uri"] == f"{dest}/" and [f["name"] for f in manifest["files"]] == run_files(run)
    for f in manifest["files"]: assert f["sha256"] == sha(run / f["name"]) == sha(dest / f["name"])
    assert not (dest / "run.log").exists() and not (dest / "stages").exists()
    assert is_stored(run, LocalStore(tmp_path / "shared" / "videos")) and store_run(run, on)["sent"] == []
    (run / "metadata.json").write_text('{"title": "new"}')                # edited in place: the stored copy is a copy, not a link
    assert sha(dest / "metadata.json") == manifest["files"][0]["sha256"]
    assert store_run(run, on)["sent"] == ["metadata.json"] and sha(dest / "metadata.json") == sha(run / "metadata.json")

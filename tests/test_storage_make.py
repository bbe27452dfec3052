"""`ytempire make` with `[storage] artifacts` on S3 (moto's server on a loopback port, real boto3): the store down fails
the command in one line after the run is complete; the same command again, the store back up, resumes every stage from
the cache and only stores the run. One 6 s video (about 40 s on 2 cores), so it lives apart from test_storage.py."""
import hashlib, json, socket, subprocess

import pytest

from conftest import BIN, clean_env

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "ytempire-test"


def test_make_stores_the_finished_run_and_a_rerun_resumes_to_storing(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    url, run = f"http://127.0.0.1:{port}", tmp_path / "run"
    (tmp_path / "s3.ini").write_text(f"[tracking]\nenabled = false\n[storage]\nartifacts = s3://{BUCKET}/videos\nendpoint_url = {url}\n")
    env = clean_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing-secret", AWS_DEFAULT_REGION="us-east-1",
                    AWS_SHARED_CREDENTIALS_FILE=tmp_path / "none", AWS_CONFIG_FILE=tmp_path / "none", AWS_EC2_METADATA_DISABLED="true")
    make = lambda: subprocess.run([str(BIN / "ytempire"), "make", "Why cats purr", "--duration", "6", "--out", str(run), "--no-progress",
                                   "--config", str(tmp_path / "s3.ini")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    r = make()                                                           # nothing listens on the port yet
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and lines[-1].startswith(f"error: cannot reach {url} to use s3://{BUCKET}/videos/ after 5 retries")
    assert f"the run in {run} is complete" in lines[-1]
    assert (run / "run.json").is_file() and not (run / "stored.json").exists()
    assert "not stored: cannot reach" in (run / "run.log").read_text()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="x")
        client.create_bucket(Bucket=BUCKET)
        r = make()
        assert r.returncode == 0, r.stderr[-2000:]
        log = (run / "run.log").read_text().split("not stored: cannot reach")[-1]     # the second command's lines
        for stage in ("10-trends", "11-script", "20-voice", "30-video", "31-thumbnails"):
            assert any(f"{stage}" in l and "cached" in l for l in log.splitlines()), stage
        stored = json.loads((run / "stored.json").read_text())
        assert stored["uri"] == f"s3://{BUCKET}/videos/run/" and f"stored at {stored['uri']}" in log
        manifest = json.loads(client.get_object(Bucket=BUCKET, Key="videos/run/manifest.json")["Body"].read())
        assert {"video.mp4", "thumbnail.png", "subtitles.srt", "metadata.json", "run.json", "report.html"} <= {f["name"] for f in manifest["files"]}
        for f in manifest["files"]:
            body = client.get_object(Bucket=BUCKET, Key=f"videos/run/{f['name']}")["Body"].read()
            assert hashlib.sha256(body).hexdigest() == f["sha256"] == hashlib.sha256((run / f["name"]).read_bytes()).hexdigest()
    finally:
        server.stop()

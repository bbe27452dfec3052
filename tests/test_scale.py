"""`[scale] executor = ray`: the heavy stages as Ray tasks on a local Ray give the same run as the run's own process.
Like with like: one local run; then its audio, subtitles, pictures, render and thumbnails are deleted and made again
from the same cached script and narration, the audio mastering and the render as Ray tasks. (Two runs from scratch
differ anyway: Piper samples its noise per call, so the narration's timing moves by tens of milliseconds between
any two runs, local or not.)"""
import json, shutil, subprocess

import pytest

from conftest import BIN, clean_env

pytest.importorskip("ray")


def framemd5(path) -> str:
    "An MD5 per decoded video frame and audio packet: equal when what a viewer sees and hears is equal."
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "framemd5", "-"], capture_output=True, text=True, check=True).stdout


def test_ray_run_is_identical_to_the_local_one(tmp_path):
    run = tmp_path / "run"
    make = lambda *extra: subprocess.run([str(BIN / "ytempire"), "make", "Why cats purr", "--duration", "6", "--out", str(run), *extra],
                                         cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=600)
    r = make()
    assert r.returncode == 0, r.stderr[-2000:]
    redo = ["21-audio", "22-sync", "29-visuals", "30-video", "31-thumbnails"]
    local = {s: json.loads((run / "stages" / s / "output.json").read_text())["output"] for s in redo}
    local_frames = framemd5(run / "video.mp4")
    for s in redo: shutil.rmtree(run / "stages" / s)
    (tmp_path / "ray.ini").write_text("[scale]\nexecutor = ray\nstages = narration, audio, subtitles, video\nworkers = 2\n")
    r = make("--config", str(tmp_path / "ray.ini"))
    assert r.returncode == 0, r.stderr[-2000:]
    log = (run / "run.log").read_text()
    for s in ("21-audio", "22-sync", "30-video"):
        assert f"{s}" in log and "by the ray executor" in [l for l in log.splitlines() if f" {s} " in l and "done in" in l][-1]
    assert "20-voice      cached" in log                    # the same narration: like with like
    again = {s: json.loads((run / "stages" / s / "output.json").read_text())["output"] for s in redo}
    local["30-video"].pop("render_seconds"); again["30-video"].pop("render_seconds")
    assert again == local
    assert framemd5(run / "video.mp4") == local_frames


def test_unknown_executor_is_one_line(tmp_path):
    (tmp_path / "bad.ini").write_text("[scale]\nexecutor = dask\n")
    r = subprocess.run([str(BIN / "ytempire"), "make", "Why cats purr", "--duration", "6", "--out", str(tmp_path / "run"),
                        "--config", str(tmp_path / "bad.ini")], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and lines == ["error: [scale] executor = 'dask'; use one of local, process, ray"]
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())

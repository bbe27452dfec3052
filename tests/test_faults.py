"""Faults a user's machine can throw at a run: a full disk, and a GPU that is asked for but absent."""
import shutil, subprocess
import pytest
from conftest import clean_env, ytempire


@pytest.fixture
def small_disk(tmp_path):
    "A 3 MB tmpfs: a real full disk (needs root, as CI runs)."
    mnt = tmp_path / "disk"; mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0: pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_is_one_line_error_and_no_outputs(tmp_path, small_disk):
    out = small_disk / "run"
    r = ytempire("make", "Why the sky is blue", "--duration", "20", "--out", out, "--no-progress", cwd=tmp_path)
    assert r.returncode == 5, r.stderr[-1500:]
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: no space left") and "free disk space" in line, line
    assert not (out / "video.mp4").exists() and not (out / "run.json").exists()
    assert not list(out.rglob("*.part")), "temporary files were left behind"


def _gpu() -> bool:
    return bool(shutil.which("nvidia-smi")) and subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0


@pytest.mark.skipif(_gpu(), reason="this machine has a GPU")
def test_auto_encoder_is_x264_without_gpu():
    from ytempire.config import Settings, find_tool
    from ytempire.schemas import OutputFormat
    from ytempire.video import encoder_args
    assert encoder_args(OutputFormat(width=64, height=64, hwaccel="auto"), find_tool(Settings(env={}), "ffmpeg"))[0] == "libx264"


@pytest.mark.skipif(_gpu(), reason="this machine has a GPU")
def test_nvenc_required_without_gpu_fails_before_writing(tmp_path):
    r = ytempire("make", "Coffee", "--out", tmp_path / "run", cwd=tmp_path, env=clean_env(YTEMPIRE_VIDEO_HWACCEL="nvenc"))
    assert r.returncode == 3 and "NVENC does not work here" in r.stderr and not (tmp_path / "run").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("codec,encoder", [("h264", "h264_nvenc"), ("hevc", "hevc_nvenc")])
def test_nvenc_render_on_gpu(tmp_path, codec, encoder):
    r = ytempire("make", "Why the sky is blue", "--duration", "10", "--out", tmp_path / "run", "--no-progress",
                 cwd=tmp_path, env=clean_env(YTEMPIRE_VIDEO_HWACCEL="nvenc", YTEMPIRE_VIDEO_CODEC=codec))
    assert r.returncode == 0, r.stderr[-1500:]
    import json
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["providers"]["encoder"] == encoder

"""Test pictures and clips for the renderer, drawn at test time (Pillow scenes, ffmpeg testsrc2 clips): no downloads."""
import subprocess
from pathlib import Path
import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene_picture(path: Path, size=(1600, 1000), seed: int = 0) -> Path:
    "A landscape-like picture: sky gradient, sun, hills, a grid of trees (texture for motion measurements)."
    w, h = size
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None, None]
    sky = (np.array([40, 90, 170]) * (1 - y) + np.array([250, 190, 120]) * y) * np.ones((1, w, 1))
    img = Image.fromarray(sky.astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse([w * 0.62, h * 0.12, w * 0.78, h * 0.12 + w * 0.16], fill=(255, 236, 170))
    for k, c in enumerate([(70, 110, 70), (50, 90, 60), (30, 70, 45)]):
        base = h * (0.55 + 0.13 * k)
        pts = [(x, base - 60 * np.sin(x / w * 6 + k + seed)) for x in range(0, w + 40, 40)]
        d.polygon(pts + [(w, h), (0, h)], fill=c)
    for _ in range(60):
        x, yy = rng.integers(0, w), rng.integers(int(h * 0.6), h)
        d.polygon([(x, yy - 40), (x - 14, yy + 10), (x + 14, yy + 10)], fill=(20, 60 + rng.integers(0, 60), 30))
    img.save(path)
    return path


def subject_picture(path: Path, px: int = 360) -> Path:
    "A transparent cut-out subject: a round badge with a star."
    img = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse([8, 8, px - 8, px - 8], fill=(240, 120, 40, 255), outline=(255, 255, 255, 255), width=10)
    c, r = px / 2, px * 0.32
    pts = [(c + r * (0.45 if k % 2 else 1) * np.sin(k * np.pi / 5), c - r * (0.45 if k % 2 else 1) * np.cos(k * np.pi / 5)) for k in range(10)]
    d.polygon(pts, fill=(255, 245, 200, 255))
    img.save(path)
    return path


def dot_picture(path: Path, size=(640, 360)) -> Path:
    "A dark picture with one small soft white dot off centre (to track motion to a fraction of a pixel)."
    w, h = size
    img = Image.new("RGB", size, (30, 40, 60))
    d = ImageDraw.Draw(img)
    for x in range(0, w, 40): d.line([(x, 0), (x, h)], fill=(70, 70, 80), width=2)
    d.ellipse([w * 0.73 - 9, h * 0.28 - 9, w * 0.73 + 9, h * 0.28 + 9], fill=(255, 255, 255))
    img.filter(ImageFilter.GaussianBlur(1.2)).save(path)
    return path


def make_clip(path: Path, ffmpeg: str, seconds: float = 2.0, size=(480, 270), fps: int = 25) -> Path:
    "An ffmpeg testsrc2 clip (moving pattern with a frame counter), H.264."
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size[0]}x{size[1]}:r={fps}:d={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path

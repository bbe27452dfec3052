"""Render benchmark: ytempire's one-filtergraph renderer against the same video composed with moviepy.

What is compared. Both sides render one Timeline made by the production code, outside the timers: the demo topic
with its notes (examples/coffee-roasting.md) through the offline stages (script, Piper narration, mastered soundtrack,
subtitles), then `video.plan_video` (cards and caption images). Then the scenes between the first and the last get
imagery, in turn (`with_imagery`): a picture with Ken Burns (landscape pictures drawn at run time, fitted over a blurred
copy of themselves in a portrait frame, `[video] vignette`), a designed scene (a still picture + a cut-out subject that
settles into place over 2.4 s, eased, + the card's rising title), a video clip (ffmpeg testsrc2, trimmed, blur fill), and the cuts get fade, slideleft, wipeleft
and circleopen in turn. moviepy does the same with the same pictures: the blur fill and vignette prepared once with
Pillow/numpy, Ken Burns and the subject's move as a per-frame Pillow EXTENT transform of the same window (sub-pixel,
bilinear, as ytempire's `perspective`), the clip with `subclipped` + per-frame blur fill, `SlideIn`/`SlideOut` for
slideleft and a crossfade where moviepy has no such transition (wipeleft, circleopen: no frame inside those is compared).
So both sides get
- the same card images: per scene a background PNG and a transparent title layer, with the production title motion
  (`[video] motion`, default `rise`: the title fades in and eases up 3.5 % of the frame height over 0.7 s; moviepy:
  an ImageClip whose position is a function of t plus `CrossFadeIn`; `pan`: the card drifts across a 1.08x crop),
- the same crossfades between scenes (`[video] transition_seconds`; moviepy: `CrossFadeIn` on the incoming clips),
- the same overlays (27_overlays: lower third, chapter tags, counters, progress bar steps) as ImageClips with the same
  fades and eased slide,
- the same caption images: ytempire's PNGs (one per caption state, the spoken word highlighted), shown by moviepy as
  ImageClips at the same position and times,
- the same already-mixed soundtrack file (the audio stage's mix.wav), encoded to AAC at `[video] audio_bitrate`,
- the same resolution and fps, the same CPU encoder for `[video] codec` (libx264, or libx265 for hevc) with the same
  `[video] preset` and `crf`, yuv420p, BT.709, a keyframe every 2 s, and the same ffmpeg binary.
Each render runs in a fresh process; the timers cover Timeline -> MP4 only (ytempire: `render_timeline`; moviepy:
building the clips, which reads the PNGs, and `write_videofile`); imports (moviepy too) come before them.
- speedup_vs_moviepy_cfr: moviepy / ytempire, both encoding every frame at constant frame rate (`[video] vfr = false`).
- speedup_vs_moviepy_vfr: moviepy / ytempire at variable frame rate (`vfr = true`: ytempire encodes only the frames
  whose picture changes; moviepy has no such mode and still encodes every frame).
- render_realtime_factor: ytempire's render time at the configured `[video] vfr` (the production setting) / duration.
- peak_rss_mb: peak resident memory of that ytempire render (its Python process and ffmpeg together, sampled).
What still differs: the wipe and iris transitions (moviepy crossfades instead: cheaper for it); moviepy blends in 8-bit RGB and ffmpeg converts its frames to YUV, ytempire converts each image
to YUV once and blends there; inside a crossfade moviepy fades the incoming title layer with the product of the two
fades, over the blend of the two backgrounds (a slightly different mix for those frames); moviepy re-encodes the
soundtrack with ffmpeg's default AAC coder, ytempire with its fast one; other `xfade` transitions than `fade` have no
moviepy equivalent (the moviepy side then still crossfades, the bench says so and compares no frame inside a
transition). The bench checks the result: frames of both renders at several times must agree (mean absolute
difference of grey levels), or it exits 1.
Settings come from the usual layers (settings.ini, YTEMPIRE_CONFIG, YTEMPIRE_<SECTION>_<KEY>), like a real run.

Usage: .venv/bin/python tests/bench/render_bench.py [--duration 60] [--size 1080x1920]   (duration: the brief's target)
Last line: speedup_vs_moviepy_cfr=X speedup_vs_moviepy_vfr=Y render_realtime_factor=Z peak_rss_mb=M
"""
import argparse, importlib, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline"); os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from ytempire.config import Settings, find_tool
from ytempire.schemas import Brief, Timeline, TrendReport

ROOT = Path(__file__).resolve().parents[2]
MAX_FRAME_DIFF = 4.0          # mean |grey difference| (0-255) allowed between the two renders' frames


def make_timeline(work: Path, duration: float, size: tuple[int, int], st: Settings) -> Timeline:
    "The production Timeline of the demo topic at `size` (not timed)."
    from ytempire.scripts import OfflineTemplateWriter
    from ytempire.voice import narrate
    from ytempire.audio import master_audio
    from ytempire.sync import make_subtitles
    from ytempire.video import plan_video
    w, h = size
    brief = Brief(topic="How coffee roasting works", duration=duration, aspect="9:16" if h > w else "16:9" if w > h else "1:1",
                  notes=(ROOT / "examples" / "coffee-roasting.md").read_text())
    script = OfflineTemplateWriter(st).write(brief, TrendReport())
    narration = narrate(script, brief, st, work / "voice")
    audio = master_audio(narration, brief, st, work / "audio")
    subtitles = make_subtitles(narration, brief, st, work / "subtitles")
    return plan_video(script, narration, audio, subtitles, brief, st, work / "video", size)


IMAGERY = ("kenburns", "parallax", "clip")
BENCH_TRANSITIONS = ("fade", "slideleft", "wipeleft", "circleopen")


def with_imagery(tl: Timeline, work: Path, ffmpeg: str, st: Settings) -> Timeline:
    "The Timeline with pictures, a designed scene with a parallax subject and a clip on the middle scenes, and 4 transition kinds."
    sys.path.insert(0, str(ROOT / "tests"))
    from render_assets import scene_picture, subject_picture, make_clip
    w, h = tl.format.width, tl.format.height
    vignette = st.getfloat("video", "vignette")
    pics = [scene_picture(work / f"picture{k}.png", (1600, 1000), k) for k in range(3)]
    subject = subject_picture(work / "subject.png", max(16, round(min(w, h) * 0.42)))
    clip = make_clip(work / "clip.mp4", ffmpeg, 4.0, (1280, 720), 30)
    shots = []
    for i, s in enumerate(tl.shots):
        up = {"transition": BENCH_TRANSITIONS[(i - 1) % len(BENCH_TRANSITIONS)] if i else "none"}
        if 0 < i < len(tl.shots) - 1:
            kind = IMAGERY[(i - 1) % len(IMAGERY)]
            up.update(visual=pics[i % len(pics)], fill="blur", motion_seed=i, effects=[f"vignette:{vignette:g}"] if vignette else [])
            if kind == "kenburns": up.update(motion="kenburns", layer=None)
            elif kind == "parallax":
                px = max(16, round(min(w, h) * 0.42))
                up.update(motion="parallax", subject=subject, subject_x=(w - px) // 2 // 2 * 2, subject_y=(round(h * 0.62) - px // 2) // 2 * 2)
            else: up.update(kind="clip", visual=clip, clip_start=0.5, motion="none", layer=None, effects=[])
        shots.append(s.model_copy(update=up))
    return tl.model_copy(update={"shots": shots})


def _yuv(rgb):
    "RGB (0-255) to BT.709 limited-range Y, Cb, Cr (floats), as ffmpeg converts the pictures."
    import numpy as np
    r, g, b = (rgb[..., k] / 255 for k in range(3))
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return np.stack([16 + 219 * y, 128 + 224 * (b - y) / 1.8556, 128 + 224 * (r - y) / 1.5748], -1)


def _rgb(yuv):
    import numpy as np
    y, cb, cr = (yuv[..., 0] - 16) / 219, (yuv[..., 1] - 128) / 224, (yuv[..., 2] - 128) / 224
    r, b = y + 1.5748 * cr, y + 1.8556 * cb
    g = (y - 0.2126 * r - 0.0722 * b) / 0.7152
    return (np.stack([r, g, b], -1) * 255).round().clip(0, 255).astype(np.uint8)


def _vignette_np(yuv, angle: float):
    "ffmpeg `vignette` on YUV (luma times cos^4(angle x distance / half diagonal), chroma towards neutral) in numpy."
    import numpy as np
    h, w = yuv.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    f = np.cos(angle * np.hypot(x - w // 2, y - h // 2) / np.hypot(w / 2, h / 2)) ** 4
    return np.stack([yuv[..., 0] * f, (yuv[..., 1] - 127) * f + 127, (yuv[..., 2] - 127) * f + 127], -1)


def _prepared(path: Path, size, effects):
    "A picture fitted over a blurred, darkened copy of itself (as ytempire's blur fill), with its vignette, as RGB."
    from PIL import Image
    return _fill_np(Image.open(path).convert("RGB"), size, effects)


def _fill_np(src, size, effects):
    "ytempire's blur fill and vignette with Pillow and numpy (the same steps: small cover, box blur twice, scale up, darken)."
    import numpy as np
    from PIL import Image, ImageFilter, ImageOps
    w, h = size
    small = ImageOps.fit(src, (max(2, w // 8 // 2 * 2), max(2, h // 8 // 2 * 2)), Image.BICUBIC).filter(ImageFilter.BoxBlur(4)).filter(ImageFilter.BoxBlur(4))
    bg = _yuv(np.asarray(small.resize((w, h), Image.BICUBIC), float))
    bg = np.stack([bg[..., 0] - 0.08 * 256, (bg[..., 1] - 128) * 0.9 + 128, (bg[..., 2] - 128) * 0.9 + 128], -1)   # eq brightness, saturation
    fg = ImageOps.contain(src, (w, h), Image.BICUBIC)
    x0, y0 = (w - fg.width) // 2, (h - fg.height) // 2
    bg[y0:y0 + fg.height, x0:x0 + fg.width] = _yuv(np.asarray(fg, float))
    for e in effects:
        name, _, a = e.partition(":")
        if name == "vignette": bg = _vignette_np(bg, 0.25 + 0.75 * min(max(float(a), 0), 1))
    return _rgb(bg)


def _window_clip(base, n: int, fps: int, z0: float, z1: float, fx: float, fy: float):
    "A moviepy clip of `base` (an RGB array) zooming from z0 to z1 towards (fx, fy) over n frames: the same window as ytempire's."
    import numpy as np
    from PIL import Image
    from moviepy import VideoClip
    img, (h, w) = Image.fromarray(base), base.shape[:2]
    def frame(t):
        k = min(n - 1, round(t * fps))
        s = 1 / (z0 + (z1 - z0) * k / max(1, n - 1))
        l, tp = w * (1 - s) * (1 + fx) / 2, h * (1 - s) * (1 + fy) / 2
        return np.asarray(img.transform((w, h), Image.EXTENT, (l, tp, l + w * s, tp + h * s), Image.BILINEAR))
    return VideoClip(frame, duration=n / fps)


def _subject_clip(path: Path, n: int, fps: int, d: int, zs: float, settle: int = 0):
    """The parallax subject as an RGBA moviepy clip: drifting d pixels and growing by zs over n frames, or (settle > 0)
    starting d aside and zs larger and easing into place over `settle` frames (ytempire's `_subject`)."""
    import math, numpy as np
    from PIL import Image
    from moviepy import VideoClip
    sub = Image.open(path).convert("RGBA")
    m = (abs(d) + math.ceil(max(sub.size) * zs / 2) + 4) // 2 * 2
    canvas = Image.new("RGBA", (sub.width + 2 * m, sub.height + 2 * m)); canvas.paste(sub, (m, m))
    W, H = canvas.size
    def rgba(t):
        k = min(n - 1, round(t * fps)); p = k / max(1, n - 1); z = 1 + zs * p
        if settle: p = (1 - min(k / settle, 1)) ** 3; z = 1 + zs * p
        l, tp = W / 2 - d * p / z - W / (2 * z), H / 2 - H / (2 * z)
        return np.asarray(canvas.transform((W, H), Image.EXTENT, (l, tp, l + W / z, tp + H / z), Image.BILINEAR))
    rgb = VideoClip(lambda t: rgba(t)[..., :3], duration=n / fps)
    mask = VideoClip(lambda t: rgba(t)[..., 3] / 255.0, is_mask=True, duration=n / fps)
    return rgb.with_mask(mask), m


def render_moviepy(tl: Timeline, out: Path, encoder: str, kb: float = 0.08) -> Path:
    "The Timeline composed with moviepy as its documentation shows."
    import numpy as np
    from PIL import Image
    import zlib
    from moviepy import ImageClip, CompositeVideoClip, AudioFileClip, VideoFileClip, vfx
    from ytempire.video import RISE_SECONDS, COLOR_ARGS, _double, kenburns_path, head_frames
    from ytempire.overlays import SLIDE_SECONDS, FADE_IN, FADE_OUT
    fmt, drop, clips = tl.format, round(tl.format.height * 0.035), []
    for i, s in enumerate(tl.shots):       # each shot composed on its own (picture, subject, title), then faded or slid in
        d, n, layers = s.end - s.start, round(s.end * fmt.fps) - round(s.start * fmt.fps), []
        fade_in = [vfx.CrossFadeIn(s.transition_seconds)] if i and s.transition != "none" else []
        if s.transition == "slideleft": fade_in = [vfx.SlideIn(s.transition_seconds, "right")]
        nxt = tl.shots[i + 1] if i + 1 < len(tl.shots) else None
        fade_out = [vfx.SlideOut(nxt.transition_seconds, "left")] if nxt is not None and nxt.transition == "slideleft" else []
        if s.kind == "clip":                                         # trimmed, looped when short, each frame blur-filled
            src = VideoFileClip(str(s.visual)).subclipped(s.clip_start)
            if src.duration < d: src = src.with_effects([vfx.Loop(duration=d)])
            layers.append(src.with_duration(d).image_transform(lambda f, s=s: _fill_np(Image.fromarray(f), (fmt.width, fmt.height), s.effects)))
        elif s.motion == "parallax" and s.subject is not None:         # the picture holds, the subject settles into place
            layers.append(ImageClip(_prepared(s.visual, (fmt.width, fmt.height), s.effects)).with_duration(d))
            side = -1 if zlib.crc32(f"px{s.motion_seed}".encode()) % 2 else 1
            sub, m = _subject_clip(s.subject, n, fmt.fps, side * round(fmt.width * 0.03), 1.5 * max(kb, 0.04), head_frames(s, fmt.fps))
            layers.append(sub.with_position((s.subject_x - m, s.subject_y - m)))
        elif s.motion in ("kenburns", "parallax"):
            z0, z1, fx, fy = kenburns_path(s.motion_seed, kb * (0.5 if s.motion == "parallax" else 1))
            layers.append(_window_clip(_prepared(s.visual, (fmt.width, fmt.height), s.effects), n, fmt.fps, z0, z1, fx, fy))
        elif s.motion == "pan":                                      # the background 8 % larger, the title on it, drifting left
            bw, bh = round(fmt.width * 1.08) // 2 * 2, round(fmt.height * 1.08) // 2 * 2
            card = Image.open(s.visual).convert("RGBA").resize((bw, bh), Image.BICUBIC)
            if s.layer: card.alpha_composite(Image.open(s.layer).convert("RGBA"), (s.layer_x + (bw - fmt.width) // 2, s.layer_y + (bh - fmt.height) // 2))
            dx, dy = bw - fmt.width, (bh - fmt.height) // 2
            layers.append(ImageClip(np.asarray(card.convert("RGB"))).with_duration(d).with_position(lambda t, d=d, dx=dx, dy=dy: (-dx * t / d, -dy)))
        else: layers.append(ImageClip(str(s.visual)).with_duration(d))
        if s.layer is not None and s.motion != "pan":
            layer = ImageClip(str(s.layer)).with_duration(d)
            if s.motion in ("rise", "parallax"):
                y = lambda t, s=s: (s.layer_x, s.layer_y + drop * (1 - min(t / RISE_SECONDS, 1)) ** 3)
                layer = layer.with_position(y).with_effects([vfx.CrossFadeIn(RISE_SECONDS * 0.8)])
            else: layer = layer.with_position((s.layer_x, s.layer_y))
            layers.append(layer)
        shot = layers[0] if len(layers) == 1 else CompositeVideoClip(layers, size=(fmt.width, fmt.height))
        clips.append(shot.with_start(s.start).with_duration(d).with_effects(fade_in + fade_out))
    for o in tl.overlays:                  # lower third, chapter tags, counters, progress bar: the same PNGs, faded and slid alike
        clip = ImageClip(str(o.image)).with_start(o.start).with_duration(o.end - o.start)
        if o.animate == "slide":
            dx = round(fmt.width * 0.04) * (1 if o.x + clip.w / 2 > fmt.width / 2 else -1)
            clip = clip.with_position(lambda t, o=o, dx=dx: (o.x + dx * (1 - min(t / SLIDE_SECONDS, 1)) ** 3, o.y))
        else: clip = clip.with_position((o.x, o.y))
        if o.animate != "none": clip = clip.with_effects([vfx.CrossFadeIn(FADE_IN), vfx.CrossFadeOut(FADE_OUT)])
        clips.append(clip)
    for c in (tl.captions.images if tl.captions else []):
        clips.append(ImageClip(str(c.image)).with_start(c.start).with_duration(c.end - c.start).with_position((tl.captions.x, tl.captions.y)))
    video = CompositeVideoClip(clips, size=(fmt.width, fmt.height)).with_duration(tl.duration)
    if tl.audio: video = video.with_audio(AudioFileClip(str(tl.audio[0].path)))
    video.write_videofile(str(out), fps=fmt.fps, codec=encoder, audio_codec="aac", audio_bitrate=fmt.audio_bitrate, preset=fmt.preset,
                          ffmpeg_params=["-crf", str(fmt.crf), "-vf", "scale=out_color_matrix=bt709:out_range=tv",
                                         "-g", str(max(1, fmt.fps // 2)), "-bf", "2",       # ytempire's GOP (YouTube's guidance)
                                         *(["-flags", "+cgop"] if encoder == "libx264" else []),
                                         *(["-maxrate", fmt.bitrate, "-bufsize", _double(fmt.bitrate)] if fmt.bitrate else []),
                                         "-force_key_frames", "expr:gte(t,n_forced*2)", *COLOR_ARGS],
                          threads=os.cpu_count(), temp_audiofile_path=str(out.parent), logger=None)
    return out


def render_ytempire(tl: Timeline, out: Path, st: Settings):
    from ytempire.video import render_timeline
    return render_timeline(tl, out, st, progress=False)


def tree_rss_mb(pid: int) -> float:
    "Resident memory of a process and all its descendants, in MB (Linux /proc)."
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(next(l for l in open(f"/proc/{p}/status") if l.startswith("VmRSS")).split()[1])
            for t in os.listdir(f"/proc/{p}/task"): todo += [int(c) for c in open(f"/proc/{p}/task/{t}/children").read().split()]
        except (OSError, StopIteration): pass                          # it ended while being read
    return total / 1024


class PeakMemory:
    "Peak resident memory of this process and its children together (sampled every 100 ms), in MB."
    def __enter__(self):
        import threading
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True); self._thread.start()
        return self
    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))
            self._stop.wait(0.1)
    def __exit__(self, *exc):
        self._stop.set(); self._thread.join()


def _run(kind: str, tl_json: str, out: str, st: Settings, vfr: bool, encoder: str):
    "In a fresh process: import the renderer, then time it; returns (seconds, result, peak RSS in MB, CPU seconds)."
    for m in ("moviepy", "numpy") if kind == "moviepy" else ("ytempire.video",):
        importlib.import_module(m)                                    # imports stay outside the timer
    tl = Timeline.model_validate_json(Path(tl_json).read_text())
    tl = tl.model_copy(update={"format": tl.format.model_copy(update={"vfr": vfr})})
    def cpu():
        return sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
    with PeakMemory() as mem:
        c0, t0 = cpu(), time.perf_counter()
        result = (render_moviepy(tl, Path(out), encoder, st.getfloat("video", "kenburns")) if kind == "moviepy"
                  else render_ytempire(tl, Path(out), st))
        seconds = time.perf_counter() - t0
    return seconds, result, mem.peak, cpu() - c0


def in_fresh_process(*args):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(_run, *args).result()


def grey_frame(ffmpeg: str, path: Path, t: float, size: tuple[int, int]):
    "The frame shown at `t` seconds as a grey-level array a quarter of the size."
    import numpy as np
    w, h = size[0] // 4 // 2 * 2, size[1] // 4 // 2 * 2
    raw = subprocess.run([ffmpeg, "-v", "error", "-ss", f"{t:.3f}", "-i", str(path), "-frames:v", "1", "-vf", f"scale={w}:{h}",
                          "-pix_fmt", "gray", "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w).astype(float)


def check_times(tl: Timeline) -> list[float]:
    "Times to compare the renders at: a title's rise, a crossfade, card holds with captions, Ken Burns and parallax shots, the end."
    s, times = tl.shots, [min(0.35, tl.shots[0].end / 2), tl.duration - 0.5]
    for i, x in enumerate(s):
        if i and x.transition == "fade": times.append((x.start + s[i - 1].end) / 2)    # moviepy has crossfades and slides only
        if x.kind == "clip": continue                                                  # its frames' timing differs by a frame
        body = (x.start + (x.transition_seconds if i else 0), x.end - (s[i + 1].transition_seconds if i + 1 < len(s) else 0))
        if x.motion in ("kenburns", "parallax"): times += [body[0] + 0.85 * (body[1] - body[0]), (body[0] + body[1]) / 2]
        elif len(times) < 8: times.append((x.start + x.end) / 2)
    return sorted({round(t, 3) for t in times if 0 < t < tl.duration})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="target duration of the demo video, seconds")
    ap.add_argument("--size", default="1080x1920", help="frame size WxH")
    a = ap.parse_args(argv)
    size = tuple(int(v) for v in a.size.split("x"))
    st = Settings()                                                   # settings.ini < YTEMPIRE_CONFIG < YTEMPIRE_* env
    ff = find_tool(st, "ffmpeg")
    os.environ["FFMPEG_BINARY"] = ff                                  # moviepy uses the same ffmpeg
    from ytempire.video import CODECS
    encoder, vfr = CODECS[st.get("video", "codec")][0], st.getbool("video", "vfr")
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        work = Path(tmp)
        tl = with_imagery(make_timeline(work, a.duration, size, st), work, ff, st)
        tl_json = work / "video" / "timeline-imagery.json"
        tl_json.write_text(tl.model_dump_json())
        fmt = tl.format
        kinds = lambda f: ", ".join(sorted({f(x) for x in tl.shots}))
        print(f"timeline: {tl.duration:.1f} s at {fmt.width}x{fmt.height}, {fmt.fps} fps, {len(tl.shots)} shots "
              f"(motion {kinds(lambda x: x.kind + '/' + x.motion)}; transitions {kinds(lambda x: x.transition)}, {tl.shots[-1].transition_seconds:g} s), "
              f"{len(tl.captions.images) if tl.captions else 0} caption images; {encoder} {fmt.preset} crf {fmt.crf}", file=sys.stderr)
        missing = sorted({x.transition for x in tl.shots} - {"fade", "slideleft", "none"})
        if missing: print(f"note: moviepy has no {', '.join(missing)} transition; its side crossfades there (no frame inside compared)", file=sys.stderr)
        cfr_s, cfr, cfr_rss, cfr_cpu = in_fresh_process("ytempire", str(tl_json), str(work / "cfr.mp4"), st, False, encoder)
        vfr_s, vfr_video, vfr_rss, vfr_cpu = in_fresh_process("ytempire", str(tl_json), str(work / "vfr.mp4"), st, True, encoder)
        mp_s, _, mp_rss, mp_cpu = in_fresh_process("moviepy", str(tl_json), str(work / "moviepy.mp4"), st, False, encoder)
        if cfr.encoder != encoder:
            print(f"note: ytempire encoded with {cfr.encoder} ([video] hwaccel), moviepy with {encoder}: not like for like", file=sys.stderr)
        times = check_times(tl)
        ours = {t: grey_frame(ff, work / "cfr.mp4", t, size) for t in times}
        d_mp = max(abs(ours[t] - grey_frame(ff, work / "moviepy.mp4", t, size)).mean() for t in times)
        d_vfr = max(abs(ours[t] - grey_frame(ff, work / "vfr.mp4", t, size)).mean() for t in times)
        prod_s, prod_rss = (vfr_s, vfr_rss) if vfr else (cfr_s, cfr_rss)
        print(f"ytempire cfr: {cfr_s:.2f} s ({cfr.frames_encoded} frames encoded, {cfr.encoder}); "
              f"ytempire vfr: {vfr_s:.2f} s ({vfr_video.frames_encoded} frames encoded); moviepy: {mp_s:.2f} s (every frame); "
              f"production setting: {'vfr' if vfr else 'cfr'}", file=sys.stderr)
        print(f"CPU seconds (Python and ffmpeg; a quiet 2-core machine needs at least half as much wall time): "
              f"ytempire cfr {cfr_cpu:.1f}, vfr {vfr_cpu:.1f}, moviepy {mp_cpu:.1f}; load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
        print(f"frames compared at {', '.join(f'{t:g}' for t in times)} s: largest mean |grey difference| "
              f"ytempire-cfr vs moviepy {d_mp:.2f}, vs ytempire-vfr {d_vfr:.2f} (of 255; limit {MAX_FRAME_DIFF:g})", file=sys.stderr)
        print(f"peak RSS: ytempire cfr {cfr_rss:.0f} MB, vfr {vfr_rss:.0f} MB, moviepy {mp_rss:.0f} MB", file=sys.stderr)
        if max(d_mp, d_vfr) > MAX_FRAME_DIFF:
            print(f"error: the renders differ (mean |grey difference| {max(d_mp, d_vfr):.2f} > {MAX_FRAME_DIFF:g}): "
                  "the comparison is not like for like", file=sys.stderr)
            return 1
        print(f"speedup_vs_moviepy_cfr={mp_s / cfr_s:.1f} speedup_vs_moviepy_vfr={mp_s / vfr_s:.1f} "
              f"render_realtime_factor={prod_s / tl.duration:.3f} peak_rss_mb={prod_rss:.0f}")
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""Render benchmark: ytempire's one-filtergraph renderer against the same video composed with moviepy.

What is compared. Both sides render one Timeline made by the production code, outside the timers: the demo topic
with its notes (examples/coffee-roasting.md) through the offline stages (script, Piper narration, mastered soundtrack,
subtitles), then `video.plan_video` (cards and caption images). So both sides get
- the same card images: per scene a background PNG and a transparent title layer, with the production title motion
  (`[video] motion`, default `rise`: the title fades in and eases up 3.5 % of the frame height over 0.7 s; moviepy:
  an ImageClip whose position is a function of t plus `CrossFadeIn`; `pan`: the card drifts across a 1.08x crop),
- the same crossfades between scenes (`[video] transition_seconds`; moviepy: `CrossFadeIn` on the incoming clips),
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
What still differs: moviepy blends in 8-bit RGB and ffmpeg converts its frames to YUV, ytempire converts each image
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


def render_moviepy(tl: Timeline, out: Path, encoder: str) -> Path:
    "The Timeline composed with moviepy as its documentation shows."
    import numpy as np
    from PIL import Image
    from moviepy import ImageClip, CompositeVideoClip, AudioFileClip, vfx
    from ytempire.video import RISE_SECONDS, COLOR_ARGS
    fmt, drop, clips = tl.format, round(tl.format.height * 0.035), []
    for i, s in enumerate(tl.shots):
        d = s.end - s.start
        fade_in = [vfx.CrossFadeIn(s.transition_seconds)] if i and s.transition != "none" else []
        if s.motion == "pan":                                        # the background 8 % larger, the title on it, drifting left
            bw, bh = round(fmt.width * 1.08) // 2 * 2, round(fmt.height * 1.08) // 2 * 2
            card = Image.open(s.visual).convert("RGBA").resize((bw, bh), Image.BICUBIC)
            if s.layer: card.alpha_composite(Image.open(s.layer).convert("RGBA"), (s.layer_x + (bw - fmt.width) // 2, s.layer_y + (bh - fmt.height) // 2))
            dx, dy = bw - fmt.width, (bh - fmt.height) // 2
            clips.append(ImageClip(np.asarray(card.convert("RGB"))).with_start(s.start).with_duration(d)
                         .with_position(lambda t, d=d, dx=dx, dy=dy: (-dx * t / d, -dy)).with_effects(fade_in))
            continue
        clips.append(ImageClip(str(s.visual)).with_start(s.start).with_duration(d).with_effects(fade_in))
        if s.layer is None: continue
        layer = ImageClip(str(s.layer)).with_start(s.start).with_duration(d)
        if s.motion == "rise":
            y = lambda t, s=s: (s.layer_x, s.layer_y + drop * (1 - min(t / RISE_SECONDS, 1)) ** 3)
            layer = layer.with_position(y).with_effects(fade_in + [vfx.CrossFadeIn(RISE_SECONDS * 0.8)])
        else: layer = layer.with_position((s.layer_x, s.layer_y)).with_effects(fade_in)
        clips.append(layer)
    for c in (tl.captions.images if tl.captions else []):
        clips.append(ImageClip(str(c.image)).with_start(c.start).with_duration(c.end - c.start).with_position((tl.captions.x, tl.captions.y)))
    video = CompositeVideoClip(clips, size=(fmt.width, fmt.height)).with_duration(tl.duration)
    if tl.audio: video = video.with_audio(AudioFileClip(str(tl.audio[0].path)))
    video.write_videofile(str(out), fps=fmt.fps, codec=encoder, audio_codec="aac", audio_bitrate=fmt.audio_bitrate, preset=fmt.preset,
                          ffmpeg_params=["-crf", str(fmt.crf), "-vf", "scale=out_color_matrix=bt709:out_range=tv",
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
        result = render_moviepy(tl, Path(out), encoder) if kind == "moviepy" else render_ytempire(tl, Path(out), st)
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
    "Times to compare the renders at: inside a title's rise, inside a crossfade, in holds with captions, near the end."
    s = tl.shots
    times = [min(0.35, s[0].end / 2)]
    if len(s) > 1 and s[1].transition == "fade": times.append((s[1].start + s[0].end) / 2)     # moviepy has only crossfades
    times += [(x.start + x.end) / 2 for x in s[1:4]] + [tl.duration - 0.5]
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
        tl = make_timeline(work, a.duration, size, st)
        tl_json = work / "video" / "timeline.json"
        fmt = tl.format
        print(f"timeline: {tl.duration:.1f} s at {fmt.width}x{fmt.height}, {fmt.fps} fps, {len(tl.shots)} shots "
              f"(motion {tl.shots[0].motion}, transition {tl.shots[-1].transition} {tl.shots[-1].transition_seconds:g} s), "
              f"{len(tl.captions.images) if tl.captions else 0} caption images; {encoder} {fmt.preset} crf {fmt.crf}", file=sys.stderr)
        if len(tl.shots) > 1 and tl.shots[1].transition not in ("fade", "none"):
            print(f"note: moviepy has no '{tl.shots[1].transition}' transition; its side crossfades instead", file=sys.stderr)
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

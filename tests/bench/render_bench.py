"""Render benchmark: ytempire's one-filtergraph renderer against a straightforward moviepy composition.

Both render the same 60 s 1080x1920 timeline: 12 stills with crossfades, 20 subtitle cues, a voice track and a music
track (ducked under the voice by ytempire; mixed at a fixed lower volume by moviepy, as moviepy-based generators do).
Both use the same ffmpeg binary and the same encoder settings (libx264, [video] preset and crf, 30 fps, AAC), so the
comparison is about the composition approach. ytempire's time includes drawing its caption images.

Usage: .venv/bin/python tests/bench/render_bench.py [--duration 60] [--size 1080x1920]
Last line: speedup_vs_moviepy=X.X render_realtime_factor=Y.YY peak_rss_mb=Z
"""
import argparse, os, resource, sys, tempfile, time

from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline"); os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from ytempire.config import Settings, find_tool
from ytempire.schemas import Brief, Cue, Word, Shot, Timeline, AudioTrack, TrendReport
from ytempire.scripts import OfflineTemplateWriter
from ytempire.voice import narrate
from ytempire.audio import compose_bed, render_bed
from ytempire.sync import split_lines, caption_style
from ytempire.video import render_card, compose_card, palette_for, render_captions, render_timeline, output_format, font_file

N_STILLS, N_CUES = 12, 20


def make_inputs(work: Path, duration: float, size: tuple[int, int], st: Settings):
    "Stills, cues with word timings, a narration and a music bed (not timed)."
    w, h = size
    brief = Brief(topic="How coffee roasting works", duration=duration, aspect="9:16")
    _, pal = palette_for(brief.topic)
    stills = []
    for i in range(N_STILLS):
        bg, layer, x, y = render_card(f"Idea number {i + 1}", f"{i + 1} / {N_STILLS}", i, N_STILLS, brief.topic, (w, h), pal, work, st, f"s{i}", f"{i + 1:02d}")
        p = work / f"still{i:02d}.png"; compose_card(bg, layer, x, y).save(p); stills.append(p)
    script = OfflineTemplateWriter(st).write(brief, TrendReport())
    words = " ".join(s.narration for s in script.scenes).split()
    per = max(1, len(words) // N_CUES)
    cues, timed = [], []
    span = duration / N_CUES
    for k in range(N_CUES):
        ws = words[k * per:(k + 1) * per] if k < N_CUES - 1 else words[k * per:k * per + per]
        t0 = k * span + 0.1
        step = (span - 0.3) / max(1, len(ws))
        tw = [Word(text=x, start=round(t0 + j * step, 3), end=round(t0 + (j + 1) * step - 0.02, 3)) for j, x in enumerate(ws)]
        timed += tw
        cues.append(Cue(start=tw[0].start, end=round(tw[-1].end + 0.1, 3), text="\n".join(split_lines(" ".join(ws), 42))))
    voice = narrate(script, brief, st, work).audio
    music = render_bed(compose_bed(duration + 2, "bench"), work / "music.wav", st)
    return brief, stills, cues, timed, voice, music


def render_ytempire(work, brief, stills, cues, words, voice, music, duration, size, st):
    fmt = output_format(brief, st).model_copy(update={"width": size[0], "height": size[1]})
    x = st.getfloat("video", "transition_seconds")
    d = (duration + (N_STILLS - 1) * x) / N_STILLS
    shots = [Shot(visual=p, start=round(i * (d - x), 3), end=round(min(duration, i * (d - x) + d), 3), motion="none",
                  transition="fade" if i else "none", transition_seconds=x) for i, p in enumerate(stills)]
    captions = render_captions(cues, words, size, st, work / "captions")
    tl = Timeline(shots=shots, captions=captions, format=fmt, duration=duration,
                  audio=[AudioTrack(path=voice, role="voice"), AudioTrack(path=music, role="music", gain_db=st.getfloat("audio", "music_gain_db"), duck_under="voice")])
    return render_timeline(tl, work / "ytempire.mp4", st, progress=False)


def render_moviepy(work, stills, cues, voice, music, duration, size, st):
    from moviepy import ImageClip, TextClip, CompositeVideoClip, AudioFileClip, CompositeAudioClip, vfx, afx
    w, h = size
    x = st.getfloat("video", "transition_seconds")
    d = (duration + (N_STILLS - 1) * x) / N_STILLS
    clips = [ImageClip(str(p)).with_start(i * (d - x)).with_duration(d).with_effects([vfx.CrossFadeIn(x)] if i else [])
             for i, p in enumerate(stills)]
    style = caption_style(w, h, st)
    texts = [TextClip(font=font_file("Inter", "Bold"), text=c.text, font_size=style["size"], color="white", stroke_color="black",
                      stroke_width=style["outline"], method="caption", size=(style["max_width"], None), text_align="center")
             .with_start(c.start).with_duration(c.end - c.start).with_position(("center", h - style["margin_v"] - 2 * style["size"]))
             for c in cues]
    audio = CompositeAudioClip([AudioFileClip(str(voice)), AudioFileClip(str(music)).with_effects([afx.MultiplyVolume(0.2)])]).with_duration(duration)
    video = CompositeVideoClip(clips + texts, size=(w, h)).with_audio(audio).with_duration(duration)
    video.write_videofile(str(work / "moviepy.mp4"), fps=st.getint("video", "fps"), codec="libx264", audio_codec="aac",
                          preset=st.get("video", "preset"), ffmpeg_params=["-crf", st.get("video", "crf"), "-pix_fmt", "yuv420p"],
                          threads=os.cpu_count(), logger=None)
    return work / "moviepy.mp4"


def _timed(fn, *args):
    "Run fn(*args) in a fresh process: (seconds, result, peak RSS in MB of that process plus its largest child)."
    t0 = time.perf_counter()
    result = fn(*args)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, result, rss / 1024


def in_fresh_process(fn, *args):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(_timed, fn, *args).result()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--size", default="1080x1920")
    a = ap.parse_args(argv)
    size = tuple(int(v) for v in a.size.split("x"))
    st = Settings(env={})
    os.environ.setdefault("FFMPEG_BINARY", find_tool(st, "ffmpeg"))       # moviepy uses the same ffmpeg
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        work = Path(tmp)
        brief, stills, cues, words, voice, music = make_inputs(work, a.duration, size, st)
        ours, video, rss_mb = in_fresh_process(render_ytempire, work, brief, stills, cues, words, voice, music, a.duration, size, st)
        theirs, _, theirs_rss = in_fresh_process(render_moviepy, work, stills, cues, voice, music, a.duration, size, st)
        print(f"ytempire: {ours:.2f} s ({video.frames_encoded} frames encoded, {video.encoder}); moviepy: {theirs:.2f} s; "
              f"video {a.duration:g} s at {size[0]}x{size[1]}; peak RSS ytempire {rss_mb:.0f} MB, moviepy {theirs_rss:.0f} MB", file=sys.stderr)
        print(f"speedup_vs_moviepy={theirs / ours:.1f} render_realtime_factor={ours / a.duration:.2f} peak_rss_mb={rss_mb:.0f}")


if __name__ == "__main__":
    main()

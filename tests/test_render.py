"""The renderer's pictures: every transition, smooth Ken Burns, parallax, blur fill, clips, grade/vignette/grain, encoding, VFR with motion."""
import io, subprocess
import numpy as np
import pytest
from PIL import Image
from render_assets import scene_picture, subject_picture, dot_picture
from ytempire.config import Settings, ToolError, find_tool
from ytempire.schemas import Shot, Timeline, OutputFormat, Overlay
from ytempire.video import (TRANSITIONS, Plan, render_timeline, encoder_args, kenburns_path, target_bitrate,
                            pick_transition, GRADES)

ST = Settings(env={})
FF = find_tool(ST, "ffmpeg")
SMALL = OutputFormat(width=320, height=180, fps=30, preset="ultrafast", hwaccel="none")


def frames(path, size, fmt="gray"):
    "Every frame of a video as an array (n, h, w[, 3])."
    w, h = size
    raw = subprocess.run([FF, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", fmt, "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, *(3,) if fmt == "rgb24" else ()).astype(float)


def grab(path, t):
    "The frame shown at t seconds, grey levels."
    png = subprocess.run([FF, "-v", "error", "-ss", str(t), "-i", str(path), "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
                         capture_output=True, check=True).stdout
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), float)


def solid(path, rgb, size=(320, 180)):
    Image.new("RGB", size, rgb).save(path); return path


def test_every_transition_renders(tmp_path):
    a = scene_picture(tmp_path / "a.png", (320, 180))           # textured pictures: a zoom of a flat colour would not show
    Image.open(a).transpose(Image.FLIP_TOP_BOTTOM).save(b := tmp_path / "b.png")
    names, shots = list(TRANSITIONS), []
    assert len(names) >= 12 and sum(x.kind in ("custom", "zoomblend", "whip") for x in TRANSITIONS.values()) >= 3
    for i in range(len(names) + 1):
        shots.append(Shot(visual=a if i % 2 == 0 else b, start=round(0.7 * i, 3), end=round(0.7 * i + 1.1, 3),
                          transition=names[i - 1] if i else "none", transition_seconds=0.4))
    tl = Timeline(shots=shots, duration=shots[-1].end, format=SMALL)
    v = render_timeline(tl, tmp_path / "all.mp4", ST, progress=False)
    f = frames(v.path, (320, 180), "rgb24")
    assert abs(len(f) - tl.duration * 30) <= 1
    pure = {0: f[6], 1: f[round(1.25 * 30)]}            # shot 0 alone, shot 1 alone after its transition
    for i, name in enumerate(names):
        mid = f[round((shots[i + 1].start + 0.2) * 30)]
        out, into = pure[i % 2], pure[(i + 1) % 2]
        assert np.abs(mid - out).mean() > 8 and np.abs(mid - into).mean() > 8, (name, np.abs(mid - out).mean(), np.abs(mid - into).mean())
        after = f[round((shots[i + 1].start + 0.5) * 30)]   # the transition is over: the new shot, whole
        assert np.abs(after - into).mean() < 4, (name, np.abs(after - into).mean())


def dot_track(video, size):
    "The sub-pixel centroid of the bright dot in each frame."
    pos = []
    for fr in frames(video, size):
        m = np.clip(fr - 170, 0, None); ys, xs = np.nonzero(m); wt = m[ys, xs]
        pos.append(((xs * wt).sum() / wt.sum(), (ys * wt).sum() / wt.sum()))
    return np.array(pos)


def jitter(pos):
    "RMS distance (pixels) of a track from its best cubic in time, and how often the horizontal speed changes sign."
    t = np.arange(len(pos))
    res = np.stack([pos[:, k] - np.polyval(np.polyfit(t, pos[:, k], 3), t) for k in range(2)])
    v = np.diff(pos[:, 0])
    return float(np.sqrt((res ** 2).mean())), int((np.diff(np.sign(v)) != 0).sum())


def test_kenburns_is_smooth(tmp_path):
    "The dot of a slowly zooming picture follows a smooth path; ffmpeg's zoompan on the same move jitters."
    pic = dot_picture(tmp_path / "dot.png")
    fmt = OutputFormat(width=640, height=360, fps=30, preset="ultrafast", crf=12, hwaccel="none")
    tl = Timeline(shots=[Shot(visual=pic, start=0, end=4, motion="kenburns", motion_seed=0)], duration=4, format=fmt)
    z0, z1, fx, fy = kenburns_path(0, 0.08)
    v = render_timeline(tl, tmp_path / "kb.mp4", ST, progress=False)
    pos = dot_track(v.path, (640, 360))
    rms, flips = jitter(pos)
    assert len(pos) == 120 and abs(pos[-1] - pos[0]).max() > 8, pos[[0, -1]]      # it moves
    assert rms < 0.1 and flips == 0, (rms, flips)
    # the same zoom with zoompan (integer crop positions) measured the same way
    zp = tmp_path / "zp.mp4"
    subprocess.run([FF, "-v", "error", "-y", "-loop", "1", "-i", str(pic), "-vf",
                    f"zoompan=z='{z0}+{z1 - z0}*on/119':x='(iw-iw/zoom)*{(1 + fx) / 2}':y='(ih-ih/zoom)*{(1 + fy) / 2}':d=1:s=640x360:fps=30",
                    "-frames:v", "120", "-c:v", "libx264", "-crf", "12", "-preset", "ultrafast", str(zp)], check=True)
    zrms, zflips = jitter(dot_track(zp, (640, 360)))
    assert zrms > 3 * rms and zflips > 5, (zrms, zflips, rms)
    print(f"Ken Burns jitter: perspective {rms:.3f} px rms, {flips} reversals; zoompan {zrms:.3f} px, {zflips} reversals")


def test_parallax_subject_moves_faster_than_background(tmp_path):
    pic, sub = scene_picture(tmp_path / "p.png"), subject_picture(tmp_path / "s.png", 80)
    tl = Timeline(shots=[Shot(visual=pic, subject=sub, subject_x=120, subject_y=50, start=0, end=3, motion="parallax")],
                  duration=3, format=SMALL)
    f = frames(render_timeline(tl, tmp_path / "px.mp4", ST, progress=False).path, (320, 180), "rgb24")
    orange = lambda fr: np.argwhere((fr[..., 0] > 200) & (fr[..., 1] > 90) & (fr[..., 1] < 150) & (fr[..., 2] < 90)).mean(0)
    moved = np.abs(orange(f[-1]) - orange(f[0])).max()
    sky0, sky1 = f[0][:40].mean(), f[-1][:40].mean()
    assert moved >= 4, moved                                          # the subject drifts ~3 % of the width
    assert len(f) == 90 and np.abs(f[0] - f[-1]).mean() > 1 and abs(sky0 - sky1) < 20


def test_blur_fill_and_cover(tmp_path):
    tall = scene_picture(tmp_path / "tall.png", (300, 600))
    shot = lambda fill: Shot(visual=tall, start=0, end=0.5, fill=fill)
    blur = frames(render_timeline(Timeline(shots=[shot("blur")], duration=0.5, format=SMALL), tmp_path / "b.mp4", ST, progress=False).path,
                  (320, 180), "rgb24")[0]
    cover = frames(render_timeline(Timeline(shots=[shot("cover")], duration=0.5, format=SMALL), tmp_path / "c.mp4", ST, progress=False).path,
                   (320, 180), "rgb24")[0]
    side, centre = blur[:, :100], blur[:, 115:205]
    assert side.mean() > 40                                                          # a blurred picture, not black bars
    assert np.abs(np.diff(side, axis=1)).mean() < np.abs(np.diff(centre, axis=1)).mean() / 2      # soft at the sides, sharp inside
    # the whole picture is in the blur fill (its sun near the top right of the fitted copy); cover crops it to the middle band
    assert np.abs(blur - cover).mean() > 10


def test_clip_is_trimmed_and_looped(tmp_path):
    clip = tmp_path / "ramp.mp4"       # brightness = 40 + 4 x frame number (25 fps): the frame shown tells the time in the clip
    subprocess.run([FF, "-v", "error", "-y", "-f", "lavfi", "-i", "nullsrc=s=160x90:r=25:d=2,geq=lum='40+4*N':cb=128:cr=128",
                    "-c:v", "libx264", "-crf", "0", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)], check=True)
    tl = Timeline(shots=[Shot(visual=clip, kind="clip", clip_start=1.0, start=0, end=1.6)], duration=1.6, format=SMALL)
    f = frames(render_timeline(tl, tmp_path / "clip.mp4", ST, progress=False).path, (320, 180))
    lum = f.mean(axis=(1, 2))
    assert len(f) == 48
    assert abs(lum[0] - (40 + 4 * 25)) < 6, lum[0]                   # starts 1 s into the clip, rescaled to the frame
    assert lum[20] > lum[0] + 20                                    # plays on
    assert lum[40] < lum[20]                                        # the clip ran out after 1 s: it looped


def test_grade_vignette_grain_change_the_picture(tmp_path):
    pic = scene_picture(tmp_path / "p.png")
    def render(tag, effects=(), grade="none"):
        tl = Timeline(shots=[Shot(visual=pic, start=0, end=0.5, effects=list(effects))], duration=0.5,
                      format=SMALL.model_copy(update={"grade": grade}))
        return frames(render_timeline(tl, tmp_path / f"{tag}.mp4", ST, progress=False).path, (320, 180), "rgb24")
    plain = render("plain")[0]
    vig = render("vig", ["vignette:0.6"])[0]
    assert vig[:20, :20].mean() < plain[:20, :20].mean() - 8 and abs(vig[80:100, 150:170].mean() - plain[80:100, 150:170].mean()) < 4
    grain = render("grain", ["grain:25"])
    assert np.abs(grain[0] - plain).mean() > 2
    mono = render("mono", grade="mono")[0]
    assert (mono.max(-1) - mono.min(-1)).mean() < 6 < (plain.max(-1) - plain.min(-1)).mean()
    warm, cool = render("warm", grade="warm")[0], render("cool", grade="cool")[0]
    assert (warm[..., 0] - warm[..., 2]).mean() > (plain[..., 0] - plain[..., 2]).mean() + 8 > (cool[..., 0] - cool[..., 2]).mean() + 16
    for g in GRADES: assert np.abs(render(g, grade=g)[0] - plain).mean() > 3, g


def test_encoding_follows_youtube_recommendations():
    fmt = OutputFormat(width=1080, height=1920, fps=30, hwaccel="none", bitrate=target_bitrate(1080, 1920, ST))
    name, args = encoder_args(fmt, FF)
    a = " ".join(args)
    assert name == "libx264" and "-profile:v high" in a and "-pix_fmt yuv420p" in a and "-flags +cgop" in a
    assert "-g 15" in a and "-bf 2" in a and "-maxrate 8M -bufsize 16M" in a and "-crf 21" in a
    assert "-bf 0" in " ".join(encoder_args(fmt.model_copy(update={"vfr": True}), FF)[1])
    assert "-maxrate" not in encoder_args(fmt.model_copy(update={"bitrate": ""}), FF)[1]
    assert "no-open-gop=1" in " ".join(encoder_args(fmt.model_copy(update={"codec": "hevc"}), FF)[1])


def test_av1_and_gpu_fallbacks(tmp_path):
    pic = solid(tmp_path / "p.png", (120, 60, 30))
    tl = Timeline(shots=[Shot(visual=pic, start=0, end=0.5)], duration=0.5, format=SMALL.model_copy(update={"codec": "av1", "bitrate": "5M"}))
    v = render_timeline(tl, tmp_path / "av1.mp4", ST, progress=False)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(v.path)], capture_output=True, text=True)
    assert v.encoder == "libsvtav1" and probe.stdout.strip() == "av1"
    # no GPU here: auto falls back to the CPU, and asking for VAAPI or NVENC fails in one line naming the fix
    assert encoder_args(SMALL.model_copy(update={"hwaccel": "auto"}), FF)[0] == "libx264"
    with pytest.raises(ToolError, match="hwaccel = vaapi, but VAAPI does not work here.*set \\[video\\] hwaccel = auto or none"):
        encoder_args(SMALL.model_copy(update={"hwaccel": "vaapi"}), FF)
    with pytest.raises(ToolError, match="hwaccel = nvenc, but NVENC does not work"):
        encoder_args(SMALL.model_copy(update={"hwaccel": "nvenc"}), FF)


def test_vfr_keeps_every_moving_frame_and_chunks_cut_between_moving_shots(tmp_path):
    pic, card = scene_picture(tmp_path / "p.png"), solid(tmp_path / "c.png", (40, 40, 90))
    shots = [Shot(visual=card, start=0, end=1.2),
             Shot(visual=pic, start=1.0, end=2.4, motion="kenburns", transition="zoomblend", transition_seconds=0.2),
             Shot(visual=pic, start=2.4, end=3.6, motion="kenburns", motion_seed=3, transition="none"),
             Shot(visual=card, start=3.4, end=4.5, transition="slideleft", transition_seconds=0.2)]
    tl = Timeline(shots=shots, duration=4.5, format=SMALL.model_copy(update={"vfr": True}),
                  overlays=[Overlay(image=card, start=4.0, end=4.2)])
    plan = Plan(tl)
    assert set(range(30, 108)) <= plan.keep                          # the transition in, both Ken Burns shots, the transition out
    assert set(range(120, 126)) <= plan.keep                          # the overlay's frames (without ytempire.overlays: all of them)
    assert 20 not in plan.keep and 130 not in plan.keep               # still holds
    cuts = plan.chunks(1)
    assert len(cuts) == 4 and (72, 102) in cuts, cuts                 # a cut between the two Ken Burns shots (no hold to cut in)
    tl = tl.model_copy(update={"overlays": []})
    one = render_timeline(tl, tmp_path / "one.mp4", ST, progress=False)
    assert one.frames_encoded == len(Plan(tl).keep) < 135
    chunked = render_timeline(tl, tmp_path / "chunked.mp4", Settings(env={}, overrides={"video.chunk_shots": 1}), progress=False)
    for t in (0.5, 1.1, 1.8, 2.6, 3.5, 4.2):
        assert np.abs(grab(one.path, t) - grab(chunked.path, t)).mean() < 3, t


def test_auto_transitions_vary():
    picks = [pick_transition("auto", "explainer", i, seed=11) for i in range(1, 9)]
    assert len(set(picks)) >= 3 and all(x != y for x, y in zip(picks, picks[1:]))


def test_designed_scene_subject_settles_then_rests_and_shows_without_motion(tmp_path):
    "A cut-out subject glides into place over SETTLE_SECONDS, then the shot holds: at rest it is exactly where the card puts it."
    from ytempire.video import SETTLE_SECONDS
    pic, sub = solid(tmp_path / "bg.png", (20, 30, 60)), subject_picture(tmp_path / "s.png", 80)
    shot = Shot(visual=pic, subject=sub, subject_x=120, subject_y=50, start=0, end=4, motion="parallax")
    f = frames(render_timeline(Timeline(shots=[shot], duration=4, format=SMALL), tmp_path / "settle.mp4", ST, progress=False).path,
               (320, 180), "rgb24")
    orange = lambda fr: np.argwhere((fr[..., 0] > 200) & (fr[..., 1] > 90) & (fr[..., 1] < 150) & (fr[..., 2] < 90)).mean(0)
    k = round(SETTLE_SECONDS * 30)
    assert np.abs(orange(f[0]) - orange(f[k])).max() >= 3                       # it moved while settling
    assert np.abs(f[k + 2] - f[-1]).mean() < 1.0                               # then rests: the hold is one still picture
    still = frames(render_timeline(Timeline(shots=[shot.model_copy(update={"motion": "none"})], duration=4, format=SMALL),
                                   tmp_path / "still.mp4", ST, progress=False).path, (320, 180), "rgb24")
    assert np.abs(still[-1] - f[-1]).mean() < 1.5                             # resting place = the card's (no jump at the cut)
    assert np.isfinite(orange(still[0])).all()                                 # a subject shows on a still card too
    plan = Plan(Timeline(shots=[shot], duration=4, format=SMALL.model_copy(update={"vfr": True})))
    assert plan.static_from[0] == k and len(plan.keep) == k + 1               # VFR keeps the settle and the last frame, not the rest

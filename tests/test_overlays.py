"""Overlays (27_overlays) in a real render, and the caption styles (30_video): what the frames show, the frames an
overlay changes (variable frame rate keeps them), render windows (chunks), one-line errors, other scripts.

Until 30_video's `render_args` calls `apply_overlays`, a tiny harness adds the overlays in a second ffmpeg run over the
rendered base video: the same filtergraph code, fed by the decoded base."""
import subprocess
import numpy as np
import pytest
from PIL import Image
from ytempire.config import Settings, ConfigError, find_tool
from ytempire.schemas import Brief, Script, Scene, Narration, Word, Cue, Shot, OutputFormat, Timeline
from ytempire.overlays import make_overlays, apply_overlays, overlay_frames, safe_area
from ytempire.video import Graph, Plan, render_card, render_captions, render_timeline

W, H, FPS, SECONDS = 640, 360, 30, 8.0
ST = Settings(env={})


def _script():
    return Script(title="How volcanoes work", hook="h", cta="c", description="d", provider="hand-made", template="listicle",
                  scenes=[Scene(kind="hook", narration="a", on_screen="Fire below"), Scene(narration="b", on_screen="Magma rises"),
                          Scene(narration="c", on_screen="Pressure builds"), Scene(kind="cta", narration="d", on_screen="Subscribe")])


def _narration():
    return Narration(audio="n.wav", sample_rate=24000, duration=SECONDS, voice="v", provider="p", characters=1,
                     scene_spans=[(0, 1.6), (2.0, 4.3), (4.7, 6.4), (6.8, 7.8)],
                     words=[Word(text="w", start=t / 4, end=t / 4 + 0.2) for t in range(31)])


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    "A 4-shot 640x360 timeline with every overlay, its base render (no overlays) and the base's decoded frames."
    tmp = tmp_path_factory.mktemp("overlays")
    brief = Brief(topic="How volcanoes work", brand="Deep Earth Lab", template="listicle")
    from ytempire.design import palette_for
    pal = palette_for(brief.topic)[1]
    cards = [render_card(s.on_screen, "", i, 4, brief.topic, (W, H), pal, tmp / "cards", ST, f"s{i}") for i, s in enumerate(_script().scenes)]
    bounds = [0, 1.8, 4.5, 6.6, SECONDS]
    shots = [Shot(visual=bg, start=bounds[i], end=bounds[i + 1], transition="none") for i, (bg, *_) in enumerate(cards)]
    st = Settings(env={}, overrides={"overlays.title": "true"})
    ovs = make_overlays(_script(), _narration(), brief, st, (W, H), tmp / "ov", credits={2: "Photo: Jane Doe / Pexels"})
    fmt = OutputFormat(width=W, height=H, fps=FPS, preset="ultrafast", hwaccel="none")
    tl = Timeline(shots=shots, overlays=ovs, format=fmt, duration=SECONDS)
    base = render_timeline(tl.model_copy(update={"overlays": []}), tmp / "base.mp4", ST, progress=False).path
    return dict(tmp=tmp, tl=tl, base=base, frames=_decode(["-i", str(base)]))


def _decode(inputs: list[str], graph: list[str] = (), label: str | None = None, seconds: float = SECONDS) -> np.ndarray:
    "Frames (n, H, W) in grey of an input (through a filtergraph), decoded by ffmpeg as render_args times them."
    ff = find_tool(ST, "ffmpeg")
    maps = ["-map", f"[{label}]"] if label else []
    r = subprocess.run([ff, "-v", "error", *inputs, *graph, *maps, "-fps_mode", "cfr", "-r", str(FPS), "-t", f"{seconds:.3f}",
                        "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True)
    return np.frombuffer(r.stdout, np.uint8).reshape(-1, H, W)


def _with_overlays(sc, t0: float = 0.0, t1: float = SECONDS) -> np.ndarray:
    "The harness: the base video's window [t0, t1) with `apply_overlays` over it, decoded."
    g = Graph()
    i = g.input(["-ss", f"{t0}", "-t", f"{t1 - t0}", "-i", str(sc["base"])])
    g.parts.append(f"[{i}:v]null[base]")
    out = apply_overlays(g, sc["tl"], "base", t0, t1, sc["tmp"])
    args = g.args()
    return _decode(args[:-2], args[-2:], out, t1 - t0)


def test_overlays_show_in_their_time_and_place(scene):
    tl, base = scene["tl"], scene["frames"]
    got = _with_overlays(scene)
    assert got.shape == base.shape
    diff = np.abs(got.astype(int) - base.astype(int))
    lt = next(o for o in tl.overlays if o.kind == "lower_third")
    w, h = Image.open(lt.image).size
    inside = lambda k: diff[k, lt.y:lt.y + h, lt.x:lt.x + w].mean()
    mid = round((lt.start + lt.end) / 2 * FPS)
    assert inside(mid) > 20                                              # the lower third is there, fully in
    assert inside(round(lt.start * FPS) - 3) < 1 and inside(round(lt.end * FPS) + 2) < 1    # not before, not after
    assert 1 < inside(round(lt.start * FPS) + 3) < inside(mid)           # fading and sliding in
    # the progress bar grows: more of its track is lit late than early
    bar = [o for o in tl.overlays if o.kind == "progress"]
    y = bar[0].y + 2
    lit = lambda k: (diff[k, y:y + 2] > 90).any(0).sum()                  # the accent fill, not the faint track
    assert lit(round(7.5 * FPS)) > 3 * max(1, lit(round(1.0 * FPS)))
    # every overlay stays inside the frame; text overlays inside the safe area (a shadow's few pixels aside)
    x0, y0, x1, y1 = safe_area(W, H)
    for o in tl.overlays:
        ow, oh = Image.open(o.image).size
        assert 0 <= o.x and o.x + ow <= W and 0 <= o.y and o.y + oh <= H
        if o.kind != "progress": assert o.x >= x0 - 4 and o.x + ow <= x1 + 4 and o.y >= y0 - 4 and o.y + oh <= y1 + 4, o


def test_overlay_frames_cover_every_change(scene):
    "At variable frame rate only kept frames are encoded: every frame where an overlay's picture changes must be kept."
    tl, base = scene["tl"], scene["frames"]
    contribution = _with_overlays(scene).astype(int) - base.astype(int)
    changed = {k for k in range(1, len(base)) if np.abs(contribution[k] - contribution[k - 1]).max() > 12}
    kept = overlay_frames(tl)
    assert changed and changed <= kept, sorted(changed - kept)
    assert len(kept) < 0.5 * len(base)                                  # yet most frames still need no encoding
    assert kept <= set(range(Plan(tl).total))


def test_a_render_window_matches_the_whole(scene):
    "A chunked render passes its window: overlays that started before it are already in, the animations line up."
    whole = _with_overlays(scene)
    part = _with_overlays(scene, 3.0, 6.0)
    assert len(part) == 90
    err = np.abs(part.astype(int) - whole[90:180].astype(int)).mean(axis=(1, 2))
    assert err.max() < 1.0, err.argmax()


@pytest.mark.parametrize("style", ["highlight", "karaoke", "pop", "boxed"])
@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)])
def test_caption_styles(tmp_path, style, size):
    st = Settings(env={}, overrides={"subtitles.style": style})
    words = [Word(text=t, start=i * 0.4, end=i * 0.4 + 0.35) for i, t in enumerate("Magma rises through the crust".split())]
    ct = render_captions([Cue(start=0, end=2.2, text="Magma rises\nthrough the crust")], words, size, st, tmp_path / style)
    x0, y0, x1, y1 = safe_area(*size)
    first = Image.open(ct.images[0].image)
    assert ct.x >= x0 and ct.x + first.width <= x1 and ct.y + first.height <= y1       # inside the safe area
    per_word = len(ct.images) / len(words)
    assert per_word == (3 if style == "pop" else 1)
    px = lambda img: np.asarray(Image.open(img).convert("RGBA")).reshape(-1, 4)
    yellow = lambda a: ((a[:, 0] > 200) & (a[:, 1] > 170) & (a[:, 2] < 120) & (a[:, 3] > 200)).sum()
    state = ct.images[-3] if style != "pop" else ct.images[-7]          # the word "through" being spoken
    a = px(state.image)
    if style == "highlight": assert 0 < yellow(a) < 0.5 * (a[:, 3] > 200).sum()
    if style == "boxed": assert yellow(a) > 2 * yellow(px(render_captions([Cue(start=0, end=2.2, text="Magma rises\nthrough the crust")], words, size,
                                                                           Settings(env={}), tmp_path / "plain").images[-3].image))
    if style == "karaoke":                                          # spoken words lit, the rest dim (translucent)
        dim = ((a[:, 3] > 60) & (a[:, 3] < 150)).sum()
        assert yellow(a) > 0 and dim > 200
    if style == "pop":                                              # words not yet spoken are not drawn; the new one grows in
        early, late = ((px(ct.images[k].image)[:, 3] > 128).sum() for k in (0, -1))
        assert early < 0.4 * late
        small, big, settled = ((px(ct.images[k].image)[:, 3] > 128).sum() for k in (3, 4, 5))
        assert small < settled < big
        assert [round(i.end - i.start, 3) for i in ct.images[3:5]] == [0.034, 0.1]


def test_unknown_caption_style_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        render_captions([], [], (1920, 1080), Settings(env={}, overrides={"subtitles.style": "wavy"}), tmp_path)
    assert str(e.value) == "[subtitles] style = 'wavy' is unknown; set it to one of: highlight, karaoke, pop, boxed"


@pytest.mark.parametrize("style", ["karaoke", "pop", "boxed"])
def test_styles_in_japanese_and_hindi_and_dialogue(tmp_path, style):
    st = Settings(env={}, overrides={"subtitles.style": style})
    ja = [Word(text=t, start=i * 0.4, end=i * 0.4 + 0.35) for i, t in enumerate(["コーヒーの", "焙煎は、", "ゆっくり", "進みます。"])]
    ct = render_captions([Cue(start=0, end=1.6, text="コーヒーの焙煎は、\nゆっくり進みます。")], ja, (1920, 1080), st, tmp_path / "ja", "ja")
    assert len(ct.images) == 4 * (3 if style == "pop" else 1)
    hi = [Word(text=t, start=i * 0.4, end=i * 0.4 + 0.35) for i, t in enumerate("AI से कॉफ़ी भूनना आसान है।".split())]
    ct = render_captions([Cue(start=0, end=2.4, text="AI से कॉफ़ी भूनना आसान है।")], hi, (1080, 1920), st, tmp_path / "hi", "hi")
    assert np.asarray(Image.open(ct.images[-1].image))[..., 3].max() == 255
    two = render_captions([Cue(start=0, end=1.2, text="Where do we start?", speaker="host"), Cue(start=1.3, end=2.4, text="Right here", speaker="guest")],
                          [], (640, 360), st, tmp_path / "two")
    a = np.asarray(Image.open(two.images[1].image).convert("RGBA")).reshape(-1, 4)
    solid = a[(a[:, 3] == 255) & (a[:, :3].sum(1) > 300)]
    assert tuple(int(x) for x in np.median(solid[:, :3], axis=0)) == (0x7F, 0xE3, 0xFF)      # the guest's colour holds

"""Stage 31 thumbnails: variants with imagery, sizes and bytes, the mobile legibility check, generation failures, hi/ja."""
import logging
import numpy as np
import pytest
from PIL import Image, ImageDraw
from ytempire.config import Settings, StageError
from ytempire.design import PALETTES, font
from ytempire.schemas import Brief, Scene, Script
from ytempire.thumbnails import (Drawn, ThumbImage, cap_height, headlines, layout_center, layout_split, legibility,
                                 make_thumbnails, short_enough)

ST = Settings(env={})


def script(n_points=5):
    scenes = [Scene(narration="n", on_screen="o", kind="hook")] + [Scene(narration="n", on_screen="o")] * n_points
    return Script(title="t", hook="h", scenes=scenes, cta="c", description="d", provider="test")


def busy_picture(path, seed=0, size=(1280, 720), tint=(1, 0.8, 0.5)):
    "A deliberately busy picture: fractal noise from black to near white."
    rng = np.random.default_rng(seed)
    lum = sum(np.asarray(Image.fromarray((rng.random((4 * 2**k, 7 * 2**k)) * 255).astype(np.uint8))
                         .resize(size, Image.BICUBIC), float) / 2**k for k in range(5))
    lum = (lum - lum.min()) / (lum.max() - lum.min()) * 255
    Image.fromarray(np.stack([lum * t for t in tint], -1).astype(np.uint8)).save(path)
    return path


def check_files(th, max_bytes=2_000_000):
    for v in th.variants:
        assert v.path.name == f"thumbnail-{v.variant}.png" and v.path.exists()
        assert Image.open(v.path).size == (1280, 720) and v.path.stat().st_size < max_bytes
        assert 0 <= v.score <= 10 and v.imagery and v.palette in PALETTES and v.headline


def test_offline_variants(tmp_path):
    b = Brief(topic="How coffee roasting works")
    th = make_thumbnails(script(), b, ST, tmp_path)
    check_files(th)
    assert len(th.variants) >= ST.getint("thumbnails", "variants") >= 6
    assert sum(bool(v.legible) for v in th.variants) >= 6 and th.variants[th.chosen].legible
    assert {v.imagery for v in th.variants} == {"illustration", "none"}          # the emoji cut-out, and text only
    assert {v.layout for v in th.variants} == {"bold", "split", "center"}
    assert len({v.palette for v in th.variants}) == 3 and len({v.headline for v in th.variants}) >= 2
    assert all(short_enough(v.headline, "en") for v in th.variants)
    assert len({v.variant for v in th.variants}) == len(th.variants)
    parts = th.variants[0].score_parts
    assert {"contrast", "feed_size", "coverage", "words", "calm", "contrast_p10", "cap_share", "cap_px_168"} <= set(parts)


def test_split_marks_the_brand():
    pal = PALETTES["ember"]
    plain, branded = (np.asarray(layout_split(640, 360, pal, "coffee roasting", "Explained", brand=b).image, float)
                      for b in (None, "Zeta Lab"))
    assert np.abs(plain - branded)[:, 360:].mean() > 3 and np.abs(plain - branded)[:, :300].mean() == 0


def test_variants_setting_raises_the_count(tmp_path):
    st = Settings(env={}, overrides={"thumbnails.variants": 9})
    th = make_thumbnails(script(), Brief(topic="How volcanoes work"), st, tmp_path)
    assert len(th.variants) == 9 and len({v.variant for v in th.variants}) == 9


def test_listicle_number_form(tmp_path):
    b = Brief(topic="Facts about volcanoes", template="listicle")
    hs = headlines(script(5), b)
    assert hs["number"] == "5 facts" and all(len(h.split()) <= 4 for h in hs.values())
    th = make_thumbnails(script(5), b, ST, tmp_path)
    assert "5 facts" in {v.headline for v in th.variants} and sum(bool(v.legible) for v in th.variants) >= 6


def test_legibility_fails_grey_on_grey_and_passes_palettes():
    grey = ("#6B6B6B", "#777777", "#8A8A8A", "#8C8C8C", "#808080")
    _, parts, ok = legibility(layout_center(1280, 720, grey, "coffee roasting", "Explained"), "coffee roasting")
    assert not ok and parts["contrast_p10"] < 1.5
    for name, pal in PALETTES.items():
        _, parts, ok = legibility(layout_center(1280, 720, pal, "coffee roasting", "Explained"), "coffee roasting")
        assert ok, (name, parts)


def test_legibility_fails_text_over_busy_picture_and_tiny_text(tmp_path):
    pic = Image.open(busy_picture(tmp_path / "busy.png")).convert("RGB")

    def draw(img, size, color="#FFFFFF"):
        mask = Image.new("L", img.size, 0)
        f = font("Bebas Neue", "Regular", size)
        for im, fill in ((img, color), (mask, 255)): ImageDraw.Draw(im).text((80, 300), "VOLCANOES", font=f, fill=fill)
        bb = mask.getbbox()
        return Drawn(img, bb, mask, color, cap_height(f, "VOLCANOES"))

    _, parts, ok = legibility(draw(pic.copy(), 200), "volcanoes")        # white letters straight on the picture
    assert not ok and parts["contrast_p10"] < 3 and parts["cap_share"] > 0.15
    _, parts, ok = legibility(draw(Image.new("RGB", (1280, 720), (10, 10, 10)), 40), "volcanoes")   # tiny letters
    assert not ok and parts["contrast_p10"] > 15 and parts["cap_px_168"] < 6.6
    _, parts, ok = legibility(draw(Image.new("RGB", (1280, 720), (10, 10, 10)), 200), "volcanoes")
    assert ok


def test_imagery_variants_show_the_pictures(tmp_path):
    scene = ThumbImage("scene", busy_picture(tmp_path / "scene.png", tint=(0.1, 1, 0.1)), licence="CC0")   # green
    sub = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    ImageDraw.Draw(sub).ellipse([20, 20, 380, 380], fill=(255, 0, 255, 255))       # a magenta disc
    sub.save(tmp_path / "subject.png")
    cut = ThumbImage("illustration", tmp_path / "subject.png", cutout=True, licence="CC0")
    th = make_thumbnails(script(), Brief(topic="How volcanoes work"), ST, tmp_path / "out", [scene, cut])
    check_files(th)
    kinds = {v.imagery for v in th.variants}
    assert kinds == {"scene", "illustration", "none"}                             # no emoji when a subject is given
    src = np.asarray(Image.open(scene.path).convert("RGB"), float)
    for v in th.variants:
        px = np.asarray(Image.open(v.path).convert("RGB"), float)
        magenta = ((px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 2] > 200)).mean()
        assert (magenta > 0.03) == (v.imagery == "illustration"), v.variant
        if v.imagery == "scene" and v.layout != "split":     # the undarkened right edge is the picture itself
            assert np.abs(px[:250, -60:] - src[:250, -60:]).mean() < 6, v.variant
        green = ((px[..., 1] > 100) & (px[..., 0] < 50) & (px[..., 2] < 50)).mean()
        assert (green > 0.05) == (v.imagery == "scene"), v.variant
    assert all(v.legible for v in th.variants if v.imagery == "scene")        # darkened enough behind the text
    assert th.variants[th.chosen].imagery != "none"                          # a picture wins a tie with text only


def test_bright_busy_picture_stays_legible(tmp_path):
    "The worst picture for white letters: bright, busy noise everywhere; the darkening must still carry the text."
    bright = busy_picture(tmp_path / "bright.png", seed=5, tint=(1, 1, 1))
    img = Image.open(bright); Image.eval(img, lambda v: 140 + v * 115 // 255).save(bright)
    th = make_thumbnails(script(), Brief(topic="How coffee roasting works"), ST, tmp_path / "out",
                         [ThumbImage("scene", bright)])
    scene = [v for v in th.variants if v.imagery == "scene"]
    assert len(scene) == 3 and all(v.legible for v in scene), [(v.variant, v.score_parts) for v in scene]


def test_generated_variant_and_failures(tmp_path, caplog):
    calls = []

    def generate(prompt, size, out):
        calls.append((prompt, size))
        return busy_picture(out, seed=3)

    th = make_thumbnails(script(), Brief(topic="How volcanoes work"), ST, tmp_path / "ok", generate=generate)
    check_files(th)
    assert len(calls) == 1 and calls[0][1] == (1280, 720)
    assert "volcanoes" in calls[0][0].lower() and "no text" in calls[0][0]
    assert {v.layout for v in th.variants if v.imagery == "generated"} == {"bold", "split", "center"}

    def broken(prompt, size, out): raise StageError("openai images: HTTP 500 from the image API; try again later")

    with caplog.at_level(logging.WARNING):
        th = make_thumbnails(script(), Brief(topic="How volcanoes work"), ST, tmp_path / "bad", generate=broken)
    assert "generated" not in {v.imagery for v in th.variants} and sum(bool(v.legible) for v in th.variants) >= 6
    assert "HTTP 500" in caplog.text


HI, JA = "कॉफ़ी की भुनाई कैसे होती है", "火山の仕組み"


@pytest.mark.parametrize("lang,topic", [("hi", HI), ("ja", JA)])
def test_hindi_japanese(tmp_path, lang, topic):
    b = Brief(topic=topic, language=lang)
    th = make_thumbnails(script(), b, ST, tmp_path, [ThumbImage("scene", busy_picture(tmp_path / "s.png"))])
    check_files(th)
    assert sum(bool(v.legible) for v in th.variants) >= 6
    assert all(short_enough(v.headline, lang) and not v.headline.isascii() for v in th.variants)

"""The offline visual library (ytempire.library): icon matching, subjects, charts and designed scenes on the real fonts."""
import json, time
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import pytest
from PIL import Image

from ytempire.config import Settings
from ytempire.schemas import Brief, Scene, ShotVisual, TrendReport

ASPECTS = {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)}


@pytest.fixture(scope="module")
def settings():
    return Settings()


def ctx_for(brief, settings, out_dir):
    "A stand-in for ytempire.visuals.VisualContext (stage 29) with the fields LibrarySource reads."
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(brief=brief, settings=settings, size=brief.size, out_dir=Path(out_dir), used=set(), seconds=6.0,
                           ledger=None, guard=None, run_id="-")


def test_index_shipped_then_cached_for_other_fonts(tmp_path, monkeypatch):
    import ytempire.library as L
    from ytempire.keywords import embed
    L.icon_index.cache_clear()
    t = time.perf_counter(); shipped = L.icon_index(str(tmp_path)); t_shipped = time.perf_counter() - t
    assert shipped.cached and not list(tmp_path.glob("icons-*.npy"))        # Debian 12's fonts: the shipped vectors
    sample = [0, 500, len(shipped.icons) // 2, len(shipped.icons) - 1]
    np.testing.assert_allclose(shipped.vectors[sample], embed([shipped.icons[i].words for i in sample]), atol=2e-3)
    # other font versions: embedded once into the cache, then read back; a damaged cache file is recomputed
    monkeypatch.setattr(L, "BUNDLED_INDEX", tmp_path / "not-shipped")
    L.icon_index.cache_clear()
    t = time.perf_counter(); cold = L.icon_index(str(tmp_path)); t_cold = time.perf_counter() - t
    L.icon_index.cache_clear()
    t = time.perf_counter(); warm = L.icon_index(str(tmp_path)); t_warm = time.perf_counter() - t
    print(f"icon index: {len(cold.icons)} icons, shipped {t_shipped:.2f} s, cold {t_cold:.1f} s, warm {t_warm:.2f} s")
    assert (cold.cached, warm.cached) == (False, True) and len(list(tmp_path.glob("icons-*.npy"))) == 1
    np.testing.assert_allclose(cold.vectors, warm.vectors, atol=1e-6)
    np.testing.assert_allclose(cold.vectors, shipped.vectors, atol=2e-3)
    assert t_warm < t_cold / 5
    L.icon_index.cache_clear()
    next(tmp_path.glob("icons-*.npy")).write_bytes(b"damaged")
    assert L.icon_index(str(tmp_path)).cached is False
    L.icon_index.cache_clear()


def test_matching_accuracy_on_labelled_scenes():
    from ytempire.library import LICENCES, match_icons, pick_subject
    labelled = json.loads((LICENCES.parent / "library" / "labelled_scenes.json").read_text())["scenes"]
    assert len(labelled) == 30
    hit = lambda icon, accept: any(a in icon.name.lower() for a in accept)
    top1 = sum(hit(match_icons(s["text"], 1)[0][0], s["accept"]) for s in labelled) / len(labelled)
    subjects = [pick_subject(s["text"])[0] for s in labelled]
    subj = sum(hit(i, s["accept"]) for i, s in zip(subjects, labelled)) / len(labelled)
    print(f"top-1 {top1:.0%}, subject {subj:.0%}")
    assert top1 >= 0.85 and subj >= 0.85
    assert sum(i.provider == "noto-emoji" for i in subjects) >= 24              # colour emoji are the usual subjects


def test_match_icons_excludes_and_filters():
    from ytempire.library import match_icons
    both = match_icons("The rocket left the launch pad", 5)
    assert [s for _, s in both] == sorted((s for _, s in both), reverse=True)
    assert all(i.provider == "mdi" for i, _ in match_icons("rocket", 3, providers=("mdi",)))
    assert "rocket" not in [i.name for i, _ in match_icons("rocket", 5, exclude={"rocket"})]
    assert match_icons("   ", 3) == []


def test_render_subject_emoji_and_glyph(tmp_path):
    from ytempire.library import emoji_icons, mdi_icons, render_subject, emoji_bitmap
    volcano = next(i for i in emoji_icons() if i.name == "volcano")
    coffee = next(i for i in mdi_icons() if i.name == "coffee")
    raw = np.asarray(emoji_bitmap(volcano.char))
    assert raw[(raw[..., 3] > 0) & (raw[..., 3] < 100)][:, :3].mean() > 40   # colour un-premultiplied: no dark rim
    for icon in (volcano, coffee):
        p = render_subject(icon, 640, tmp_path / f"{icon.name}.png", badge=coffee if icon is volcano else None)
        a = np.asarray(Image.open(p))
        assert a.shape == (640, 640, 4) and a[0, 0, 3] == 0 and a[:, :, 3].mean() > 40
        assert len(np.unique(a[a[..., 3] == 255][:, :3], axis=0)) > 50                 # shaded artwork, not a flat blob
    # the glyph is drawn in the palette's accent
    a = np.asarray(Image.open(tmp_path / "coffee.png").convert("RGB")).reshape(-1, 3)
    assert (np.abs(a.astype(int) - (0x38, 0xBD, 0xF8)).sum(1) < 30).mean() > 0.05


def test_numbers_and_charts(tmp_path, settings):
    from ytempire.design import PALETTES
    from ytempire.library import chart_for, find_quantities
    assert find_quantities("Step 2: add 3 eggs and stir for a minute.") == []
    pal = PALETTES["midnight"]
    assert chart_for("Step 2: add 3 eggs.", (1920, 1080), pal, settings, tmp_path / "none.png") is None
    assert chart_for("It erupted in 1980.", (1920, 1080), pal, settings, tmp_path / "none.png") is None
    stat = chart_for("Lava can reach 1,200 °C at the vent.", (1920, 1080), pal, settings, tmp_path / "stat.png", 3, "lava")
    assert (stat.kind, stat.provider, stat.source, stat.origin, stat.scene) == ("chart", "chart", "library", "stat: 1,200 °C", 3)
    assert "volcano" in stat.licence and stat.licence.startswith("own work")
    bars = chart_for("Mount Everest is 8,849 metres tall, while K2 is 8,611 metres.", (1080, 1920), pal, settings,
                     tmp_path / "bars.png")
    assert bars.origin == "bars: Mount Everest 8,849 metres, K2 8,611 metres"
    for v in (stat, bars):
        a = np.asarray(Image.open(v.path))
        assert a.shape[2] == 4 and a[0, 0, 3] == 0 and a[-1, :, 3].max() == 0 and a[:, -1, 3].max() == 0  # nothing cut off
        accent = (np.abs(a[..., :3].astype(int) - (0x38, 0xBD, 0xF8)).sum(-1) < 40) & (a[..., 3] > 200)
        assert accent.mean() > 0.01                                                    # the palette's accent is there
    off = Settings(overrides={"visuals.charts": "false"})
    assert chart_for("Lava can reach 1,200 °C.", (1920, 1080), pal, off, tmp_path / "x.png") is None


def _box(path, xy):
    a = np.asarray(Image.open(path))[..., 3]
    ys, xs = np.nonzero(a > 16)
    return xy[0] + xs.min(), xy[1] + ys.min(), xy[0] + xs.max() + 1, xy[1] + ys.max() + 1


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_compose_scene_in_each_aspect(tmp_path, settings, aspect):
    from ytempire.design import PALETTES
    from ytempire.library import compose_scene, emoji_icons, flatten, render_subject, scene_layout, chart_for
    size = ASPECTS[aspect]
    w, h = size
    pal = PALETTES["forest"]
    volcano = next(i for i in emoji_icons() if i.name == "volcano")
    subject = render_subject(volcano, 600, tmp_path / "subject.png", pal)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (1600, 1000), (235, 235, 225)).save(photo)               # a bright picture: the scrim must carry the text
    visuals = [ShotVisual(scene=0, kind="design", path=subject, source="library", provider="noto-emoji", origin="volcano"),
               chart_for("In 2020, 45% of adults drank coffee daily, up from 38% in 2010.", size, pal, settings,
                         tmp_path / "chart.png"),
               ShotVisual(scene=2, kind="image", path=photo, source="media", provider="media"),
               ShotVisual(scene=3, kind="card", source="card", provider="card")]
    cap = scene_layout(size, settings).caption_top
    for v in visuals:
        L = compose_scene(v, "Where the magma goes next", "2 / 7", v.scene, 9, "How volcanoes work", size, pal, settings,
                          tmp_path / "out", f"s{v.scene}")
        assert L.motion == {"design": "parallax", "chart": "parallax", "image": "kenburns", "card": "rise"}[v.kind]
        assert flatten(L, size).size == size
        title = _box(L.title, L.title_xy)
        if v.kind == "card": continue
        assert title[3] <= cap and title[0] >= 0 and title[2] <= w                          # above the caption band
        if v.kind == "image":
            assert L.background == photo and L.subject is None
            assert title[0] < w * 0.2                                                  # low-left
            region = np.asarray(flatten(L, size).convert("L"))[title[1]:title[3], title[0]:title[2]]
            assert region.mean() < 170                                                   # the scrim darkens the bright photo
            continue
        assert Image.open(L.background).size == size
        sub = _box(L.subject, L.subject_xy)
        assert sub[3] <= cap
        assert sub[2] <= title[0] or title[2] <= sub[0] or sub[3] <= title[1] or title[3] <= sub[1]   # no overlap
        if h > w:   # Shorts: clear of the top 12 % and the right 14 %
            assert min(sub[1], title[1]) >= h * 0.12 and max(sub[2], title[2]) <= w * 0.86
        else:
            assert sub[0] > w * 0.5                                                    # the subject stands on the right


def test_volcano_demo_gets_volcano_subjects(tmp_path, settings):
    from ytempire.scripts import OfflineTemplateWriter
    from ytempire.library import LibrarySource
    brief = Brief(topic="How volcanoes work", duration=60, aspect="9:16")
    script = OfflineTemplateWriter(settings).write(brief, TrendReport())
    ctx = ctx_for(brief, settings, tmp_path)
    src = LibrarySource()
    assert src.name == "library" and LibrarySource.configured(settings)
    shots = [src.find(sc, i, sc.visual, ctx) for i, sc in enumerate(script.scenes)]
    related = ("volcano", "fire", "lava", "mountain", "rock", "stat:", "bars:")
    for v in shots:
        assert v.kind in ("design", "chart") and v.source == "library" and v.licence and Path(v.path).is_file()
        assert any(r in v.origin for r in related), v.origin
        if v.kind == "design": assert v.provider in ("noto-emoji", "mdi") and v.score > 0.3
    assert "volcano" in ctx.used


def test_used_icons_do_not_repeat_while_others_fit(tmp_path, settings):
    from ytempire.library import LibrarySource
    brief = Brief(topic="Space travel", duration=60, aspect="16:9")
    ctx = ctx_for(brief, settings, tmp_path)
    scene = Scene(narration="The rocket left the launch pad and climbed into orbit.", on_screen="Lift-off")
    first, second = (LibrarySource().find(scene, i, "rocket launch", ctx) for i in range(2))
    assert first.origin == "rocket" and second.origin != "rocket"
    assert first.licence.startswith("OFL-1.1") and Path(second.path).is_file()
    mdi = [v for v in (first, second) if "Material Design" in v.licence]
    assert all(v.attribution.startswith("Icons: Material Design Icons") for v in mdi)     # CC BY asks for the credit

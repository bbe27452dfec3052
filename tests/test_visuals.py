"""Stage 29's visual sources against a loopback server that speaks the Pexels, Pixabay and OpenAI images wire formats
(tests/mockimages.py; the `openai` SDK is not patched): success with attribution and a cached download, 429 retried
after its Retry-After then served or fallen back, 500, malformed and slow replies, a spent quota or budget that stops a
request before it leaves; and the --media folder: a labelled set of generated pictures matched to scenes that describe
them in other words (top-1 accuracy, the issue asks >= 80 %), clips trimmed to their shot, corrupt files skipped, a
missing folder refused in one line."""
import json, logging, subprocess, sys, time
from pathlib import Path
import pytest
from PIL import Image
from mockimages import MockImages, PEXELS_KEY, PIXABAY_KEY, picture
from ytempire.config import Settings, InputError, find_tool
from ytempire.ledger import Ledger, QuotaExceeded, BudgetExceeded
from ytempire.schemas import Brief, CostRecord, Narration, Scene, Script, Word
from ytempire.visuals import choose_visuals, generate_image, attributions, check_visuals_inputs, visual_chain

OA_KEY = "not-a-real-key-openai-images-01"


def settings(m=None, tmp_path=None, env=None, **over):
    o = {"paths.ledger": str(tmp_path / "ledger.db"), "paths.cache": str(tmp_path / "cache"), "retry.attempts": 3,
         "retry.max_seconds": 20, "visuals.timeout": 2, "image.timeout": 5}
    if m is not None:
        o.update({"visuals.pexels_base_url": m.url, "visuals.pixabay_base_url": m.url, "image.openai_base_url": m.openai_base})
    o.update({k.replace("__", "."): v for k, v in over.items()})
    e = {"PEXELS_API_KEY": PEXELS_KEY, "PIXABAY_API_KEY": PIXABAY_KEY, "OPENAI_API_KEY": OA_KEY}
    e.update(env or {})
    return Settings(env=e, overrides=o)


def script_of(scenes: list[Scene]) -> Script:
    return Script(title="How volcanoes work", hook=scenes[0].narration, scenes=scenes, cta="Subscribe.", description="", provider="test")


def narration_of(n: int, seconds: float = 4.0, pause: float = 0.4) -> Narration:
    spans = [(round(0.4 + i * (seconds + pause), 3), round(0.4 + i * (seconds + pause) + seconds, 3)) for i in range(n)]
    return Narration(audio=Path("/nonexistent/narration.wav"), sample_rate=24000, duration=round(spans[-1][1] + 1.2, 3),
                     words=[Word(text="x", start=0.4, end=0.8)], scene_spans=spans, voice="test", provider="test", characters=100)


def run(scenes, st, tmp_path, providers, aspect="16:9", media=None, ledger=None, **kw):
    brief = Brief(topic="How volcanoes work", aspect=aspect, media=str(media) if media else None, providers={"visuals": providers})
    return choose_visuals(script_of(scenes), narration_of(len(scenes)), brief, st, tmp_path / "stage", ledger=ledger, run_id="t", **kw)


def outcomes(led, provider, model=None):
    df = led.calls()
    df = df[df.provider == provider]
    if model: df = df[df.model == model]
    return list(df.outcome)


LAVA = Scene(narration="Lava pours down the side of the volcano.", on_screen="Lava", visual="red hot lava flowing down a volcano")
ASH = Scene(narration="Then a grey ash cloud rises for kilometres.", on_screen="Ash", visual="ash cloud rising from an eruption")


# -- Pexels and Pixabay
def test_pexels_success_attribution_ledger_and_cache(tmp_path):
    with MockImages() as m:
        st = settings(m, tmp_path); led = Ledger(st.get("paths", "ledger"))
        vis = run([LAVA, ASH], st, tmp_path, ["pexels", "card"], ledger=led)
        first_downloads = m.downloads
        again = run([LAVA, ASH], st, tmp_path / "again", ["pexels", "card"], ledger=led)
    lava, ash = vis.shots
    # the scene's own photo, ranked by meaning among the results, with the credit Pexels asks for
    assert (lava.provider, lava.source, lava.origin) == ("pexels", "stock", "https://www.pexels.com/photo/101/")
    assert ash.origin == "https://www.pexels.com/photo/103/"
    assert lava.attribution == "Photo by Ana Ruiz on Pexels: https://www.pexels.com/photo/101/" and "pexels.com/license" in lava.licence
    assert lava.score > 0.5 and attributions(vis)[0] == lava.attribution and len(attributions(vis)) == 2
    # the file is in the stage folder and is a picture; the request is what Pexels documents
    assert lava.path.parent == tmp_path / "stage" and Image.open(lava.path).size == (lava.width, lava.height) == (640, 400)
    req = next(r for r in m.requests if r["api"] == "pexels")
    assert req["headers"]["authorization"] == PEXELS_KEY
    assert {k: req["query"][k] for k in ("orientation", "size", "per_page")} == {"orientation": "landscape", "size": "medium", "per_page": "15"}
    assert "lava" in req["query"]["query"]
    # every search is one request in the ledger, free; downloads are cached: the second run downloads nothing
    assert outcomes(led, "pexels", "search") == ["ok"] * 4
    row = led.calls().query("model == 'search'").iloc[0]
    assert (row.units, row.unit, row.cost_usd, row.capability) == (1, "requests", 0, "visuals")
    assert first_downloads == 2 and m.downloads == 2 and len(list((tmp_path / "cache" / "visuals").glob("*.jpg"))) == 2
    assert [s.origin for s in again.shots] == [lava.origin, ash.origin]


def test_no_photo_twice_while_others_fit(tmp_path):
    twins = [LAVA, LAVA.model_copy(update={"narration": "More lava pours down the volcano."})]
    with MockImages() as m:
        vis = run(twins, settings(m, tmp_path), tmp_path, ["pexels", "card"])
    assert vis.shots[0].origin != vis.shots[1].origin and {s.provider for s in vis.shots} == {"pexels"}


def test_pixabay_success_vertical_safesearch_and_credit(tmp_path):
    with MockImages() as m:
        vis = run([ASH], settings(m, tmp_path), tmp_path, ["pixabay", "card"], aspect="9:16")
    shot = vis.shots[0]
    assert (shot.provider, shot.origin) == ("pixabay", "https://pixabay.com/photos/103/")
    assert shot.attribution == "Image by ChenLi from Pixabay: https://pixabay.com/photos/103/"
    q = next(r for r in m.requests if r["api"] == "pixabay")["query"]
    assert (q["key"], q["image_type"], q["orientation"], q["safesearch"]) == (PIXABAY_KEY, "photo", "vertical", "true")
    assert any("pixabay-103-large.jpg" in r["path"] for r in m.requests if r["api"] == "img")    # the large picture, not the preview


def test_429_is_retried_after_retry_after_then_served(tmp_path):
    with MockImages(pexels=[("429", 1)], remaining=150) as m:
        st = settings(m, tmp_path); led = Ledger(st.get("paths", "ledger"))
        t0 = time.monotonic()
        vis = run([LAVA], st, tmp_path, ["pexels", "card"], ledger=led)
        took = time.monotonic() - t0
    assert vis.shots[0].provider == "pexels" and m.api_count("pexels") == 2 and not vis.fallbacks
    assert outcomes(led, "pexels", "search") == ["rate_limited", "ok"]
    gap = [r["time"] for r in m.requests if r["api"] == "pexels"]
    assert gap[1] - gap[0] >= 0.95 and took >= 0.95          # the Retry-After was honoured


def test_429_that_persists_falls_back_and_stops_asking(tmp_path):
    with MockImages(default=("ok",), pexels=[("429", 1)] * 10) as m:
        st = settings(m, tmp_path); led = Ledger(st.get("paths", "ledger"))
        vis = run([LAVA, ASH], st, tmp_path, ["pexels", "pixabay", "card"], ledger=led)
    assert [s.provider for s in vis.shots] == ["pixabay", "pixabay"]
    # scene 0: three attempts (the [retry] limit); the 429s said no requests are left, so scene 1 sends none
    assert m.api_count("pexels") == 3 and outcomes(led, "pexels", "search") == ["rate_limited"] * 3
    reasons = [(f.failed, f.served_by, f.reason.split(":")[0:2]) for f in vis.fallbacks]
    assert reasons[0] == ("pexels", "pixabay", ["scene 0", " rate_limited"]) and reasons[1][:2] == ("pexels", "pixabay")
    assert "skipped" in vis.fallbacks[1].reason and "no requests are left" in vis.fallbacks[1].reason


def test_500_falls_back_to_the_next_source(tmp_path):
    with MockImages(pixabay=[("500",)] * 3) as m:
        st = settings(m, tmp_path); led = Ledger(st.get("paths", "ledger"))
        vis = run([ASH], st, tmp_path, ["pixabay", "card"], ledger=led)
    assert vis.shots[0].provider == "card" and m.api_count("pixabay") == 3
    assert outcomes(led, "pixabay", "search") == ["server_error"] * 3
    assert vis.fallbacks[0].failed == "pixabay" and "server_error" in vis.fallbacks[0].reason


def test_malformed_and_slow_replies_are_retried(tmp_path):
    with MockImages(pexels=[("malformed",), ("timeout", 5)]) as m:
        st = settings(m, tmp_path, visuals__timeout=1); led = Ledger(st.get("paths", "ledger"))
        vis = run([LAVA], st, tmp_path, ["pexels", "card"], ledger=led)
    assert vis.shots[0].provider == "pexels" and outcomes(led, "pexels", "search") == ["malformed", "timeout", "ok"]


def _spend_quota(led, provider, n, unit="requests"):
    for _ in range(n):
        led.record(CostRecord(provider=provider, model="search", capability="visuals", unit=unit, units=1), "earlier-run")


def test_spent_quota_sends_no_request(tmp_path):
    # [quotas] pexels = 2 already used today: the next source serves and no request reaches the server.
    # (a quota of 0 means "no limit" in 03_ledger, so an exhausted quota is one that today's calls have used up)
    with MockImages() as m:
        st = settings(m, tmp_path, quotas__pexels=2); led = Ledger(st.get("paths", "ledger"))
        _spend_quota(led, "pexels", 2)
        vis = run([LAVA, ASH], st, tmp_path, ["pexels", "pixabay", "card"], ledger=led)
    assert m.api_count("pexels") == 0 and m.api_count("pixabay") == 2
    assert [s.provider for s in vis.shots] == ["pixabay", "pixabay"]
    assert all(f.failed == "pexels" and ": quota: pexels daily quota" in f.reason for f in vis.fallbacks)
    assert outcomes(led, "pexels", "search").count("quota") == 2


# -- OpenAI images
def test_generate_image_gpt_image_b64_billed_per_image(tmp_path):
    with MockImages() as m:
        st = settings(m, tmp_path); led = Ledger(st.get("paths", "ledger"))
        out = generate_image("a volcano at dawn. No text.", (1080, 1920), st, tmp_path / "g.png", ledger=led, run_id="t")
    body = next(r for r in m.requests if r["api"] == "openai")["json"]
    assert {k: body[k] for k in ("model", "size", "quality", "n")} == {"model": "gpt-image-1", "size": "1024x1536", "quality": "medium", "n": 1}
    assert "response_format" not in body and Image.open(out).format == "PNG" and Image.open(out).size == (128, 192)
    row = led.calls().iloc[-1]
    assert (row.provider, row.model, row.units, row.unit, row.outcome) == ("openai_images", "gpt-image-1", 1, "images", "ok")
    assert row.cost_usd == pytest.approx(0.04)


def test_dalle3_url_is_downloaded(tmp_path):
    with MockImages() as m:
        st = settings(m, tmp_path, image__openai_model="dall-e-3")
        out = generate_image("a volcano", (1920, 1080), st, tmp_path / "d.png")
    body = next(r for r in m.requests if r["api"] == "openai")["json"]
    assert (body["size"], body["quality"]) == ("1792x1024", "standard") and m.downloads == 1
    assert Image.open(out).size == (224, 128)


def test_openai_source_in_chain_with_429_and_500(tmp_path):
    with MockImages(openai=[("429", 1), ("500",)]) as m:
        st = settings(m, tmp_path, visuals__style="flat vector art"); led = Ledger(st.get("paths", "ledger"))
        vis = run([LAVA], st, tmp_path, ["openai", "card"], ledger=led)
    shot = vis.shots[0]
    assert (shot.source, shot.provider, shot.kind) == ("generated", "openai_images", "image") and shot.path.is_file()
    prompt = [r for r in m.requests if r["api"] == "openai"][-1]["json"]["prompt"]
    assert prompt == shot.origin and "red hot lava flowing down a volcano" in prompt and "flat vector art" in prompt and "No text" in prompt
    assert outcomes(led, "openai_images") == ["rate_limited", "server_error", "ok"]
    assert attributions(vis) == ["Some pictures were generated with OpenAI gpt-image-1."]


def test_openai_quota_and_budget_send_no_request(tmp_path):
    with MockImages() as m:
        st = settings(m, tmp_path, quotas__openai_images=3); led = Ledger(st.get("paths", "ledger"))
        _spend_quota(led, "openai_images", 3, "images")
        with pytest.raises(QuotaExceeded, match="openai_images daily quota"):
            generate_image("a volcano", (1920, 1080), st, tmp_path / "q.png", ledger=led)
        with pytest.raises(BudgetExceeded, match="raise --budget"):
            generate_image("a volcano", (1920, 1080), settings(m, tmp_path, run__budget=0.01), tmp_path / "b.png", ledger=led)
        vis = run([LAVA], st, tmp_path, ["openai", "card"], ledger=led)
    assert m.api_count("openai") == 0 and vis.shots[0].provider == "card" and "quota" in vis.fallbacks[0].reason


def test_keys_stay_out_of_logs_and_ledger(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ytempire")
    with MockImages(pixabay=[("500",)] * 3, pexels=[("status", 401, b'{"error": "bad key"}')]) as m:
        st = settings(m, tmp_path); led = Ledger(st.get("paths", "ledger"))
        run([ASH], st, tmp_path, ["pexels", "pixabay", "card"], ledger=led)
    dump = json.dumps(led.calls().astype(str).to_dict("records")) + caplog.text
    assert "pexels 401" in dump.lower() and PIXABAY_KEY not in dump and PEXELS_KEY not in dump


# -- the user's media folder
# 18 labelled pictures: the file name is the label; most have a sidecar caption (.txt or .json) as a user would write.
# Each scene says one label in other words (no label word in its narration or headline).
LABELLED = [
    ("lava-flow.jpg", None, "Rivers of fire", "Molten rock pours down the mountainside and slowly hardens into black stone."),
    ("magma-chamber.png", "a reservoir of molten rock deep beneath a volcano", "Deep down",
     "Far below the surface, a huge underground pool of liquid rock builds up pressure."),
    ("ash-cloud.jpg", {"caption": "volcanic ash plume over a village"}, "Dark skies", "A towering plume of grey dust darkens the sky above the houses."),
    ("tectonic-plates.png", None, "A cracked shell", "The Earth's crust is cracked into giant slabs that drift a few centimetres each year."),
    ("geyser.webp", "hot water and steam erupting from the ground", "Right on time",
     "Every few minutes, boiling water shoots high into the air from a hole in the ground."),
    ("crater-lake.jpg", "a calm lake filling the caldera of an old volcano", "After the fire", "Rain and snowmelt fill the bowl at the summit, leaving a calm blue pool."),
    ("pyroclastic-flow.jpg", "a glowing avalanche of hot gas and rock fragments", "The deadliest part", "A scorching cloud of gas and rock races downhill faster than a car."),
    ("seismometer.png", {"caption": "instrument recording earthquakes"}, "Listening in", "Sensors buried on the slopes record every tremor before the eruption."),
    ("volcanologist.jpg", {"description": "scientist in a heat-proof suit sampling lava", "tags": ["research", "fieldwork"], "licence": "CC BY 4.0",
                           "credit": "Photo: USGS / J. Doe"}, "Up close", "Researchers in silver protective suits collect samples beside the vent."),
    ("obsidian.png", "black volcanic glass", "Nature's glassworks", "Some lava cools so quickly that it turns into shiny natural glass."),
    ("hot-spring.jpg", None, "A warm welcome", "Bathers relax in warm pools heated from below by the volcano."),
    ("evacuation.jpg", "residents leaving their homes, cars queuing on the road", "Time to go", "Families pack their cars and leave town as officials order everyone out."),
    ("vineyard.jpg", "grape vines on fertile volcanic soil", "A gift to farmers", "Farmers grow grapes in the rich dark earth on the volcano's flanks."),
    ("shield-volcano.png", "a broad gently sloping volcano built from runny lava, Hawaii", "Gentle giants",
     "Wide, gentle mountains on Pacific islands are built from thin, runny lava."),
    ("pompeii-ruins.jpg", "ruins of the Roman city buried by Vesuvius in 79 AD", "Frozen in time",
     "An ancient Roman town, buried in 79 AD, still shows plaster casts of its people."),
    ("volcanic-lightning.jpg", None, "Storm inside", "Electric bolts flash inside the dark eruption column."),
    ("black-smoker.png", "hydrothermal vent on the deep sea floor", "Under the sea", "On the ocean floor, chimneys pour out hot, mineral-rich water."),
    ("satellite-view.jpg", "a volcano seen from orbit, thermal image", "Eyes in the sky", "From space, cameras track the heat glowing at the summit."),
]


def labelled_folder(folder: Path) -> Path:
    "The labelled pictures (Pillow-drawn, different per label) with their sidecars."
    folder.mkdir(parents=True, exist_ok=True)
    for name, side, *_ in LABELLED:
        fmt = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[Path(name).suffix]
        (folder / name).write_bytes(picture(name, (480, 300), fmt))
        if isinstance(side, str): (folder / Path(name).with_suffix(".txt").name).write_text(side + "\n")
        elif side: (folder / f"{name}.json").write_text(json.dumps(side))
    return folder


def test_media_matches_labelled_set(tmp_path):
    folder = labelled_folder(tmp_path / "media")
    scenes = [Scene(narration=said, on_screen=head) for _, _, head, said in LABELLED]
    st = settings(None, tmp_path)
    vis = run(scenes, st, tmp_path, ["media", "card"], media=folder)
    hits = [s.origin == name for s, (name, *_) in zip(vis.shots, LABELLED)]
    accuracy = sum(hits) / len(hits)
    misses = [(name, s.origin or s.provider) for s, (name, *_), ok in zip(vis.shots, LABELLED, hits) if not ok]
    from ytempire.visuals import match_media, match_text, scene_query, scan_media
    _, sims = match_media([match_text(s, scene_query(s)) for s in scenes], [it.description for it in scan_media(folder, st)], 0.3)
    names = [it.path.name for it in scan_media(folder, st)]
    alone = sum(names[j] == name for j, (name, *_) in zip(sims.argmax(1), LABELLED)) / len(LABELLED)
    print(f"\nmedia matching: top-1 accuracy {accuracy:.1%} ({sum(hits)}/{len(hits)}) with the global assignment, "
          f"{alone:.1%} taking each scene's best file on its own; misses (label -> shown): {misses}")
    assert accuracy >= 0.8, misses
    media = [s for s in vis.shots if s.provider == "media"]
    assert len({s.origin for s in media}) == len(media)                      # no file twice
    assert all(s.score >= st.getfloat("visuals", "min_score") and s.path.is_file() and s.path.suffix in (".jpg", ".png") for s in media)
    vol = next(s for s in media if s.origin == "volcanologist.jpg")
    assert (vol.licence, vol.attribution) == ("CC BY 4.0", "Photo: USGS / J. Doe") and "Photo: USGS / J. Doe" in attributions(vis)


def _clip(path: Path, seconds: float, size="320x180"):
    subprocess.run([find_tool(Settings(env={}), "ffmpeg"), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True, capture_output=True)


def test_media_clips_are_trimmed_to_their_shot(tmp_path):
    folder = tmp_path / "media"; folder.mkdir()
    _clip(folder / "lava-river-flowing.mp4", 10)
    _clip(folder / "ash-cloud-rising.mov", 2)
    scenes = [Scene(narration="Molten lava flows like a river down the slope.", on_screen="Lava"),
              Scene(narration="A cloud of ash rises above the crater.", on_screen="Ash")]
    vis = run(scenes, settings(None, tmp_path), tmp_path, ["media", "card"], media=folder)
    long, short = vis.shots
    assert (long.kind, long.origin, short.kind, short.origin) == ("clip", "lava-river-flowing.mp4", "clip", "ash-cloud-rising.mov")
    # the shot lasts from the cut before the scene to the cut after it (4.0 s of speech + pauses, 30_video's shot_times)
    from ytempire.video import shot_times
    n = narration_of(2)
    a, b = shot_times(n.scene_spans, n.duration, 0.5)[0]
    assert long.clip_seconds == pytest.approx(10, abs=0.05) and long.clip_start == pytest.approx((10 - (b - a)) / 2, abs=0.05)
    assert short.clip_start == 0 and short.clip_seconds == pytest.approx(2, abs=0.05)
    assert long.path.is_file() and long.path.suffix == ".mp4" and short.path.suffix == ".mov" and (long.width, long.height) == (320, 180)


def test_corrupt_files_are_skipped_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "media"; folder.mkdir()
    (folder / "lava-flow.jpg").write_bytes(picture("lava", (320, 200)))
    (folder / "broken-photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (folder / "broken-clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage" * 10)
    caplog.set_level(logging.WARNING, logger="ytempire")
    vis = run([LAVA], settings(None, tmp_path), tmp_path, ["media", "card"], media=folder)
    assert vis.shots[0].origin == "lava-flow.jpg"
    assert "broken-photo.jpg is not a readable image" in caplog.text and "broken-clip.mp4 is not a readable video clip" in caplog.text


def test_missing_or_empty_folder_is_a_one_line_error(tmp_path):
    st = settings(None, tmp_path)
    with pytest.raises(InputError) as e:
        run([LAVA], st, tmp_path, ["media", "card"], media=tmp_path / "no-such-folder")
    msg = str(e.value)
    assert "\n" not in msg and "no-such-folder is not a folder" in msg and "leave --media out" in msg
    (tmp_path / "empty").mkdir(); (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(InputError, match="holds no usable image or clip"):
        check_visuals_inputs(Brief(topic="x", media=str(tmp_path / "empty")), st)


def test_chain_ends_with_card_when_library_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ytempire.library", None)        # `import ytempire.library` raises ImportError
    st = settings(None, tmp_path, env={"PEXELS_API_KEY": "", "PIXABAY_API_KEY": "", "OPENAI_API_KEY": ""})
    brief = Brief(topic="How volcanoes work")
    assert visual_chain(brief, st) == ["library", "card"]
    vis = choose_visuals(script_of([LAVA, ASH]), narration_of(2), brief, st, tmp_path / "stage")
    assert vis.providers == ["card"] and [s.kind for s in vis.shots] == ["card", "card"]
    assert vis.fallbacks[0].failed == "library" and "cannot be imported" in vis.fallbacks[0].reason


def test_more_scenes_than_files_no_file_twice(tmp_path):
    folder = tmp_path / "media"; folder.mkdir()
    (folder / "lava-flow.jpg").write_bytes(picture("lava", (320, 200)))
    (folder / "ash-cloud.png").write_bytes(picture("ash", (320, 200), "PNG"))
    scenes = [LAVA, ASH, LAVA.model_copy(update={"narration": "Lava keeps pouring out for weeks.", "visual": "lava pouring out"})]
    vis = run(scenes, settings(None, tmp_path), tmp_path, ["media", "card"], media=folder)
    assert [s.origin for s in vis.shots] == ["lava-flow.jpg", "ash-cloud.png", scenes[2].on_screen]
    assert vis.shots[2].provider == "card" and "shown in another scene" in vis.fallbacks[0].reason

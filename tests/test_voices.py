"""Voices: the catalog command, selection by language and accent, Festival as a second offline English voice
distinct from Piper, cloud catalogs cached, and an offline dialogue whose two voices and captions are measured."""
import json, subprocess, sys, types
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from conftest import clean_env, ytempire


# ---------------------------------------------------------------- the `voices` command

def test_voices_json_lists_every_offline_language(tmp_path):
    r = ytempire("voices", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert all({"id", "provider", "language", "gender", "accent"} <= set(v) for v in rows)
    assert {"en", "es", "fr", "de", "pt", "hi", "ja"} <= {v["language"] for v in rows}
    assert {("piper", "male"), ("festival", "female")} <= {(v["provider"], v["gender"]) for v in rows if v["language"] == "en"}


@pytest.mark.parametrize("tag,accents", [("en-GB", {"en-GB", "en-GB-scotland"}), ("es-MX", {"es-419"}), ("pt-PT", {"pt-PT"}), ("pt-BR", {"pt-BR"})])
def test_voices_language_filter(tmp_path, tag, accents):
    r = ytempire("voices", "--language", tag, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {v["accent"] for v in json.loads(r.stdout)} == accents


def test_voices_table_and_bad_language(tmp_path):
    r = ytempire("voices", "--language", "de", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[:3] == ["id", "provider", "language"], r.stderr
    assert {line.split()[0] for line in r.stdout.splitlines()[1:]} == {"de", "de+f3"}
    bad = ytempire("voices", "--language", "english!", cwd=tmp_path)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "not a BCP-47 tag" in bad.stderr


def test_unknown_channel_voice_fails_before_the_run(tmp_path):
    r = ytempire("make", "Coffee", "--out", tmp_path / "run", cwd=tmp_path, env=clean_env(YTEMPIRE_CHANNEL_VOICE="nobody"))
    assert r.returncode != 0 and "voice 'nobody' is not a usable en voice" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


# ---------------------------------------------------------------- Festival: a second, distinct English voice

SENTENCE = "Roasting turns green coffee brown, and at 196 degrees the beans crack."
PARAGRAPHS = ("Roasting turns green coffee brown and builds its aroma. The beans lose water and swell. Sugars caramelise and the colour deepens.",
              "Rest the beans for a few days before you brew them. Fresh coffee releases gas, so wait. Then grind just before brewing for the best cup.")


def test_festival_word_timings():
    from ytempire.config import Settings
    from ytempire.voice import FestivalSynthesizer
    f1 = FestivalSynthesizer(Settings(env={})).speak(SENTENCE)
    assert [w.text for w in f1.words] == SENTENCE.split()
    assert all(a.start <= a.end <= b.start + 1e-6 for a, b in zip(f1.words, f1.words[1:]))
    assert f1.words[-1].end <= len(f1.audio) / f1.sample_rate + 1e-6 and f1.words[0].start < 0.5
    # Festival's own word timings: "196" is said as three words and takes far longer than "at"
    num, at = (next(w for w in f1.words if w.text == t) for t in ("196", "at"))
    assert num.end - num.start > 2 * (at.end - at.start)


def test_festival_is_distinct_from_piper():
    from ytempire.config import Settings
    from ytempire.voice import PiperSynthesizer, FestivalSynthesizer, _resample
    from ytempire.voices import voice_distance
    st, sr = Settings(env={}), 22050
    def said(synth, text):
        s = synth.speak(text)
        return _resample(s.audio, s.sample_rate, sr)
    piper, fest = PiperSynthesizer(st), FestivalSynthesizer(st)
    (pa, pb), (fa, fb) = [said(piper, t) for t in PARAGRAPHS], [said(fest, t) for t in PARAGRAPHS]
    same = [voice_distance(pa, pb, sr), voice_distance(fa, fb, sr)]
    other = [voice_distance(pa, fa, sr), voice_distance(pb, fb, sr)]
    print(f"same voice, other paragraph: {same}\npiper vs festival, same paragraph: {other}")
    assert min(d["semitones"] for d in other) > 4 > max(d["semitones"] for d in same)   # joe (male) vs slt (female)
    assert min(d["mfcc"] for d in other) > 2 * max(d["mfcc"] for d in same)             # timbre, well beyond what the words move


def test_styles_change_prosody():
    from ytempire.config import Settings
    from ytempire.voice import EspeakSynthesizer, FestivalSynthesizer, PiperSynthesizer
    from ytempire.voices import median_f0
    st = Settings(env={})
    es = EspeakSynthesizer(st, "es")
    text = "Hoy vemos tres trucos para un café mejor."
    calm, excited = es.speak(text, style="calm"), es.speak(text, style="excited")
    f_calm, f_exc = median_f0(calm.audio, calm.sample_rate), median_f0(excited.audio, excited.sample_rate)
    print(f"espeak-ng calm {len(calm.audio) / calm.sample_rate:.2f} s {f_calm:.0f} Hz, excited {len(excited.audio) / excited.sample_rate:.2f} s {f_exc:.0f} Hz")
    assert len(excited.audio) < 0.95 * len(calm.audio) and f_exc > f_calm * 1.1            # faster and higher
    for synth in (FestivalSynthesizer(st), PiperSynthesizer(st)):                          # rate (and pauses) only
        calm, excited = synth.speak(SENTENCE, style="calm"), synth.speak(SENTENCE, style="excited")
        print(synth.name, len(calm.audio) / calm.sample_rate, len(excited.audio) / excited.sample_rate)
        assert len(excited.audio) < 0.95 * len(calm.audio), synth.name


# ---------------------------------------------------------------- cloud catalogs: cached, stale cache on failure, absent module

class _FakeCloud:
    calls = 0
    fail = False
    @classmethod
    def configured(cls, settings): return True
    @classmethod
    def list_voices(cls, settings):
        cls.calls += 1
        if cls.fail: raise ConnectionError("no route to host")
        return [{"id": "v1", "name": "Ana", "language": "es", "accent": "es-MX", "gender": "Female", "styles": ["warm"], "labels": {"x": 1}},
                {"id": "v2", "name": "Bob", "language": "en", "accent": "en-GB", "gender": "male"}]


def test_cloud_catalog_cached_and_selected(tmp_path, monkeypatch):
    from ytempire.config import Settings
    from ytempire.schemas import Brief
    import ytempire.voices as V
    monkeypatch.setitem(sys.modules, "ytempire.voice_cloud", types.SimpleNamespace(CLOUD_SYNTHESIZERS={"elevenlabs": _FakeCloud}))
    st = Settings(env={}, overrides={"paths.cache": str(tmp_path), "voice.providers": "elevenlabs, offline"})
    _FakeCloud.calls, _FakeCloud.fail = 0, False
    es = V.catalog(st, "es-MX")
    assert [(v.provider, v.id, v.gender, v.tier) for v in es] == [("espeak-ng", "es-419", "male", 1), ("espeak-ng", "es-419+f3", "female", 1),
                                                                 ("elevenlabs", "v1", "female", 4)]
    V.catalog(st)
    assert _FakeCloud.calls == 1 and json.loads((tmp_path / "voices" / "elevenlabs.json").read_text())[0]["id"] == "v1"
    v, why = V.select_voice(Brief(topic="Café", language="es-MX"), None, st)
    assert (v.provider, v.id) == ("elevenlabs", "v1") and "elevenlabs" in why
    _FakeCloud.fail = True                                      # a failed listing falls back to the cached list
    assert [v.id for v in V.cloud_catalog("elevenlabs", st, refresh=True)] == ["v1", "v2"]
    (tmp_path / "voices" / "elevenlabs.json").unlink()
    assert V.cloud_catalog("elevenlabs", st, refresh=True) == []   # and without one, leaves the provider out


def test_cloud_catalog_without_the_module(monkeypatch):
    from ytempire.config import Settings, ConfigError
    import ytempire.voices as V
    monkeypatch.setitem(sys.modules, "ytempire.voice_cloud", None)      # import fails
    st = Settings(env={}, overrides={"voice.providers": "google, offline"})
    with pytest.raises(ConfigError, match="cloud voices need ytempire.voice_cloud"): V.catalog(st)
    assert V.catalog(Settings(env={}))                                   # offline only: the module is not needed


# ---------------------------------------------------------------- an offline dialogue, end to end

@pytest.fixture(scope="module")
def dialogue_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("dialogue")
    r = ytempire("make", "How coffee roasting works", "--template", "dialogue", "--duration", "30", "--aspect", "9:16",
                 "--out", work / "run", "--no-progress", cwd=work)
    assert r.returncode == 0, r.stderr
    return work / "run"


def _speaker_audio(run: Path) -> dict[str, np.ndarray]:
    nar = json.loads((run / "stages" / "20-voice" / "output.json").read_text())["output"]
    audio, sr = sf.read(run / nar["audio"], dtype="float32")
    out: dict[str, list] = {}
    for sp, (a, b) in zip(nar["speakers"], nar["scene_spans"]): out.setdefault(sp, []).append(audio[int(a * sr):int(b * sr)])
    return {sp: np.concatenate(x) for sp, x in out.items()}, sr


def test_dialogue_two_distinct_voices(dialogue_run):
    from ytempire.voices import median_f0, mean_mfcc
    rec = json.loads((dialogue_run / "run.json").read_text())
    prov = rec["providers"]
    assert prov["voice.host"] == "piper:en_US-joe-medium" and prov["voice.guest"] == "festival:cmu_us_slt_arctic_hts", prov
    assert set(rec["voice_reasons"]) == {"host", "guest"} and "distinct from piper:en_US-joe-medium" in rec["voice_reasons"]["guest"]
    clips, sr = _speaker_audio(dialogue_run)
    f0 = {sp: median_f0(x, sr) for sp, x in clips.items()}
    semis = 12 * abs(np.log2(f0["guest"] / f0["host"]))
    mfcc = float(np.linalg.norm(mean_mfcc(clips["host"], sr) - mean_mfcc(clips["guest"], sr)))
    print(f"median F0 host {f0['host']:.1f} Hz, guest {f0['guest']:.1f} Hz, {semis:.1f} semitones apart; mean-MFCC distance {mfcc:.2f}")
    assert semis > 4, f0
    assert abs(rec["metrics"]["voice.f0_host"] - f0["host"]) < 1 and rec["metrics"]["voice.speaker_semitones"] > 4


def test_dialogue_captions_show_the_speaker(dialogue_run):
    import pysubs2
    ass = pysubs2.load(str(dialogue_run / "stages" / "22-sync" / "subtitles.ass"))
    assert {"host", "guest"} <= set(ass.styles) and ass.styles["host"].primarycolor != ass.styles["guest"].primarycolor
    assert {e.style for e in ass} == {"host", "guest"}
    subs = json.loads((dialogue_run / "stages" / "22-sync" / "output.json").read_text())["output"]
    host = next(c for c in subs["cues"] if c["speaker"] == "host")
    guest = next(c for c in subs["cues"] if c["speaker"] == "guest")
    # the burned-in captions: the text in the caption band is white for the host and light blue for the guest
    from ytempire.config import Settings, find_tool
    ff = find_tool(Settings(env={}), "ffmpeg")
    from PIL import Image
    tl = json.loads((dialogue_run / "stages" / "30-video" / "timeline.json").read_text())
    top = tl["captions"]["y"]
    bottom = top + Image.open(dialogue_run / tl["captions"]["images"][0]["image"]).height
    def caption_color(t: float) -> np.ndarray:
        raw = subprocess.run([ff, "-v", "error", "-ss", f"{t:.2f}", "-i", str(dialogue_run / "video.mp4"), "-frames:v", "1",
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        frame = np.frombuffer(raw, np.uint8).reshape(1920, 1080, 3)[top:bottom].reshape(-1, 3).astype(int)
        bright = frame[frame.min(1) > 110]                       # caption glyphs (white or light blue), not the card behind
        return np.median(bright, axis=0)
    h, g = caption_color((host["start"] + host["end"]) / 2), caption_color((guest["start"] + guest["end"]) / 2)
    print("caption colour host", h, "guest", g)
    assert g[2] - g[0] > 60 and abs(h[2] - h[0]) < 30, (h, g)


def test_dialogue_report_names_the_voices(dialogue_run):
    html = (dialogue_run / "report.html").read_text()
    assert "<h2>Voices</h2>" in html and "festival:cmu_us_slt_arctic_hts" in html and "<b>guest</b>" in html


# ---------------------------------------------------------------- a dialogue over a cloud provider (loopback ElevenLabs)

def _dialogue_script():
    from ytempire.schemas import Scene, Script
    lines = [("hook", "host", "Today I am talking about coffee roasting with a guest. Where do we start?"),
             ("point", "guest", "Thanks for having me. Coffee starts green and turns brown in the roaster."),
             ("point", "host", "What happens at first crack?"), ("cta", "host", "Subscribe for more like this.")]
    return Script(title="Coffee", hook=lines[0][2], cta=lines[-1][2], description="d", provider="hand-made", template="dialogue",
                  scenes=[Scene(kind=k, speaker=s, narration=t, on_screen=t[:20]) for k, s, t in lines])


@pytest.mark.parametrize("eleven", ["ok", "500"])
def test_cloud_dialogue_voices_and_their_fallbacks(tmp_path, eleven):
    """Both speakers get ElevenLabs voices of their own (chosen from its voice list); when ElevenLabs fails, each
    speaker falls back to its own offline voice, so the host and the guest still sound different."""
    from mockvoice import MockVoice
    from ytempire.config import Settings
    from ytempire.schemas import Brief
    from ytempire.voice import narrate
    with MockVoice(default=(eleven,)) as m:
        st = Settings(env={"ELEVENLABS_API_KEY": "el-test-key-0123456789"},
                      overrides={"voice.elevenlabs_base_url": m.url, "voice.providers": "elevenlabs, offline", "retry.attempts": 1,
                                 "paths.cache": str(tmp_path / "cache"), "paths.ledger": str(tmp_path / "ledger.db")})
        nar = narrate(_dialogue_script(), Brief(topic="Coffee roasting", template="dialogue", duration=20), st, tmp_path / "out")
        spoke = sorted({r["path"].split("/")[3] for r in m.requests if "with-timestamps" in r["path"]})
    print(nar.voices, [(f.failed, f.served_by) for f in nar.fallbacks], "\n".join(nar.voice_reasons.values()))
    assert nar.speakers == ["host", "guest", "host", "host"]
    if eleven == "ok":
        assert nar.voices == {"host": "elevenlabs:21m00Tcm4TlvDq8ikWAM", "guest": "elevenlabs:JBFqnCBsd6RMkjVDRZzb"}
        assert spoke == ["21m00Tcm4TlvDq8ikWAM", "JBFqnCBsd6RMkjVDRZzb"] and not nar.fallbacks
    else:
        assert nar.voices == {"host": "piper:en_US-joe-medium", "guest": "festival:cmu_us_slt_arctic_hts"}
        assert [(f.failed, f.served_by) for f in nar.fallbacks] == [("elevenlabs", "piper"), ("elevenlabs", "festival")]
    assert "elevenlabs" in nar.voice_reasons["host"] and (tmp_path / "cache" / "voices" / "elevenlabs.json").exists()


def test_voices_command_lists_a_configured_cloud_catalog(tmp_path):
    from mockvoice import MockVoice
    with MockVoice() as m:
        env = clean_env(ELEVENLABS_API_KEY="el-test-key-0123456789", YTEMPIRE_VOICE_PROVIDERS="elevenlabs, offline",
                        YTEMPIRE_VOICE_ELEVENLABS_BASE_URL=m.url, YTEMPIRE_PATHS_CACHE=tmp_path / "cache")
        r = ytempire("voices", "--language", "en-GB", "--json", cwd=tmp_path, env=env)
        again = ytempire("voices", "--language", "en-GB", "--json", cwd=tmp_path, env=env)
        listed = sum(1 for q in m.requests if q["path"].startswith("/v1/voices"))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {(v["provider"], v["id"]) for v in rows} >= {("elevenlabs", "JBFqnCBsd6RMkjVDRZzb"), ("espeak-ng", "en")}
    assert {v["accent"] for v in rows} <= {"en-GB", "en-GB-scotland"} and again.stdout == r.stdout
    assert listed == 1                                   # the second listing came from the cache
    assert "el-test-key" not in r.stdout + r.stderr


@pytest.mark.parametrize("lang", ["es", "de"])
def test_offline_dialogue_in_another_language_has_two_voices(tmp_path, lang):
    "Outside English the host and the guest are two espeak-ng voices (the language's voice and its female variant), apart in pitch."
    from ytempire.config import Settings
    from ytempire.schemas import Brief, TrendReport
    from ytempire.scripts import OfflineTemplateWriter
    from ytempire.voice import narrate
    from ytempire.voices import median_f0
    st = Settings(env={})
    brief = Brief(topic="Kaffee" if lang == "de" else "El café", language=lang, template="dialogue", duration=20)
    nar = narrate(OfflineTemplateWriter(st).write(brief, TrendReport()), brief, st, tmp_path)
    audio, sr = sf.read(nar.audio, dtype="float32")
    f0 = {sp: median_f0(np.concatenate([audio[int(a * sr):int(b * sr)] for w, (a, b) in zip(nar.speakers, nar.scene_spans) if w == sp]), sr)
          for sp in ("host", "guest")}
    semis = 12 * np.log2(f0["guest"] / f0["host"])
    print(lang, nar.voices, {k: round(v) for k, v in f0.items()}, f"{semis:.1f} semitones")
    assert nar.voices == {"host": f"espeak-ng:{lang}", "guest": f"espeak-ng:{lang}+f3"}
    assert semis > 4, f0


def test_make_voice_flag(tmp_path):
    bad = ytempire("make", "Coffee", "--voice", "nobody", "--out", tmp_path / "run", cwd=tmp_path)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "voice 'nobody' is not a usable en voice; pick one from `ytempire voices --language en`" in bad.stderr
    from ytempire.cli import parser, _brief
    settings, brief = _brief(parser().parse_args(["script", "Tea", "--voice", "en+f3", "--language", "en-GB"]))
    from ytempire.voices import select_voice
    assert select_voice(brief, None, settings)[0].key == "espeak-ng:en+f3"

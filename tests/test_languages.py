"""Every offline language end to end: `ytempire make --language L` gives a video in that language, with a voice that
speaks it, subtitles that follow it in the right script, and fonts that have its glyphs (about 10 s a language)."""
import json, re, subprocess
import pytest
from conftest import clean_env, ytempire

TOPICS = {"en": "How coffee roasting works", "es": "Cómo se tuesta el café", "fr": "Comment torréfier le café",
          "de": "Wie Kaffeerösten funktioniert", "pt": "Como funciona a torra do café", "hi": "कॉफ़ी कैसे भूनी जाती है",
          "ja": "コーヒー焙煎の仕組み"}
SCRIPT_CHARS = {"hi": r"[\u0900-\u097f]", "ja": r"[\u3040-\u30ff\u4e00-\u9fff]"}
FONTS = {"hi": "Noto Sans Devanagari", "ja": "Noto Sans CJK JP"}
DURATION = 10


def stream_durations(path) -> dict:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration:format=duration", "-of", "json",
                        str(path)], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    out = {s["codec_type"]: float(s["duration"]) for s in info["streams"] if "duration" in s}
    return out | {"format": float(info["format"]["duration"])}


@pytest.mark.parametrize("lang", list(TOPICS))
def test_make_in_language(tmp_path, lang):
    import pysubs2
    from ytempire.pipeline import load_run
    from ytempire.languages import count_units, join_sentences
    out = tmp_path / "run"
    r = ytempire("make", TOPICS[lang], "--language", lang, "--duration", DURATION, "--out", out, "--no-progress",
                 cwd=tmp_path, env=clean_env(YTEMPIRE_TRACKING_ENABLED="false"), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    _, parts = load_run(out)
    # 1. the script is in the language, and so is the narration the voice read
    assert parts.script.language == lang
    words = parts.narration.words
    assert words and parts.narration.provider == ("piper" if lang == "en" else "espeak-ng")
    # 2. subtitles: non-empty, in the language's script, the narration's words in order, times that follow it
    subs = pysubs2.load(str(out / "subtitles.srt"))
    text = [e.plaintext.replace("\n", " " if lang != "ja" else "") for e in subs]
    assert subs and all(t.strip() for t in text)
    if lang in SCRIPT_CHARS:
        assert len(re.findall(SCRIPT_CHARS[lang], "".join(text))) > 20, text[:3]
        assert FONTS[lang] in (out / "subtitles.ass").read_text(encoding="utf-8")
    else:
        assert re.search(r"[A-Za-z]{3}", " ".join(text))
    assert join_sentences(text, lang).split() == join_sentences([w.text for w in words], lang).split()
    assert all(a.end <= b.start for a, b in zip(subs, subs[1:]))
    assert subs[0].start / 1000 <= words[0].start + 0.05 and subs[-1].end / 1000 >= words[-1].end - 0.05
    # 3. the voice really speaks the text (a Japanese kanji read as "Chinese letter" takes about a second)
    speech = sum(b - a for a, b in parts.narration.scene_spans)
    assert speech / count_units(parts.script.narration, lang) < (0.3 if lang == "ja" else 0.8)
    # 4. the video: audio as long as the picture, as long as the record says, and a miss of the asked duration is reported
    d = stream_durations(out / "video.mp4")
    assert abs(d["audio"] - d["video"]) < 0.5, d
    assert abs(d["format"] - parts.video.duration) < 0.25 and DURATION * 0.6 <= d["format"] <= DURATION * 3, d
    missed = abs(parts.video.duration - DURATION) > max(0.1 * DURATION, 1.5)
    warnings = json.loads((out / "run.json").read_text())["warnings"]
    assert missed == any(w.startswith("the video runs") for w in warnings), (parts.video.duration, warnings)

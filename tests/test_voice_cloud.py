"""Cloud voices over the unmodified elevenlabs, google-cloud-texttospeech and openai SDKs, pointed at a loopback server
that speaks their wire formats (tests/mockvoice.py): timings from each API, 429 + Retry-After, 500, malformed bodies,
unknown voice ids, quotas and budgets that stop a request before it leaves, cloning with bad samples, and a run that
falls back ElevenLabs -> Google -> offline and says so in run.json. The SDKs are never patched."""
import json, time
import numpy as np
import pytest
import soundfile as sf
from conftest import clean_env, ytempire
from mockvoice import MockVoice
from ytempire.config import Settings, InputError
from ytempire.ledger import Ledger, Guard, Metrics
from ytempire.schemas import Brief, CostRecord, Script, Scene
from ytempire.voice import synthesizer_for, narrate, PiperSynthesizer
from ytempire.voice_cloud import ElevenLabsSynthesizer, GoogleSynthesizer, OpenAISynthesizer, ssml_billed_chars, clone_voice

LINE = "Coffee starts green. At two hundred degrees, the beans crack, and the flavour appears!"
EL_KEY, OA_KEY = "el-secret-key-0123456789", "not-a-real-key-openai-0002"


def settings(m, tmp_path, env=None, **over):
    o = {"voice.elevenlabs_base_url": m.url, "voice.google_endpoint": m.url, "voice.openai_base_url": m.openai_base,
         "paths.ledger": str(tmp_path / "ledger.db"), "retry.attempts": 3, "retry.max_seconds": 20, "voice.timeout": 10,
         "voice.clones_dir": str(tmp_path / "voices"), "paths.cache": str(tmp_path / "cache")}     # no voice list cached by another test
    o.update({k.replace("__", "."): v for k, v in over.items()})
    e = {"ELEVENLABS_API_KEY": EL_KEY, "OPENAI_API_KEY": OA_KEY, "GOOGLE_APPLICATION_CREDENTIALS": str(m.google_credentials(tmp_path))}
    e.update(env or {})
    return Settings(env=e, overrides=o)


def ledger(st):
    return Ledger(st.get("paths", "ledger"))


def starts_match(words, truth, tol=0.01, median_tol=None):
    "The words are the server's, each starting within `tol` s of where the server spoke it (and the median within `median_tol`)."
    assert [w.text for w in words] == [w for w, _, _ in truth]
    errs = [abs(w.start - a) for w, (_, a, _) in zip(words, truth)]
    assert max(errs) < tol, errs
    if median_tol is not None: assert float(np.median(errs)) <= median_tol, errs


# -- ElevenLabs
def test_elevenlabs_timings_billing_and_key(tmp_path, caplog):
    with MockVoice() as m:
        st = settings(m, tmp_path); led = ledger(st)
        sp = ElevenLabsSynthesizer(st, "en", ledger=led, run_id="t").speak(LINE, speed=1.1, style="excited")
    starts_match(sp.words, m.spoken[-1]["words"])
    assert sp.sample_rate == 24000 and abs(len(sp.audio) / 24000 - m.spoken[-1]["seconds"]) < 1e-3
    req = next(r for r in m.requests if "with-timestamps" in r["path"])
    assert req["headers"]["xi-api-key"] == EL_KEY and "output_format=pcm_24000" in req["path"]
    vs = req["json"]["voice_settings"]
    assert (vs["stability"], vs["style"], vs["speed"]) == (0.3, 0.6, 1.1)
    row = led.calls().iloc[-1]
    assert (row.provider, row.model, row.units, row.unit, row.outcome) == ("elevenlabs", "eleven_multilingual_v2", len(LINE), "characters", "ok")
    assert row.cost_usd == pytest.approx(len(LINE) * 300 / 1e6)
    assert EL_KEY not in json.dumps(led.calls().astype(str).to_dict("records")) and EL_KEY not in caplog.text


@pytest.mark.parametrize("fmt, rate", [("mp3_44100_128", 44100), ("wav_22050", 22050)])
def test_elevenlabs_mp3_and_wav_decode(tmp_path, fmt, rate):
    with MockVoice() as m:
        sp = ElevenLabsSynthesizer(settings(m, tmp_path, voice__elevenlabs_format=fmt), "en").speak(LINE)
    assert sp.sample_rate == rate and sp.audio.dtype == np.float32 and np.abs(sp.audio).max() > 0.05
    assert abs(len(sp.audio) / rate - m.spoken[-1]["seconds"]) < 0.06        # an mp3 frame of padding at most
    starts_match(sp.words, m.spoken[-1]["words"])


def test_elevenlabs_long_text_in_chunks_with_context(tmp_path):
    text = " ".join([LINE] * 6)
    with MockVoice() as m:
        sp = ElevenLabsSynthesizer(settings(m, tmp_path, voice__elevenlabs_max_chars=200), "en").speak(text)
    bodies = [s["body"] for s in m.spoken]
    assert len(bodies) == 3 and all(len(b["text"]) <= 200 for b in bodies)
    assert "previous_text" not in bodies[0] and bodies[1]["previous_text"] == bodies[0]["text"] and bodies[1]["next_text"] == bodies[2]["text"]
    assert [w.text for w in sp.words] == text.split()
    offset = m.spoken[0]["seconds"] + m.spoken[1]["seconds"]          # third chunk's words follow two chunks of audio
    first_of_third = len(bodies[0]["text"].split()) + len(bodies[1]["text"].split())
    assert sp.words[first_of_third].start == pytest.approx(offset + m.spoken[2]["words"][0][1], abs=0.01)


def test_elevenlabs_429_retry_after_then_ok(tmp_path):
    with MockVoice(elevenlabs=[("429", 1)]) as m:
        st = settings(m, tmp_path); led = ledger(st)
        t0 = time.monotonic()
        ElevenLabsSynthesizer(st, "en", ledger=led).speak(LINE)
        took = time.monotonic() - t0
    assert m.tts_count("elevenlabs") == 2 and took >= 0.95
    assert list(led.calls().outcome) == ["rate_limited", "ok"] and led.calls().units.tolist() == [0, len(LINE)]


@pytest.mark.parametrize("action, outcome", [(("500",), "server_error"), (("malformed",), "malformed"),
                                             (("quota_exceeded",), "error")])
def test_elevenlabs_failures_fall_back_to_offline(tmp_path, action, outcome):
    with MockVoice(default=action) as m:
        st = settings(m, tmp_path, voice__providers="elevenlabs, offline"); led = ledger(st)
        chain = synthesizer_for(Brief(topic="x"), st, ledger=led, run_id="t")
        sp = chain.speak(LINE)
    attempts = 1 if outcome == "error" else 3                          # a 401 quota_exceeded is not retried
    assert m.tts_count("elevenlabs") == attempts
    assert chain.name == "piper" and sp.sample_rate == 22050 and len(sp.words) == len(LINE.split())
    assert [(f.failed, f.served_by) for f in chain.fallbacks] == [("elevenlabs", "piper")]
    assert chain.fallbacks[0].reason.startswith(outcome)
    calls = led.calls()
    assert list(calls.outcome) == [outcome] * attempts + ["ok"] and calls.provider.iloc[-1] == "piper"


@pytest.mark.parametrize("action", [("voice_not_found",), ("invalid_voice",)])
def test_elevenlabs_unknown_voice_is_a_one_line_error(tmp_path, action):
    with MockVoice(elevenlabs=[action]) as m:
        st = settings(m, tmp_path, voice__providers="elevenlabs, offline")
        chain = synthesizer_for(Brief(topic="x", voice="no-such-voice"), st)
        with pytest.raises(InputError) as e: chain.speak(LINE)
    msg = str(e.value)
    assert "\n" not in msg and "no voice 'no-such-voice'" in msg and "[voice] elevenlabs_voice" in msg
    assert m.tts_count("elevenlabs") == 1 and "/v1/text-to-speech/no-such-voice/" in m.requests[-1]["path"]


def test_quota_exhausted_sends_nothing(tmp_path):
    with MockVoice() as m:
        st = settings(m, tmp_path, voice__providers="elevenlabs, google, offline", voice__google_voice="en-US-Neural2-F")
        led = ledger(st)
        led.record(CostRecord(provider="elevenlabs", model="eleven_multilingual_v2", capability="voice", units=99_990, unit="characters"), "earlier")
        led.record(CostRecord(provider="google_tts", model="neural2", capability="voice", units=999_999, unit="characters"), "earlier")
        chain = synthesizer_for(Brief(topic="x"), st, ledger=led, run_id="t", guard=Guard(led, st, "t", metrics=Metrics()))
        chain.speak(LINE)
    assert m.tts_count("elevenlabs") == 0 and m.tts_count("google") == 0     # refused before sending
    assert [(f.failed, f.reason.split(":")[0]) for f in chain.fallbacks] == [("elevenlabs", "quota"), ("google", "quota")]
    assert "raise [quotas] elevenlabs" in chain.fallbacks[0].reason
    assert list(led.calls(run_id="t").outcome) == ["quota", "quota", "ok"]


def test_budget_refuses_before_sending(tmp_path):
    with MockVoice() as m:
        st = settings(m, tmp_path, run__budget=0.001); led = ledger(st)
        with pytest.raises(Exception, match="run budget"):
            ElevenLabsSynthesizer(st, "en", ledger=led, run_id="t").speak(LINE * 3)       # 264 chars at $300/1M > $0.001
    assert m.tts_count("elevenlabs") == 0 and list(led.calls().outcome) == ["budget"]


def test_elevenlabs_voice_list(tmp_path):
    with MockVoice() as m:
        rows = ElevenLabsSynthesizer.list_voices(settings(m, tmp_path))
    assert rows[0] == {"id": "21m00Tcm4TlvDq8ikWAM", "provider": "elevenlabs", "name": "Rachel", "language": "en",
                       "gender": "female", "accent": "en-US", "age": "young", "styles": ["calm", "narration"]}
    assert [(r["id"], r["language"], r["accent"]) for r in rows[1:]] == [("JBFqnCBsd6RMkjVDRZzb", "en", "en-GB"),
                                                                         ("JBFqnCBsd6RMkjVDRZzb", "es", "es-ES")]


# -- Google
def test_google_marks_timings_billing(tmp_path):
    with MockVoice() as m:
        st = settings(m, tmp_path); led = ledger(st)
        g = GoogleSynthesizer(st, "en", ledger=led, run_id="t")
        sp = g.speak(LINE, style="warm")
    starts_match(sp.words, m.spoken[-1]["words"])
    body = m.spoken[-1]["body"]
    assert g.voice == "en-US-Neural2-F" and body["voice"] == {"languageCode": "en-US", "name": "en-US-Neural2-F"}
    assert body["enableTimePointing"] in (["SSML_MARK"], [1]) and body["input"]["ssml"].count("<mark ") == len(LINE.split())
    tts = next(r for r in m.requests if r["path"].startswith("/v1beta1/text:synthesize"))
    assert tts["headers"]["authorization"].startswith("Bearer ey")          # a JWT signed with the credentials file's key
    row = led.calls().iloc[-1]
    assert (row.provider, row.model, row.units) == ("google_tts", "neural2", ssml_billed_chars(body["input"]["ssml"]))
    assert row.cost_usd == pytest.approx(row.units * 16 / 1e6)


def test_google_voice_setting_and_region(tmp_path):
    with MockVoice() as m:
        g = GoogleSynthesizer(settings(m, tmp_path, voice__google_voice="en-GB-Neural2-B"), "en")
        g.speak("Tea or coffee?")
    assert m.spoken[-1]["body"]["voice"] == {"languageCode": "en-GB", "name": "en-GB-Neural2-B"}
    assert not any("/voices" in r["path"] for r in m.requests)          # a named voice needs no list request


@pytest.mark.parametrize("action, outcome", [(("429", 1), "rate_limited"), (("500",), "server_error"), (("malformed",), "malformed")])
def test_google_failures(tmp_path, action, outcome):
    with MockVoice(google=[action]) as m:
        st = settings(m, tmp_path, voice__google_voice="en-US-Neural2-F"); led = ledger(st)
        t0 = time.monotonic()
        GoogleSynthesizer(st, "en", ledger=led).speak(LINE)
        took = time.monotonic() - t0
    assert list(led.calls().outcome) == [outcome, "ok"] and m.tts_count("google") == 2
    if outcome == "rate_limited": assert took >= 0.95


def test_google_voice_without_marks_is_aligned(tmp_path):
    pytest.importorskip("ytempire.align", reason="ytempire.align (helper align's branch) is not merged yet")
    with MockVoice(google=[("no_marks",)]) as m:
        sp = GoogleSynthesizer(settings(m, tmp_path, voice__google_voice="en-US-Neural2-F"), "en").speak(LINE)
    # forced alignment (25_align), not the API's timings. Its accuracy is measured by tests/bench/alignment_bench.py over
    # many words (median <= 50 ms, 95th percentile <= 150 ms); one sentence of another engine's voice, 14 words, is
    # noisier (measured: median 50-54 ms, worst word 0.21-0.32 s, varying with what ran before in the process): this
    # checks the path is wired, with a looser bar
    starts_match(sp.words, m.spoken[-1]["words"], tol=0.5, median_tol=0.08)


def test_google_chirp_voice_gets_plain_text(tmp_path):
    pytest.importorskip("ytempire.align", reason="ytempire.align (helper align's branch) is not merged yet")
    with MockVoice() as m:
        st = settings(m, tmp_path, voice__google_voice="en-US-Chirp3-HD-Charon")
        GoogleSynthesizer(st, "en").speak(LINE)
    assert m.spoken[-1]["body"]["input"] == {"text": LINE}


# -- OpenAI
def test_openai_speech_chunked_with_instructions(tmp_path):
    pytest.importorskip("ytempire.align", reason="ytempire.align (helper align's branch) is not merged yet")
    text = " ".join([LINE] * 3)
    with MockVoice() as m:
        st = settings(m, tmp_path, voice__openai_max_chars=120); led = ledger(st)
        sp = OpenAISynthesizer(st, "en", ledger=led).speak(text, style="calm")
    bodies = [s["body"] for s in m.spoken]
    assert len(bodies) == 3 and all(len(b["input"]) <= 120 for b in bodies)
    assert bodies[0]["model"] == "gpt-4o-mini-tts" and bodies[0]["response_format"] == "pcm" and "calmly" in bodies[0]["instructions"]
    assert [w.text for w in sp.words] == text.split()
    assert led.calls().units.sum() == sum(len(b["input"]) for b in bodies)


def test_openai_429_then_ok(tmp_path):
    pytest.importorskip("ytempire.align", reason="ytempire.align (helper align's branch) is not merged yet")
    with MockVoice(openai=[("429", 1)]) as m:
        st = settings(m, tmp_path); led = ledger(st)
        OpenAISynthesizer(st, "en", ledger=led).speak(LINE)
    assert list(led.calls().outcome) == ["rate_limited", "ok"]
    assert m.requests[0]["headers"]["authorization"] == f"Bearer {OA_KEY}"


@pytest.mark.parametrize("action, outcome, attempts", [(("500",), "server_error", 3), (("malformed",), "malformed", 3)])
def test_openai_failures_fall_back_to_offline(tmp_path, action, outcome, attempts):
    with MockVoice(openai=[action] * 3) as m:
        st = settings(m, tmp_path, voice__providers="openai, offline"); led = ledger(st)
        chain = synthesizer_for(Brief(topic="x"), st, ledger=led, run_id="t")
        chain.speak(LINE)
    assert m.tts_count("openai") == attempts and [(f.failed, f.served_by) for f in chain.fallbacks] == [("openai", "piper")]
    assert list(led.calls().outcome) == [outcome] * attempts + ["ok"]
    assert OA_KEY not in json.dumps(led.calls().astype(str).to_dict("records"))


def test_openai_unknown_voice_is_a_one_line_error(tmp_path):
    bad = ("status", 400, {"error": {"message": "Invalid value: 'robot'. Supported values are: 'alloy', 'coral'.", "type": "invalid_request_error",
                                     "param": "voice", "code": "invalid_value"}})
    with MockVoice(openai=[bad]) as m:
        with pytest.raises(InputError) as e:
            synthesizer_for(Brief(topic="x", voice="robot"), settings(m, tmp_path, voice__providers="openai, offline")).speak(LINE)
    assert "\n" not in str(e.value) and "Invalid value: 'robot'" in str(e.value) and "[voice] openai_model and openai_voice" in str(e.value)
    assert m.requests[0]["json"]["voice"] == "robot"


# -- cloning
def needs_clean_sample():
    import ytempire.audio
    if not hasattr(ytempire.audio, "clean_sample"): pytest.skip("ytempire.audio.clean_sample (helper audiochain's branch) is not merged yet")


def _voice_sample(path, seconds=6.0, sr=24000):
    from ytempire.voice import EspeakSynthesizer
    sp = EspeakSynthesizer(Settings(env={}), "en").speak("This is my own voice, recorded for a clone. " * 4)
    audio = sp.audio[: int(seconds * sp.sample_rate)]
    sf.write(path, audio, sp.sample_rate)
    return path


def test_cloning_records_consent_beside_the_voice(tmp_path):
    needs_clean_sample()
    with MockVoice() as m:
        st = settings(m, tmp_path)
        rec = clone_voice(st, "Ana", [_voice_sample(tmp_path / "ana.wav")], "I, Ana Ruiz, agree to have my voice cloned for this channel.",
                          ledger=ledger(st), run_id="t")
    saved = json.loads((tmp_path / "voices" / f"{rec['voice_id']}.json").read_text())
    assert saved["consent"].startswith("I, Ana Ruiz") and saved["samples"][0]["file"] == "ana.wav" and len(saved["samples"][0]["sha256"]) == 64
    assert m.clones[0]["fields"]["name"] == "Ana" and m.clones[0]["files"][0][1] > 1000
    assert ledger(st).calls().model.tolist() == ["ivc"]


@pytest.mark.parametrize("kind", ["corrupt", "silent"])
def test_cloning_bad_sample_is_a_one_line_error(tmp_path, kind):
    needs_clean_sample()
    bad = tmp_path / "bad.wav"
    if kind == "corrupt": bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 20)
    else: sf.write(bad, np.zeros(24000 * 6, np.float32), 24000)
    with MockVoice() as m:
        with pytest.raises(InputError) as e:
            clone_voice(settings(m, tmp_path), "Ana", [bad], "I, Ana Ruiz, agree to have my voice cloned for this channel.")
    assert "\n" not in str(e.value) and "bad.wav" in str(e.value)
    assert m.count("/v1/voices/add") == 0                                       # nothing was sent


def test_cloning_needs_consent(tmp_path):
    with MockVoice() as m:
        with pytest.raises(InputError, match="consent statement is required"):
            clone_voice(settings(m, tmp_path), "Ana", [tmp_path / "x.wav"], "ok")
    assert m.count() == 0


# -- the chain in the voice stage and in a run
def _script(n=3):
    scenes = [Scene(kind="point", narration=f"Scene {i + 1}. {LINE}", on_screen=f"Scene {i + 1}", visual="coffee") for i in range(n)]
    return Script(title="Coffee", hook=scenes[0].narration, scenes=scenes, cta="Subscribe.", description="d", provider="test")


def test_voice_stage_falls_back_elevenlabs_google_offline(tmp_path):
    with MockVoice(default=("500",), google=[("ok",)]) as m:
        m.set_default("google", ("429", 30))                # a Retry-After longer than [retry] max_wait: falls back at once
        st = settings(m, tmp_path, voice__providers="elevenlabs, google, offline", voice__google_voice="en-US-Neural2-F")
        led = ledger(st)
        nar = narrate(_script(), Brief(topic="coffee", duration=20), st, tmp_path / "out", ledger=led, run_id="t")
    # google spoke the first scene, then failed: that scene was spoken again offline, so the narration is one voice
    assert [(f.failed, f.served_by) for f in nar.fallbacks] == [("elevenlabs", "piper"), ("google", "piper")]
    assert (nar.provider, nar.voice, nar.sample_rate) == ("piper", "en_US-joe-medium", 22050)
    assert m.tts_count("google") == 2 and len(nar.words) == sum(len(s.narration.split()) for s in _script().scenes)
    calls = led.calls(run_id="t")
    assert calls.provider.tolist()[:5] == ["elevenlabs"] * 3 + ["google_tts"] * 2
    assert calls.outcome.tolist()[:5] == ["server_error"] * 3 + ["ok", "rate_limited"]
    assert set(calls.provider.tolist()[5:]) == {"piper"}


@pytest.mark.parametrize("duration", [14, 24])
def test_paid_narration_bills_the_script_once(tmp_path, duration):
    """A paid voice speaks each scene once: the duration is fitted by a local time-stretch and the pauses, so the ledger
    bills exactly the script's characters, whether the speech runs long (14 s asked) or short (24 s asked)."""
    script = _script()
    with MockVoice() as m:
        st = settings(m, tmp_path, voice__providers="elevenlabs")
        led = ledger(st)
        nar = narrate(script, Brief(topic="coffee", duration=duration), st, tmp_path / "out", ledger=led, run_id="t")
        assert m.tts_count("elevenlabs") == len(script.scenes)
    calls = led.calls(run_id="t")
    assert calls.provider.unique().tolist() == ["elevenlabs"] and calls.units.sum() == sum(len(s.narration) for s in script.scenes)
    spoken = sum(sp["seconds"] for sp in m.spoken)                  # what the server said, at its own pace
    speech = sum(b - a for a, b in nar.scene_spans)                 # what the narration holds after the stretch
    target = duration - 0.4 - 1.2 - 0.35 * 2                         # [voice] lead_in, tail, two scene pauses
    factor = min(max(spoken / target, 0.85), 1.15)
    assert abs(factor - 1) > 0.05 and speech == pytest.approx(spoken / factor, abs=0.02), (spoken, speech, factor)
    assert all(a - 0.01 <= w.start <= w.end <= b + 0.01 for (a, b) in nar.scene_spans[:1] for w in nar.words[:len(script.scenes[0].narration.split())])


def test_offline_default_is_unchanged(tmp_path):
    st = Settings(env={"ELEVENLABS_API_KEY": EL_KEY})          # a key alone does not enable a provider
    assert isinstance(synthesizer_for(Brief(topic="x"), st), PiperSynthesizer)
    assert isinstance(synthesizer_for(Brief(topic="x", providers={"voice": ["local"]}), st), PiperSynthesizer)


def test_make_falls_back_and_says_so_in_run_json(tmp_path):
    with MockVoice(default=("500",), max_seconds=900) as m:
        m.set_default("google", ("429", 30))
        env = clean_env(ELEVENLABS_API_KEY=EL_KEY, GOOGLE_APPLICATION_CREDENTIALS=m.google_credentials(tmp_path),
                        YTEMPIRE_VOICE_PROVIDERS="elevenlabs, google, offline", YTEMPIRE_VOICE_ELEVENLABS_BASE_URL=m.url,
                        YTEMPIRE_VOICE_GOOGLE_ENDPOINT=m.url, YTEMPIRE_VOICE_GOOGLE_VOICE="en-US-Neural2-F",
                        YTEMPIRE_RETRY_ATTEMPTS="2", YTEMPIRE_TRACKING_ENABLED="false", YTEMPIRE_PATHS_CACHE=tmp_path / "cache")
        r = ytempire("make", "How coffee roasting works", "--duration", "15", "--out", tmp_path / "run", "--no-progress",
                     cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    voice_fb = [(f["failed"], f["served_by"]) for f in rec["fallbacks"] if f["capability"] == "voice"]
    assert voice_fb == [("elevenlabs", "piper"), ("google", "piper")]
    assert rec["providers"]["voice"].startswith("piper:")
    assert m.tts_count("elevenlabs") == 2 and m.tts_count("google") == 1
    outcomes = [(c["provider"], c["outcome"]) for c in rec["costs"] if c["capability"] == "voice"]
    assert outcomes[:3] == [("elevenlabs", "server_error"), ("elevenlabs", "server_error"), ("google_tts", "rate_limited")]
    for f in ("run.json", "run.log", "report.html"):
        assert EL_KEY not in (tmp_path / "run" / f).read_text(errors="replace"), f

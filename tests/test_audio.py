"""The audio chain (21_audio): voice samples cleaned for cloning, the narration chain, the music library and the master."""
import json
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from scipy import signal
from ytempire.config import ConfigError, InputError, Settings
from ytempire.schemas import AudioMix, Brief, Narration, RunRecord, Word
from ytempire import audio

SR = 48000


@pytest.fixture(scope="module")
def st():
    return Settings(env={})


def speechlike(seconds: float = 8.0, sr: int = 22050, seed: int = 0) -> tuple[np.ndarray, list[Word]]:
    "A narration stand-in: 0.4 s syllables (a 130 Hz buzz through formants, with a hissy 's' at the end of some) and pauses."
    rng = np.random.default_rng(seed)
    x, words, t = np.zeros(int(seconds * sr), np.float32), [], 0.3
    while t + 0.5 < seconds - 0.3:
        n = int(0.4 * sr); tt = np.arange(n) / sr
        buzz = signal.sawtooth(2 * np.pi * 130 * tt)
        for f0 in (600, 1400, 2600):
            b, a = signal.iirpeak(f0, 4, fs=sr); buzz = buzz + 2 * signal.lfilter(b, a, buzz)
        syl = 0.25 * buzz / np.abs(buzz).max() * np.sin(np.pi * tt / 0.4)
        if len(words) % 3 == 0:                                              # a sibilant
            s = signal.sosfilt(signal.butter(4, (5500, 8500), "bandpass", fs=sr, output="sos"), rng.standard_normal(n // 3))
            syl[-len(s):] += 0.5 * s / np.abs(s).max()
        i = int(t * sr); x[i:i + n] += syl
        words.append(Word(text=f"w{len(words)}", start=round(t, 3), end=round(t + 0.4, 3)))
        t += 0.4 + (0.1 if len(words) % 4 else 0.6)
    return x, words


@pytest.fixture(scope="module")
def spoken(tmp_path_factory, st) -> Narration:
    "15 s of the offline voice (Piper) reading the offline writer's script: the stage's real input."
    from ytempire.voice import narrate
    from ytempire.scripts import OfflineTemplateWriter
    from ytempire.schemas import TrendReport
    brief = Brief(topic="How coffee roasting works", duration=15)
    return narrate(OfflineTemplateWriter(st).write(brief, TrendReport()), brief, st, tmp_path_factory.mktemp("voice"))


def noisy_vowel(sr=SR, seconds=2.0, pause=1.5, noise_db=-45.0):
    t = np.arange(int(seconds * sr)) / sr
    buzz = signal.sawtooth(2 * np.pi * 140 * t)
    voice = np.concatenate([np.zeros(int(pause * sr)), 0.3 * buzz, np.zeros(int(pause * sr))])
    hiss = np.random.default_rng(0).standard_normal((len(voice), 2)) * 10 ** (noise_db / 20)
    return (voice[:, None] + hiss).astype(np.float32)


# --- clean_sample -------------------------------------------------------------------------------------------------

def test_clean_sample_mono_trimmed_denoised_normalised(tmp_path, st):
    x = noisy_vowel()
    audio.write_wav(tmp_path / "in.wav", x, SR, "FLOAT")
    audio.run_ffmpeg(["-y", "-i", str(tmp_path / "in.wav"), "-c:a", "aac", "-b:a", "192k", str(tmp_path / "in.m4a")], st, "a test file")
    out = audio.clean_sample(tmp_path / "in.m4a", tmp_path / "out.wav", settings=st)      # AAC: decoded by ffmpeg
    y, sr = sf.read(out)
    assert sr == 44100 and y.ndim == 1 and sf.info(str(out)).subtype == "PCM_16"
    assert abs(len(y) / sr - 2.3) < 0.15                                         # 2 s of sound + 0.15 s either side
    assert abs(20 * np.log10(np.abs(y).max()) + 1.0) < 0.1
    hiss_before = audio.frame_levels(x[:SR, 0], SR).mean() - 20 * np.log10(0.3)
    hiss_after = audio.frame_levels(y[:int(0.1 * sr)], sr).mean() - 20 * np.log10(np.abs(y[int(0.5 * sr):int(1.5 * sr)]).max())
    assert hiss_after < hiss_before - 10, (hiss_before, hiss_after)              # hiss relative to the voice's peak


@pytest.mark.parametrize("name, make, problem", [
    ("silent.wav", lambda p: audio.write_wav(p, np.zeros(3 * SR, np.float32), SR), "is silent"),
    ("short.wav", lambda p: audio.write_wav(p, noisy_vowel(seconds=0.3, pause=0.05), SR), "under 1 s"),
    ("empty.wav", lambda p: audio.write_wav(p, np.zeros((0, 1), np.float32), SR), "0.0 s long"),
    ("corrupt.wav", lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 20), "cannot be decoded"),
    ("zero.mp3", lambda p: p.write_bytes(b""), "cannot be decoded"),
])
def test_clean_sample_refuses_bad_samples_in_one_line(tmp_path, st, name, make, problem):
    make(tmp_path / name)
    with pytest.raises(InputError) as e:
        audio.clean_sample(tmp_path / name, tmp_path / "out.wav", settings=st)
    assert problem in str(e.value) and "\n" not in str(e.value) and name in str(e.value)
    assert not (tmp_path / "out.wav").exists()


def test_corrupt_sample_error_is_the_only_line_on_stderr(tmp_path):
    import subprocess, sys
    (tmp_path / "bad.mp3").write_bytes(b"\xff\xfb" + bytes(range(256)) * 40)
    code = ("from pathlib import Path; from ytempire.audio import clean_sample; from ytempire.config import YtempireError\n"
            "try: clean_sample(Path('bad.mp3'), Path('out.wav'))\nexcept YtempireError as e: raise SystemExit(f'error: {e}')")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot be decoded" in r.stderr, r.stderr


def test_clean_sample_missing_file(tmp_path, st):
    with pytest.raises(InputError, match="does not exist"):
        audio.clean_sample(tmp_path / "nope.wav", tmp_path / "out.wav", settings=st)


# --- the narration chain ------------------------------------------------------------------------------------------

def test_voice_chain_evens_the_level_and_tames_sibilance(st):
    x, _ = speechlike()
    x = audio.to_loudness(audio.resample(x, 22050, SR), SR, audio.VOICE_LUFS)
    y = audio.to_loudness(audio.process_voice(x, SR, st), SR, audio.VOICE_LUFS)
    assert len(y) == len(x)
    assert audio.level_spread_db(y, SR) < audio.level_spread_db(x, SR)
    no_deess = audio.to_loudness(audio.de_ess(y, SR, threshold_db=0.0), SR, audio.VOICE_LUFS)    # idle: the same signal
    assert np.allclose(no_deess[SR // 10:-SR // 10], y[SR // 10:-SR // 10], atol=1e-4)
    hot = audio.to_loudness(audio.de_ess(y, SR, threshold_db=-60.0), SR, audio.VOICE_LUFS)
    assert audio.sibilance_db(hot, SR) < audio.sibilance_db(y, SR) - 2


def test_de_esser_is_transparent_below_threshold():
    t = np.arange(SR) / SR
    quiet = (0.003 * np.sin(2 * np.pi * 7000 * t) + 0.1 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)   # band under -42 dBFS
    assert np.abs(audio.de_ess(quiet, SR) - quiet)[SR // 10:-SR // 10].max() < 1e-4
    loud = (0.3 * np.sin(2 * np.pi * 7000 * t)).astype(np.float32)
    assert np.abs(audio.de_ess(loud, SR)[SR // 2:-SR // 10]).max() < 0.15


def test_eq_presets_and_room_tone_settings(st):
    flat = Settings(env={}, overrides={"audio.eq": "flat"})
    bright = Settings(env={}, overrides={"audio.eq": "bright"})
    x, _ = speechlike(); x = audio.resample(x, 22050, SR)
    hi = lambda y: audio.sibilance_db(y, SR, band=(7000.0, 12000.0))
    assert hi(audio.process_voice(x, SR, bright)) > hi(audio.process_voice(x, SR, flat)) + 1
    with pytest.raises(ConfigError, match="use one of: voice, warm, bright, flat"):
        audio.process_voice(x, SR, Settings(env={}, overrides={"audio.eq": "loud"}))
    tone = Settings(env={}, overrides={"audio.room_tone": "-50"})
    gaps = lambda y: y[:int(0.25 * SR)]                                           # before the first syllable
    assert np.abs(gaps(audio.process_voice(x, SR, st))).max() < 1e-6
    level = audio.frame_levels(gaps(audio.process_voice(x, SR, tone)), SR).mean()
    assert -75 < level < -65                                                      # -20 LUFS voice, tone 50 dB under
    with pytest.raises(ConfigError, match="room_tone"):
        audio.room_tone_db(Settings(env={}, overrides={"audio.room_tone": "-5"}))


# --- the master ---------------------------------------------------------------------------------------------------

def test_true_peak_sees_peaks_between_samples(tmp_path, st):
    t = np.arange(SR * 3)
    audio.write_wav(tmp_path / "q.wav", np.sin(np.pi / 2 * t + np.pi / 4), SR, "FLOAT")
    assert audio.measure(tmp_path / "q.wav")[1] == pytest.approx(-3.01, abs=0.05)
    assert audio.true_peak(tmp_path / "q.wav", st) == pytest.approx(0.0, abs=0.7)   # ebur128 reads up to 0.6 dB high at 12 kHz
    audio.write_wav(tmp_path / "k.wav", 0.5 * np.sin(2 * np.pi * 997 * t / SR), SR, "FLOAT")
    assert audio.true_peak(tmp_path / "k.wav", st) == pytest.approx(-6.02, abs=0.05)


def test_master_hits_loudness_and_true_peak(tmp_path, st):
    t = np.arange(SR * 6)
    x = 0.5 * np.sin(np.pi / 2 * t + np.pi / 4) * (1 + (t // 12000) % 2)
    x = x + np.random.default_rng(1).standard_normal(len(t)) * 0.3 * ((t // 4800) % 5 == 0)
    audio.write_wav(tmp_path / "raw.wav", np.stack([x, x], 1).astype(np.float32), SR, "FLOAT")
    lufs, tp = audio.master(tmp_path / "raw.wav", tmp_path / "m.wav", st)
    assert abs(lufs - st.getfloat("audio", "target_lufs")) <= 1.0 and tp <= st.getfloat("audio", "true_peak_db") <= -1.0
    assert (lufs, tp) == (audio.measure(tmp_path / "m.wav")[0], audio.true_peak(tmp_path / "m.wav", st))


def test_ducking_depth_measures_what_was_done(tmp_path):
    nar = Narration(audio=tmp_path / "n.wav", sample_rate=SR, duration=4.0, scene_spans=[(0.0, 4.0)], voice="t",
                    provider="t", characters=1, words=[Word(text="a", start=1.0, end=2.0), Word(text="b", start=2.5, end=3.0)])
    bed = (0.1 * np.random.default_rng(0).standard_normal((4 * SR, 2))).astype(np.float32)
    ducked = bed.copy(); ducked[SR:2 * SR] *= 10 ** (-12 / 20); ducked[int(2.5 * SR):3 * SR] *= 10 ** (-12 / 20)
    audio.write_wav(tmp_path / "a.wav", bed, SR, "FLOAT"); audio.write_wav(tmp_path / "b.wav", ducked, SR, "FLOAT")
    assert audio.ducking_depth(tmp_path / "a.wav", tmp_path / "b.wav", nar) == pytest.approx(12.0, abs=0.05)
    ducked[SR:int(1.5 * SR)] = bed[SR:int(1.5 * SR)]                             # half of one word not ducked at all
    audio.write_wav(tmp_path / "b.wav", ducked, SR, "FLOAT")
    assert audio.ducking_depth(tmp_path / "a.wav", tmp_path / "b.wav", nar) < 6


# --- the music library --------------------------------------------------------------------------------------------

HEADER = "file,mood,bpm,licence,attribution\n"


def make_library(d: Path, st, rows: str) -> Path:
    "A library of tracks generated here: a FluidSynth bed at 100 bpm (calm), and a click track at 120 bpm (upbeat)."
    d.mkdir(exist_ok=True)
    audio.render_bed(audio.compose_bed(9.0, "library", "calm"), d / "calm-render.wav", st)
    a, sr = sf.read(d / "calm-render.wav")
    audio.write_wav(d / "calm.flac", a, sr)                                    # FLAC, read by libsndfile
    beat = SR // 2
    click = np.zeros((8 * beat + SR, 2), np.float32)
    for k in range(8): click[k * beat:k * beat + 200] = 0.8 if k % 4 == 0 else 0.3
    click[-SR:] = 0.05                                                          # its ending: a second of ring
    audio.write_wav(d / "clicks.wav", click, SR)
    (d / audio.MANIFEST).write_text(HEADER + rows)
    return d


@pytest.fixture(scope="module")
def library(tmp_path_factory, st):
    return make_library(tmp_path_factory.mktemp("music"), st,
                        "calm.flac,calm,72,CC0-1.0,\nclicks.wav,upbeat,120,CC-BY-4.0,Clicks by T. Tester\n")


@pytest.mark.parametrize("text, problem", [
    ("file,mood,bpm,attribution\nclicks.wav,upbeat,120,\n", "no column 'licence'"),
    (HEADER.replace("bpm", "tempo"), "no column 'bpm'"),
    (HEADER.strip() + ",key\nclicks.wav,upbeat,120,CC0,,C\n", "unknown column 'key'"),
    (HEADER, "lists no tracks"),
    (HEADER + "missing.wav,upbeat,120,CC0,\n", "line 2 names 'missing.wav'"),
    (HEADER + "clicks.wav,upbeat,0,CC0,\n", "line 2: bpm"),
    (HEADER + "clicks.wav,upbeat,120,,\n", "line 2: licence"),
    (HEADER + "clicks.wav,upbeat,120,CC0,\nnotes.txt,calm,80,CC0,\n", "notes.txt cannot be decoded"),
])
def test_broken_manifest_is_one_line(tmp_path, st, library, text, problem):
    for f in ("clicks.wav", "calm.flac"): (tmp_path / f).write_bytes((library / f).read_bytes())
    (tmp_path / "notes.txt").write_text("not music")
    (tmp_path / audio.MANIFEST).write_text(text)
    with pytest.raises(InputError) as e: audio.load_library(tmp_path, st)
    assert problem in str(e.value) and "\n" not in str(e.value)


def test_missing_library_folder(tmp_path, st):
    with pytest.raises(ConfigError, match="is not a folder"): audio.load_library(tmp_path / "none", st)
    with pytest.raises(InputError, match="has no music.csv"): audio.load_library(tmp_path, st)


def test_selection_by_mood_and_length(library, st):
    tracks = audio.load_library(library, st)
    assert [(t.file, t.mood, t.bpm) for t in tracks] == [("calm.flac", "calm", 72.0), ("clicks.wav", "upbeat", 120.0)]
    assert audio.select_track(tracks, "upbeat", 30)[0].file == "clicks.wav"
    track, why = audio.select_track(tracks, "tense", 8)            # no tense track: the nearest in length that fits
    assert track.file == "calm.flac" and "no track has mood 'tense'" in why
    assert audio.template_mood("review", st) == "upbeat" and audio.template_mood("anything", st) == "warm"


def test_loops_keep_the_bar_grid(library, st):
    x, sr = sf.read(library / "clicks.wav", always_2d=True)
    y, loops, cut = audio.fit_to_length(x.astype(np.float32), sr, 2.0, 13.0, fade_in=0, fade_out=0)
    assert len(y) == 13 * sr and loops == 2
    onsets = np.flatnonzero((y[1:, 0] > 0.5) & (y[:-1, 0] <= 0.5)) + 1
    assert np.allclose(np.diff(onsets), 2 * sr, atol=0.002 * sr)   # downbeats 2 s (a bar at 120 bpm) apart through joins
    assert np.allclose(y[-sr:], 0.05, atol=1e-3)                             # the track's own ending ends the bed


# --- the stage ----------------------------------------------------------------------------------------------------

def check_mix(mix: AudioMix, nar: Narration, st):
    assert abs(mix.lufs - st.getfloat("audio", "target_lufs")) <= 1.0
    assert mix.true_peak_db <= st.getfloat("audio", "true_peak_db") <= -1.0
    assert mix.ducking_db >= 10
    assert abs(mix.duration - nar.duration) < 0.05
    assert mix.true_peak_db == audio.true_peak(mix.path, st)
    ref, sr = sf.read(mix.path.parent / "music_ref.wav"); duck, _ = sf.read(mix.path.parent / "music_ducked.wav")
    spans = [(int(w.start * sr), int(w.end * sr)) for w in nar.words if w.end - w.start > 0.05]
    per_word = [10 * np.log10(np.mean(ref[i:j] ** 2) / np.mean(duck[i:j] ** 2)) for i, j in spans if np.mean(ref[i:j] ** 2) > 1e-9]
    assert len(per_word) > 10 and min(per_word) >= 10                  # every word with music under it, not just on average
    lr, ld = (audio.frame_levels(x.mean(1), sr, 0.01) for x in (ref, duck))
    loud = (lr > -70)[1:] & (lr > -70)[:-1]
    assert np.abs(np.diff(ld - lr))[loud].max() < 1.0                 # smooth: under 1 dB per 10 ms


def test_master_audio_with_a_user_library(tmp_path, st, library, spoken):
    nar = spoken
    s = Settings(env={}, overrides={"audio.music_dir": str(library)})
    mix = audio.master_audio(nar, Brief(topic="Gadgets", template="review", duration=15), s, tmp_path / "out")
    check_mix(mix, nar, s)
    p = mix.music_pick
    assert (p.track, p.mood, p.bpm, p.licence, p.attribution) == ("clicks.wav", "upbeat", 120.0, "CC-BY-4.0", "Clicks by T. Tester")
    assert p.loops >= 2 and "template 'review'" in p.reason and "looped by whole bars" in p.reason
    again = AudioMix.model_validate_json(mix.model_dump_json())
    assert again.music_pick == p


def test_master_audio_built_in_bed_by_template(tmp_path, st, spoken):
    nar = spoken
    mix = audio.master_audio(nar, Brief(topic="A heist", template="story", duration=10), st, tmp_path / "out")
    check_mix(mix, nar, st)
    assert (mix.music_pick.track, mix.music_pick.licence) == ("built-in:tense", audio.BUILT_IN_LICENCE)
    assert mix.music_pick.loops == 0 and mix.music_pick.start > 0


def test_music_library_version_follows_the_files(tmp_path, st, library):
    s = Settings(env={}, overrides={"audio.music_dir": str(tmp_path)})
    (tmp_path / audio.MANIFEST).write_text(HEADER)
    v1 = audio.music_library_version(s)
    (tmp_path / audio.MANIFEST).write_text(HEADER + "a.wav,calm,80,CC0,\n")
    assert audio.music_library_version(s) != v1 and audio.music_library_version(st) == "built-in"


def test_demo_run_logs_sound_metrics(made_run, st):
    work, _ = made_run
    run = work / "run"
    rec = RunRecord.model_validate_json((run / "run.json").read_text(), context={"root": str(run)})
    m = rec.metrics
    assert abs(m["audio.lufs"] + 14) <= 1 and m["audio.true_peak_db"] <= -1.0 and m["audio.ducking_db"] >= 10
    assert rec.providers["music"].startswith("built-in:")
    out = json.loads((run / "stages" / "21-audio" / "output.json").read_text())["output"]
    assert out["music_pick"]["licence"] == audio.BUILT_IN_LICENCE
    assert "dBTP" in (run / "report.html").read_text() and "licence:" in (run / "report.html").read_text()


def test_make_with_a_broken_library_stops_before_running(tmp_path):
    from conftest import clean_env, ytempire
    (tmp_path / "music").mkdir()
    (tmp_path / "music" / audio.MANIFEST).write_text(HEADER + "gone.wav,calm,80,CC0-1.0,\n")
    r = ytempire("make", "Coffee", "--duration", "10", "--out", tmp_path / "run", cwd=tmp_path,
                 env=clean_env(YTEMPIRE_AUDIO_MUSIC_DIR=tmp_path / "music"), timeout=120)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "line 2 names 'gone.wav'" in r.stderr and not (tmp_path / "run" / "stages").exists()

"""Forced alignment and the naturalness proxy on real speech (25_align has the small examples; the figures come from
tests/bench/alignment_bench.py and naturalness_bench.py)."""
import socket
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from ytempire.config import Settings, InputError
from ytempire.voice import PiperSynthesizer, EspeakSynthesizer
import ytempire.align as align

ST = Settings(env={})
TEXT = ("Coffee starts as a green seed. Roasting turns it brown, and the flavour we know appears within minutes. "
        "At about 196 degrees the beans crack for the first time.")


def start_errors_ms(words, truth) -> np.ndarray:
    assert [w.text for w in words] == [w.text for w in truth]
    return np.array([abs(w.start - t.start) * 1000 for w, t in zip(words, truth)])


@pytest.fixture(scope="module")
def fast_piper():
    "Piper at 1.25x speed with 0.6 s of silence in front: the aligner's own reference is spoken at 1.0x."
    sp = PiperSynthesizer(ST).speak(TEXT, speed=1.25)
    lead = np.zeros(int(0.6 * sp.sample_rate), np.float32)
    return np.concatenate([lead, sp.audio]), sp.sample_rate, [w.model_copy(update={"start": w.start + 0.6, "end": w.end + 0.6})
                                                              for w in sp.words]


def test_aligns_a_faster_voice(fast_piper):
    audio, sr, truth = fast_piper
    e = start_errors_ms(align.align_words(audio, sr, TEXT, "en", ST), truth)
    assert np.median(e) <= 50 and np.percentile(e, 95) <= 150, e


def test_long_audio_is_aligned_in_pieces(fast_piper, monkeypatch):
    audio, sr, truth = fast_piper
    calls = []
    warp = align.warp_frames
    monkeypatch.setattr(align, "warp_frames", lambda r, t, o=False: calls.append((len(r), len(t))) or warp(r, t, o))
    monkeypatch.setattr(align, "MAX_CELLS", 150_000)          # ~4 s against 4 s: this 8 s paragraph needs pieces
    e = start_errors_ms(align.align_words(audio, sr, TEXT, "en", ST), truth)
    assert len(calls) >= 3 and all(r * t <= 150_000 for r, t in calls[1:]), calls     # a coarse warp, then pieces
    assert np.median(e) <= 50 and np.percentile(e, 95) <= 150, e


def test_aligns_another_language_with_espeak():
    text = "Hola a todos. Hoy vemos tres trucos para un café mejor, y el tercero es el más fácil."
    sp = EspeakSynthesizer(ST, "es").speak(text, speed=0.8)
    e = start_errors_ms(align.align_words(sp.audio, sp.sample_rate, text, "es", ST), sp.words)
    assert np.median(e) <= 50 and np.percentile(e, 95) <= 150, e


def test_text_longer_than_audio(fast_piper):
    audio, sr, truth = fast_piper
    cut = next(w for w in truth if w.text == "brown,").end + 0.05        # the audio stops after "brown,"
    words = align.align_words(audio[:int(cut * sr)], sr, TEXT, "en", ST)
    assert len(words) == len(truth)
    assert all(0 <= w.start <= w.end <= cut + 1e-3 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    said = [i for i, w in enumerate(truth) if w.end <= cut]
    assert np.median(start_errors_ms([words[i] for i in said], [truth[i] for i in said])) <= 50
    assert all(w.start >= cut - 0.3 for w in words[len(said) + 1:])          # the rest is not in the audio: at its end


def test_empty_text_and_silent_audio():
    assert align.align_words(np.zeros(16000, np.float32), 16000, "  ", "en", ST) == []
    with pytest.raises(InputError, match="empty or silent"):
        align.align_words(np.zeros(16000, np.float32), 16000, "Hello there.", "en", ST)


def test_naturalness_is_offline_and_in_range(tmp_path, monkeypatch):
    import speechmos
    assert len(list(Path(speechmos.__file__).parent.rglob("*.onnx"))) >= 2       # the DNSMOS models ship in the package
    def no_network(*a, **k): raise OSError("network used")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    sp = PiperSynthesizer(ST).speak(TEXT)
    sf.write(tmp_path / "n.wav", sp.audio, sp.sample_rate)
    s = align.naturalness(tmp_path / "n.wav")
    assert set(s) == {"p808", "sig", "bak", "ovrl"} and all(1 <= v <= 5 for v in s.values()), s
    noisy = sp.audio + np.random.default_rng(0).normal(0, 0.05, len(sp.audio)).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", noisy, sp.sample_rate)
    assert align.naturalness(tmp_path / "noisy.wav")["bak"] < s["bak"] - 0.5             # it hears the noise


def test_naturalness_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        align.naturalness(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    with pytest.raises(InputError, match="not readable audio"):
        align.naturalness(tmp_path / "junk.wav")
    sf.write(tmp_path / "quiet.wav", np.zeros(48000, np.float32), 16000)
    with pytest.raises(InputError, match="less than 1 s of speech"):
        align.naturalness(tmp_path / "quiet.wav")

"""Benchmark (not a timed test): forced alignment (`ytempire.align.align_words`) against known word timings.
Usage: .venv/bin/python tests/bench/alignment_bench.py [--paragraphs N] [--conditions a,b,...]
Ground truth is a voice's own word timings: Piper's for the paragraphs below, then the same audio changed in ways that
keep the truth known (ffmpeg atempo, timings scaled by 1/tempo; white or pink noise at 20 dB SNR; 0.6 s longer pauses
between sentences, which the reference does not have), and espeak-ng's
English voice with its own WORD-event timings (a different voice from the Piper reference the aligner synthesises).
The aligner's own reference is a separate Piper synthesis of the text (Piper's durations vary from run to run, so even
"clean" is not the reference played back, and figures vary a little between runs). Every condition has 0.5 s of silence
(or noise) before and after the speech. A condition that misses the issue's goal is marked. The last line is
`align_median_ms=X align_p95_ms=Y`: median and 95th percentile of |estimated - true| word start over every word."""
import argparse, io, subprocess, sys, time
import numpy as np
import soundfile as sf
from ytempire.config import Settings, find_tool
from ytempire.voice import PiperSynthesizer, EspeakSynthesizer
import ytempire.align as align

PARAGRAPHS = [
    "Coffee starts as a green seed. Roasting turns it brown, and the flavour we know appears within minutes.",
    "At about 196 degrees the beans crack for the first time. Sugars caramelise, acids soften, and the aroma changes "
    "from grassy to sweet. A light roast stops soon after; a dark roast keeps going until the second crack.",
    "Why does this matter to you? Because the same beans can taste of berries or of chocolate, depending only on how "
    "long they stayed in the drum. Ask your roaster when the batch was roasted, and drink it within a month.",
    "Home roasting is easier than it sounds. A popcorn machine, a sieve and a window that opens are enough. Listen for "
    "the cracks, cool the beans quickly, and wait a day before you grind them.",
]
CONDITIONS = ["clean", "tempo_0.9", "tempo_1.15", "white_20db", "pink_20db", "long_pauses", "espeak_en"]
PAD_S = 0.5
GOAL_MEDIAN_MS, GOAL_P95_MS = 50, 150      # issue 10, part 2


def atempo(audio: np.ndarray, sr: int, tempo: float, ffmpeg: str) -> np.ndarray:
    "The audio played `tempo` times as fast, pitch kept (ffmpeg atempo)."
    buf = io.BytesIO(); sf.write(buf, audio, sr, format="WAV", subtype="FLOAT")
    out = subprocess.run([ffmpeg, "-v", "error", "-i", "-", "-af", f"atempo={tempo}", "-f", "wav", "-"],
                         input=buf.getvalue(), capture_output=True, check=True).stdout
    return sf.read(io.BytesIO(out), dtype="float32")[0]


def noise(n: int, sr: int, color: str, ffmpeg: str, seed: int) -> np.ndarray:
    "`n` samples of white or pink noise (ffmpeg anoisesrc), unit RMS."
    out = subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", f"anoisesrc=color={color}:seed={seed}:sample_rate={sr}:"
                          f"duration={n / sr + 0.1:.3f}:amplitude=0.5", "-f", "f32le", "-ac", "1", "-"],
                         capture_output=True, check=True).stdout
    x = np.frombuffer(out, np.float32)[:n].astype(np.float64)
    return x / np.sqrt(np.mean(x ** 2))


def with_noise(audio: np.ndarray, sr: int, snr_db: float, color: str, ffmpeg: str, seed: int) -> np.ndarray:
    "Noise added at `snr_db` below the RMS of the speech (silence excluded)."
    speech = audio[np.abs(audio) > 1e-3]
    rms = np.sqrt(np.mean(speech ** 2))
    return (audio + noise(len(audio), sr, color, ffmpeg, seed) * rms * 10 ** (-snr_db / 20)).astype(np.float32)


def longer_pauses(audio: np.ndarray, sr: int, starts: list[float], extra: float = 0.6):
    "Every pause between sentences (a run of exact zeros of 0.2 s or more) made `extra` seconds longer; starts move with it."
    silent = np.concatenate([[False], np.abs(audio) == 0, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(int)))
    runs = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= 0.2 * sr and 0 < a and b < len(audio)]
    pieces, last, add = [], 0, np.zeros(int(extra * sr), np.float32)
    for a, b in runs: pieces += [audio[last:b], add]; last = b
    pieces.append(audio[last:])
    shift = lambda t: t + extra * sum(1 for a, b in runs if b / sr <= t + 1e-6)
    return np.concatenate(pieces), [shift(t) for t in starts]


def padded(audio: np.ndarray, sr: int, words: list, pad: float = PAD_S):
    "Silence before and after the speech; word times move with it."
    z = np.zeros(int(pad * sr), np.float32)
    return np.concatenate([z, audio, z]), [w.start + len(z) / sr for w in words]


def condition(name: str, piper_sp, espeak_sp, ffmpeg: str, seed: int):
    "(audio, sample rate, true word starts) for one paragraph under one condition."
    sp = espeak_sp if name == "espeak_en" else piper_sp
    audio, starts = padded(sp.audio, sp.sample_rate, sp.words)
    sr = sp.sample_rate
    if name.startswith("tempo_"):
        tempo = float(name.split("_")[1])
        return atempo(audio, sr, tempo, ffmpeg), sr, [s / tempo for s in starts]
    if name == "long_pauses":
        longer, moved = longer_pauses(audio, sr, starts)
        return longer, sr, moved
    if name.endswith("_20db"):
        return with_noise(audio, sr, 20.0, name.split("_")[0], ffmpeg, seed), sr, starts
    return audio, sr, starts


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--paragraphs", type=int, default=len(PARAGRAPHS), help="how many of the test paragraphs")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma-separated subset of {CONDITIONS}")
    a = ap.parse_args(argv)
    conds = [c for c in a.conditions.split(",") if c]
    if bad := [c for c in conds if c not in CONDITIONS]: sys.exit(f"unknown condition {bad}; choose from {CONDITIONS}")
    st = Settings(env={})
    ffmpeg = find_tool(st, "ffmpeg")
    piper, espeak = PiperSynthesizer(st), EspeakSynthesizer(st, "en-US")
    errors, t0, aligned_s = {c: [] for c in conds}, time.perf_counter(), 0.0
    for i, text in enumerate(PARAGRAPHS[:a.paragraphs]):
        piper_sp = piper.speak(text)
        espeak_sp = espeak.speak(text) if "espeak_en" in conds else None
        for c in conds:
            audio, sr, truth = condition(c, piper_sp, espeak_sp, ffmpeg, seed=i + 1)
            words = align.align_words(audio, sr, text, "en", st)
            assert len(words) == len(truth), (c, len(words), len(truth))
            errors[c] += [abs(w.start - s) * 1000 for w, s in zip(words, truth)]
            aligned_s += len(audio) / sr
    dt = time.perf_counter() - t0
    goal = lambda e: "" if np.median(e) <= GOAL_MEDIAN_MS and np.percentile(e, 95) <= GOAL_P95_MS else "  MISSES the goal"
    print(f"{'condition':<12} {'words':>6} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}   "
          f"(goal: median <= {GOAL_MEDIAN_MS}, p95 <= {GOAL_P95_MS})", file=sys.stderr)
    rows = {**errors, "overall": np.concatenate([errors[c] for c in conds])}
    for c, e in rows.items():
        print(f"{c:<12} {len(e):>6} {np.median(e):>10.1f} {np.percentile(e, 95):>8.1f} {np.max(e):>8.1f}{goal(e)}", file=sys.stderr)
    allerr = rows["overall"]
    print(f"{aligned_s:.1f} s of audio in {dt:.1f} s (synthesis of test and reference speech included)", file=sys.stderr)
    print(f"align_median_ms={np.median(allerr):.1f} align_p95_ms={np.percentile(allerr, 95):.1f}")


if __name__ == "__main__":
    main()

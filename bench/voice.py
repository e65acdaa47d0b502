"""Voice benchmark: speed of each speech engine and accuracy of the aligner. Prints JSON.

- ``engines.<name>.rtf``: real-time factor (seconds of compute per second of speech) over a
  few sentences, after a warm-up call (voice loading is reported on its own);
- ``alignment``: PocketSphinx aligning a Piper rendering of known text after resampling
  to 44.1 kHz and adding white noise (25 dB SNR): mean / median / max |word boundary
  error| in ms against Piper's own timings, and the aligner's real-time factor;
- ``pitch_shift``: real-time factor of a +4 semitone shift and how close the measured
  pitch ratio comes to 2^(4/12).

Run: ``.venv/bin/python bench/voice.py`` (add ``--quick`` for one sentence).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCES = [
    "Hello, I am your digital human, and I am happy to meet you.",
    "The quick brown fox jumps over the lazy dog while the farmer watches.",
    "Would you like to hear a story about a robot who learned to paint?",
    "My name is Alexandra, and I live at 42 Baker Street in London.",
]


def engine_speed(voice: str, texts: list[str]) -> dict:
    from studio.voice.synth import synthesize

    t0 = time.perf_counter()
    synthesize("Warm up.", voice, cache=None)
    load = time.perf_counter() - t0
    compute = audio = 0.0
    for text in texts:
        t0 = time.perf_counter()
        result = synthesize(text, voice, cache=None)
        compute += time.perf_counter() - t0
        audio += result.duration
    return {"rtf": round(compute / audio, 4), "audio_s": round(audio, 2),
            "compute_s": round(compute, 3), "load_s": round(load, 3)}


def alignment_error(texts: list[str], rate: int = 44100, snr_db: float = 25.0) -> dict:
    from studio.voice.align import align_audio
    from studio.voice.resample import resample
    from studio.voice.synth import synthesize

    rng = np.random.default_rng(0)
    errors, compute, audio_s = [], 0.0, 0.0
    text = " ".join(texts)
    truth = synthesize(text, "joe", cache=None)
    audio = resample(truth.audio, truth.sample_rate, rate)
    noise = rng.normal(size=len(audio)) * np.sqrt(np.mean(audio**2)) * 10 ** (-snr_db / 20)
    audio = (audio + noise).astype(np.float32)
    align_audio(audio[: rate], rate, texts[0].split()[0])  # warm up the decoder
    t0 = time.perf_counter()
    aligned = align_audio(audio, rate, text)
    compute += time.perf_counter() - t0
    audio_s += len(audio) / rate
    for a, b in zip(truth.words, aligned.words, strict=True):
        errors += [abs(a.start - b.start), abs(a.end - b.end)]
    e = np.array(errors) * 1000
    return {"words": len(truth.words), "rate_hz": rate, "snr_db": snr_db,
            "mean_ms": round(float(e.mean()), 1), "median_ms": round(float(np.median(e)), 1),
            "max_ms": round(float(e.max()), 1), "within_50ms": round(float(np.mean(e < 50)), 3),
            "rtf": round(compute / audio_s, 4)}


def pitch_shift(semitones: float = 4.0) -> dict:
    from studio.voice.analysis import estimate_f0
    from studio.voice.effects import shift_pitch
    from studio.voice.synth import synthesize

    speech = synthesize(SENTENCES[0], "joe", cache=None)
    t0 = time.perf_counter()
    shifted = shift_pitch(speech.audio, speech.sample_rate, semitones)
    compute = time.perf_counter() - t0
    a = estimate_f0(speech.audio, speech.sample_rate)
    b = estimate_f0(shifted, speech.sample_rate)
    both = (a > 0) & (b > 0)
    ratio = float(np.median(b[both] / a[both]))
    return {"semitones": semitones, "rtf": round(compute / speech.duration, 4),
            "pitch_ratio": round(ratio, 4), "expected_ratio": round(2 ** (semitones / 12), 4),
            "length_kept": len(shifted) == len(speech.audio)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one sentence per measurement")
    args = parser.parse_args()
    texts = SENTENCES[:1] if args.quick else SENTENCES
    piper = engine_speed("joe", texts)
    espeak = engine_speed("espeak:en-us", texts)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "engines": {"piper": piper, "espeak": espeak},
        "piper_over_espeak_rtf": round(piper["rtf"] / max(espeak["rtf"], 1e-9), 1),
        "alignment": alignment_error(texts),
        "pitch_shift": pitch_shift(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""A synthetic 'user' whose voice is known exactly, for tests and benchmarks of personal
voices (no human recordings ship with the studio).

The user is the shipped base voice changed by a fixed, hidden transformation: a different
speaking rate (so recordings and base renderings need aligning), pitch × 1.3, formants
(the spectral envelope's frequency axis) × 2^(2/12) and a brighter spectral tilt.
:func:`make_test_user` writes ``NAME.wav`` + ``NAME.txt`` pairs, as a user would record.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.voice.effects import istft, normalize_peak, shift_pitch, stft

PITCH_FACTOR = 1.3
FORMANT_SEMITONES = 2.0
RATE = 0.9  # the user speaks 10% slower
TILT_DB = 6.0  # gain at the Nyquist frequency, rising linearly from 1 kHz


def transform(audio: np.ndarray, sr: int) -> np.ndarray:
    """The hidden change of timbre and pitch applied to the base voice."""
    semitones = 12.0 * np.log2(PITCH_FACTOR)
    y = shift_pitch(audio, sr, semitones, FORMANT_SEMITONES).astype(np.float64)
    n_fft = 1024
    spec = stft(y, n_fft, n_fft // 4)
    freqs = np.linspace(0, sr / 2, spec.shape[1])
    gain_db = TILT_DB * np.clip((freqs - 1000.0) / (sr / 2 - 1000.0), 0.0, 1.0)
    y = istft(spec * 10 ** (gain_db / 20.0), len(y), n_fft, n_fft // 4)
    return normalize_peak(y, peak=0.7)


def speak_as_user(text: str, base_voice: str = "joe"):
    """A 'recording' of ``text`` by the test user (a fresh, uncached rendering)."""
    from studio.voice.settings import VoiceSettings
    from studio.voice.synth import synthesize

    result = synthesize(text, base_voice, VoiceSettings(rate=RATE), cache=None)
    return transform(result.audio, result.sample_rate), result.sample_rate


def make_test_user(
    folder: str | Path, sentences: Sequence[str], base_voice: str = "joe", prefix: str = "take"
) -> list[Path]:
    """Write the test user's recordings of ``sentences`` into ``folder`` (WAV + TXT pairs)."""
    from studio.voice.audio_io import save_audio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, text in enumerate(sentences):
        audio, sr = speak_as_user(text, base_voice)
        wav = folder / f"{prefix}{k:03d}.wav"
        save_audio(wav, audio, sr)
        wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        out.append(wav)
    return out

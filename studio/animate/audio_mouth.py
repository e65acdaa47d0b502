"""Mouth curves from the sound alone, for recordings without a transcript.

Per 10 ms frame (25 ms window):

- loudness: level in dB mapped from the noise floor (10th percentile) to the speech peak
  (97th percentile) onto 0..1;
- ``mouth_open`` = loudness, less for hissing sounds (energy above 4 kHz) and for low
  sounds with little first-formant energy (nasals, murmur);
- ``smile`` (wide) = energy near the second formant of front vowels (1.7–3 kHz) against
  the first-formant band (250–900 Hz);
- ``lip_pucker`` = a low spectral centroid of voiced sound (u, o, w);
- ``lips_closed`` = a short dip of the level inside speech (the closure of p), or a
  "voice bar" (nearly all energy below 250 Hz and none in the first-formant band: the
  murmur of m and b); a gently closed mouth in long pauses is left to the neutral face.

It cannot tell a p from a t, but it opens and closes with the syllables and goes quiet
in the pauses, which is what a viewer notices first.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from studio.animate.curves import Curve, track_from_samples

ABSOLUTE_FLOOR = -60.0  # dBFS: quieter than this is silence whatever the recording


FRAME_BLOCK = 1024
"""Frames analysed at once: memory stays a few MB whatever the length of the audio."""


def _frame_blocks(
    audio: np.ndarray, sample_rate: int, hop_s: float, win_s: float, block: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(first frame, frames x window samples as float64) for blocks of analysis frames.

    Frame ``k`` holds the samples ``k * hop - win // 2 ... + win`` (zeros outside the
    audio), one frame every ``hop_s`` from 0 to the end of the audio."""
    x = np.asarray(audio).reshape(-1)
    hop = max(1, int(round(hop_s * sample_rate)))
    win = max(hop, int(round(win_s * sample_rate)))
    count = max(1, int(np.ceil(len(x) / hop)))
    offsets = np.arange(win)[None, :]
    block = max(1, int(block or FRAME_BLOCK))
    for f0 in range(0, count, block):
        f1 = min(count, f0 + block)
        s0 = f0 * hop - win // 2
        s1 = (f1 - 1) * hop - win // 2 + win
        segment = np.zeros(s1 - s0, dtype=np.float64)
        a, b = max(s0, 0), min(s1, len(x))
        if b > a:
            segment[a - s0 : b - s0] = x[a:b]
        yield f0, segment[np.arange(f1 - f0)[:, None] * hop + offsets]


def _frame_count(n_samples: int, sample_rate: int, hop_s: float) -> int:
    return max(1, int(np.ceil(n_samples / max(1, int(round(hop_s * sample_rate))))))


def speech_energy(
    audio: np.ndarray, sample_rate: int, hop_s: float = 0.01, win_s: float = 0.025
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame times, level in dBFS, and loudness 0..1 (floor → peak)."""
    count = _frame_count(np.asarray(audio).size, sample_rate, hop_s)
    rms = np.empty(count)
    for f0, frames in _frame_blocks(audio, sample_rate, hop_s, win_s):
        rms[f0 : f0 + len(frames)] = np.sqrt(np.mean(frames**2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-6))
    floor = float(np.percentile(level, 10))
    peak = float(np.percentile(level, 97))
    if peak - floor < 12.0:
        # no pauses and no syllables: steady noise (or silence), not speech
        floor = min(floor, ABSOLUTE_FLOOR)
        peak = max(peak, floor + 20.0)
    floor = min(floor, peak - 20.0)  # speech always gets at least 20 dB of range
    loud = np.clip((level - floor) / (peak - floor), 0.0, 1.0)
    loud[level < ABSOLUTE_FLOOR] = 0.0
    return np.arange(count) * hop_s, level, loud


def _band_energies(audio: np.ndarray, sr: int, hop_s: float, win_s: float) -> dict[str, np.ndarray]:
    hop = max(1, int(round(hop_s * sr)))
    win = max(hop, int(round(win_s * sr)))
    n_fft = 1 << int(np.ceil(np.log2(win)))
    count = _frame_count(np.asarray(audio).size, sr, hop_s)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    window = np.hanning(win)
    bands = {"f1": (250, 900), "f2": (1700, 3000), "low": (80, 250), "high": (4000, 8000)}
    selections = {k: (freqs >= lo) & (freqs < min(hi, sr / 2)) for k, (lo, hi) in bands.items()}
    out = {k: np.empty(count) for k in (*bands, "total", "centroid")}
    for f0, frames in _frame_blocks(audio, sr, hop_s, win_s):
        f1 = f0 + len(frames)
        spec = np.abs(np.fft.rfft(frames * window, n_fft, axis=1)) ** 2
        for key, sel in selections.items():
            out[key][f0:f1] = spec[:, sel].sum(axis=1) + 1e-12 if sel.any() else 1e-12
        out["total"][f0:f1] = spec[:, (freqs >= 80)].sum(axis=1) + 1e-12
        out["centroid"][f0:f1] = (spec * freqs).sum(axis=1) / (spec.sum(axis=1) + 1e-12)
    return out


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(values, radius, mode="edge"), k, mode="valid")


def audio_mouth_curves(
    audio: np.ndarray, sample_rate: int, intensity: float = 1.0, hop_s: float = 0.01
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Times and {channel: values} for the four mouth channels."""
    t, level, loud = speech_energy(audio, sample_rate, hop_s)
    bands = _band_energies(audio, sample_rate, hop_s, 0.025)
    n = len(t)
    for key in bands:
        bands[key] = bands[key][:n]
    voiced = loud > 0.2
    hiss = np.clip(bands["high"] / bands["total"], 0, 1)  # s, sh, f
    f1_share = np.clip(bands["f1"] / bands["total"], 0, 1)
    opening = loud ** 0.8 * (1.0 - 0.7 * hiss) * (0.55 + 0.45 * np.sqrt(f1_share))
    front = np.log10(bands["f2"] / bands["f1"])  # high for i/e, low for a/o/u
    smile = np.clip((front + 1.2) / 1.2, 0, 1) * voiced * (1 - hiss) + 0.4 * hiss * voiced
    centroid = bands["centroid"]
    pucker = np.clip((1100.0 - centroid) / 700.0, 0, 1) * voiced * (1 - hiss)
    # a closure: much quieter than the speech just before and after (within 120 ms)
    reach = max(1, int(round(0.12 / hop_s)))
    padded = np.pad(level, reach, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, reach)  # a view, no copy
    before = windows[:n].max(axis=1)  # the loudest frame in the 120 ms before ...
    after = windows[reach + 1 : reach + 1 + n].max(axis=1)  # ... and after each frame
    around = np.minimum(before, after)
    speech_level = np.percentile(level, 90)
    inside = around > speech_level - 15
    dip = np.clip((around - level - 6.0) / 10.0, 0, 1)
    # voiced closure (m, b): a "voice bar" -- nearly all energy below 250 Hz, no F1
    low_share = bands["low"] / bands["total"]
    murmur = np.clip((low_share - 0.7) / 0.15, 0, 1) * np.clip((0.25 - f1_share) / 0.1, 0, 1)
    murmur = murmur * (loud > 0.1)
    closed = np.clip(np.maximum(dip, murmur), 0, 1) * inside
    sigma = 0.02 / hop_s
    curves = {
        "mouth_open": np.clip(_smooth(opening * (1 - closed), sigma) * intensity, 0, 1),
        "lip_pucker": np.clip(_smooth(pucker, 2 * sigma) * intensity, 0, 1),
        "smile": np.clip(_smooth(smile, 2 * sigma) * 0.7 * intensity, 0, 1),
        "lips_closed": np.clip(_smooth(closed, sigma), 0, 1),
    }
    return t, curves


def audio_mouth_tracks(
    audio: np.ndarray, sample_rate: int, intensity: float = 1.0, tolerance: float = 0.01
) -> list[Curve]:
    """Mouth curve tracks driven by the audio (no phonemes needed)."""
    t, curves = audio_mouth_curves(audio, sample_rate, intensity)
    return [track_from_samples(ch, t, v, tolerance, "smooth") for ch, v in curves.items()]

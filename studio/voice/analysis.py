"""Measuring audio: loudness, frame energy and pitch (YIN-style autocorrelation)."""

from __future__ import annotations

import numpy as np


def rms(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def db(value: float, floor: float = 1e-10) -> float:
    return float(20.0 * np.log10(max(value, floor)))


def frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """Frames of ``x`` (zero-padded at the end): shape (count, size), frame i at i·hop."""
    x = np.asarray(x, dtype=np.float64)
    count = max(1, int(np.ceil(len(x) / hop)))
    padded = np.zeros((count - 1) * hop + size)
    padded[: len(x)] = x[: len(padded)]
    idx = np.arange(count)[:, None] * hop + np.arange(size)[None, :]
    return padded[idx]


RMS_BLOCK = 4096  # frames measured at once: memory stays small for hours of audio


def frame_rms_db(x: np.ndarray, sr: int, hop_s: float = 0.01, win_s: float = 0.025) -> np.ndarray:
    """RMS level in dBFS of frames centred every ``hop_s`` seconds (frame ``k`` holds the
    samples ``k * hop - win // 2 ... + win``, zeros outside the audio)."""
    hop = max(1, int(round(hop_s * sr)))
    win = max(hop, int(round(win_s * sr)))
    x = np.asarray(x).reshape(-1)
    count = max(1, int(np.ceil(len(x) / hop)))
    level = np.empty(count)
    offsets = np.arange(win)[None, :]
    for f0 in range(0, count, RMS_BLOCK):
        f1 = min(count, f0 + RMS_BLOCK)
        s0 = f0 * hop - win // 2
        s1 = (f1 - 1) * hop - win // 2 + win
        segment = np.zeros(s1 - s0)
        a, b = max(s0, 0), min(s1, len(x))
        if b > a:
            segment[a - s0 : b - s0] = x[a:b]
        f = segment[np.arange(f1 - f0)[:, None] * hop + offsets]
        level[f0:f1] = np.sqrt(np.mean(f * f, axis=1))
    return 20.0 * np.log10(np.maximum(level, 1e-6))


def estimate_f0(
    x: np.ndarray,
    sr: int,
    fmin: float = 50.0,
    fmax: float = 600.0,
    hop_s: float = 0.01,
    threshold: float = 0.2,
) -> np.ndarray:
    """Pitch per frame in Hz (0 where unvoiced), by YIN's cumulative mean normalised
    difference of the autocorrelation, with parabolic refinement of the lag. A dip at a
    multiple of the chosen lag that is clearly deeper wins (avoids octave-up errors)."""
    x = np.asarray(x, dtype=np.float64)
    max_lag = int(np.ceil(sr / fmin))
    min_lag = max(2, int(np.floor(sr / fmax)))
    win = 2 * max_lag
    hop = max(1, int(round(hop_s * sr)))
    if len(x) < win + max_lag:
        return np.zeros(0)
    f = frames(x, win + max_lag, hop)[: max(1, (len(x) - win - max_lag) // hop + 1)]
    n_fft = 1 << int(np.ceil(np.log2(2 * (win + max_lag))))
    spec = np.fft.rfft(f, n_fft, axis=1)
    head = np.fft.rfft(f[:, :win], n_fft, axis=1)
    corr = np.fft.irfft(spec * np.conj(head), n_fft, axis=1)[:, : max_lag + 1]  # r_t(tau)
    sq = np.cumsum(np.pad(f * f, ((0, 0), (1, 0))), axis=1)
    energy0 = sq[:, win][:, None]  # sum over the window
    lags = np.arange(max_lag + 1)
    energy_tau = sq[:, lags + win] - sq[:, lags]  # window shifted by tau
    diff = energy0 + energy_tau - 2.0 * corr
    diff[:, 0] = 0.0
    cum = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, max_lag + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(cum, 1e-12)
    out = np.zeros(len(f))
    loud = energy0[:, 0] / win > 1e-7
    for i in range(len(f)):
        if not loud[i]:
            continue
        d = cmnd[i]
        below = np.nonzero(d[min_lag:max_lag] < threshold)[0]
        if below.size == 0:
            continue
        tau = below[0] + min_lag
        while tau + 1 < max_lag and d[tau + 1] < d[tau]:
            tau += 1
        for m in (2, 3):
            lo, hi = m * tau - 2, m * tau + 3
            if hi >= max_lag:
                break
            k = lo + int(np.argmin(d[lo:hi]))
            if d[k] < d[tau] - 0.1:
                tau = k
        tau = int(np.clip(tau, 1, max_lag - 1))
        a, b, c = d[tau - 1], d[tau], d[tau + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if abs(denom) > 1e-12 else 0.0
        out[i] = sr / (tau + float(np.clip(shift, -1, 1)))
    return out


def median_f0(x: np.ndarray, sr: int, **kwargs) -> float:
    """Median pitch of the voiced frames in Hz (0 if none are voiced)."""
    f0 = estimate_f0(x, sr, **kwargs)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else 0.0

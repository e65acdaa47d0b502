"""Band-limited resampling in numpy: a Kaiser-windowed sinc evaluated at any ratio.

Every output sample is a weighted sum of the input samples around its position, with
weights from a windowed-sinc low-pass (cut off just below the lower of the two Nyquist
frequencies, so downsampling does not alias). The filter is tabulated finely and read
with linear interpolation, which makes any ratio (44100 → 16000, or 2^(3/12) for pitch
shifting) cost the same. With the defaults the stop band is below -80 dB and the pass
band is flat (SNR > 90 dB on sines) up to ~75 % of the output Nyquist frequency.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ZEROS = 24  # zero crossings of the sinc on each side
ROLLOFF = 0.94  # cut-off as a fraction of the (lower) Nyquist frequency
BETA = 8.6  # Kaiser window shape (≈ -86 dB side lobes)
TABLE_STEPS = 512  # table entries per zero crossing
BLOCK = 4096  # output samples per vectorised block


@lru_cache(maxsize=8)
def _table(zeros: int, beta: float, steps: int) -> np.ndarray:
    """The windowed sinc sampled at u = k / steps for k = 0 .. zeros·steps (+ a zero)."""
    u = np.arange(zeros * steps + 2) / steps
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (u / zeros) ** 2, 0.0, None))) / np.i0(beta)
    table = np.sinc(u) * window
    table[u >= zeros] = 0.0
    return table


def resample_ratio(
    x: np.ndarray,
    ratio: float,
    n_out: int | None = None,
    *,
    zeros: int = ZEROS,
    rolloff: float = ROLLOFF,
    beta: float = BETA,
) -> np.ndarray:
    """Resample ``x`` (samples first, any channels after) by ``ratio`` = out rate / in rate.

    Output sample ``n`` sits at input position ``n / ratio``, so time 0 stays at 0.
    """
    if ratio <= 0 or not np.isfinite(ratio):
        raise ValueError(f"resampling ratio must be positive, got {ratio}")
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if n_out is None:
        n_out = int(round(x.shape[0] * ratio))
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    n_in, channels = x.shape[0], x.shape[1]
    # float32 out, written block by block: no float64 copies of hours of audio
    out = np.zeros((n_out, channels), dtype=np.float32)
    if n_in == 0 or n_out == 0:
        return out[:, 0] if squeeze else out
    fc = rolloff * min(1.0, ratio)  # cut-off, in units of the input Nyquist frequency
    table = _table(zeros, beta, TABLE_STEPS)
    half = int(np.ceil(zeros / fc))  # filter half width, input samples
    taps = np.arange(-half + 1, half + 1)
    scale = fc * TABLE_STEPS
    last = len(table) - 2
    for b0 in range(0, n_out, BLOCK):
        n = np.arange(b0, min(n_out, b0 + BLOCK))
        pos = n / ratio
        base = np.floor(pos).astype(np.int64)
        idx = base[:, None] + taps[None, :]  # input samples that contribute
        u = np.abs(pos[:, None] - idx) * scale  # distance in table steps
        k = np.minimum(u.astype(np.int64), last)
        frac = u - k
        weights = (table[k] * (1.0 - frac) + table[k + 1] * frac) * fc
        weights[u >= zeros * TABLE_STEPS] = 0.0
        # the input with zeros before and after it, read only where this block needs it
        lo = max(0, int(idx[0, 0]))
        hi = min(n_in, int(idx[-1, -1]) + 1)
        segment = np.zeros((int(idx[-1, -1]) - int(idx[0, 0]) + 1, channels))
        if hi > lo:
            segment[lo - int(idx[0, 0]) : hi - int(idx[0, 0])] = x[lo:hi]
        rows = segment[idx - int(idx[0, 0])]  # (block, taps, channels)
        out[n] = np.einsum("bt,btc->bc", weights, rows)
    return out[:, 0] if squeeze else out


def resample(x: np.ndarray, sr_in: int, sr_out: int, **kwargs) -> np.ndarray:
    """Resample audio from ``sr_in`` to ``sr_out`` Hz (float32 out, same channels)."""
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} and {sr_out}")
    x = np.asarray(x)
    if sr_in == sr_out:
        return x.astype(np.float32, copy=True)
    n_out = int(round(x.shape[0] * sr_out / sr_in))
    return resample_ratio(x, sr_out / sr_in, n_out, **kwargs)

"""Speech analysis for voice conversion, our own (no WORLD): spectral envelope, mel-cepstrum,
pitch, mel-cepstral distortion and DTW.

Frames are the STFT frames of :mod:`studio.voice.effects` (frame i centred on sample
i·hop, an FFT of about 46 ms, a hop of a quarter of it), so an envelope computed here can
filter that STFT directly. The envelope is the "true envelope" (iterated cepstral
smoothing); its mel-cepstrum is the cosine series of the log amplitude over a frequency
axis warped by a first-order all-pass (α ≈ 0.455 at 22.05 kHz), in SPTK's convention
(log|H(ω)| = Σ c̃(m) cos(m ω̃)), so mel-cepstral distortion
``MCD = 10/ln10 · sqrt(2 Σ_{m≥1} Δc̃(m)²)`` is comparable with published figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.voice.analysis import estimate_f0, frame_rms_db
from studio.voice.effects import _log_envelope, stft

MCEP_ORDER = 24  # c̃(0)..c̃(24)
F0_MIN, F0_MAX = 60.0, 500.0
ENV_TOP_F0 = 230.0  # the true envelope bridges harmonics of voices up to this pitch
_GRID = 512  # samples of the warped axis used to fit the mel-cepstrum


def all_pass_alpha(sr: int) -> float:
    """Frequency-warping constant that approximates the mel scale at ``sr`` (SPTK's table)."""
    table = {8000: 0.31, 16000: 0.42, 22050: 0.455, 24000: 0.466, 44100: 0.544, 48000: 0.554}
    if sr in table:
        return table[sr]
    rates = np.array(sorted(table))
    return float(np.interp(sr, rates, [table[r] for r in rates]))


def fft_size(sr: int) -> int:
    return 1 << int(round(np.log2(sr * 0.046)))


def _warp(omega: np.ndarray, alpha: float) -> np.ndarray:
    """Phase response of the all-pass: linear frequency → warped frequency (radians)."""
    return omega + 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 - alpha * np.cos(omega)))


@dataclass
class MelBasis:
    """Matrices between log envelopes on FFT bins and mel-cepstra, for one rate/size."""

    to_mcep: np.ndarray  # (bins, M+1): log envelope → mel-cepstrum
    to_env: np.ndarray  # (M+1, bins): mel-cepstrum → log envelope

    @classmethod
    def make(cls, sr: int, n_fft: int, order: int = MCEP_ORDER) -> MelBasis:
        alpha = all_pass_alpha(sr)
        bins = n_fft // 2 + 1
        m = np.arange(order + 1)
        # forward: sample the log envelope on a uniform warped grid (trapezoid cosine fit)
        w_grid = np.linspace(0.0, np.pi, _GRID)
        lin = _warp(w_grid, -alpha) / np.pi * (bins - 1)  # bin position of each grid point
        interp = np.zeros((_GRID, bins))
        lo = np.clip(np.floor(lin).astype(int), 0, bins - 2)
        frac = lin - lo
        interp[np.arange(_GRID), lo] = 1.0 - frac
        interp[np.arange(_GRID), lo + 1] = frac
        weights = np.full(_GRID, 1.0 / (_GRID - 1))
        weights[[0, -1]] *= 0.5
        cos = np.cos(np.outer(w_grid, m))  # (grid, M+1)
        fit = (cos * weights[:, None]).T * 2.0  # (M+1, grid)
        fit[0] *= 0.5
        to_mcep = (fit @ interp).T
        # inverse: evaluate the cosine series at the warped frequency of every bin
        w_bins = _warp(np.linspace(0.0, np.pi, bins), alpha)
        to_env = np.cos(np.outer(m, w_bins))
        return cls(to_mcep, to_env)


_BASES: dict[tuple[int, int, int], MelBasis] = {}


def mel_basis(sr: int, n_fft: int, order: int = MCEP_ORDER) -> MelBasis:
    key = (sr, n_fft, order)
    if key not in _BASES:
        _BASES[key] = MelBasis.make(sr, n_fft, order)
    return _BASES[key]


@dataclass
class Analysis:
    """Frame-wise features of one recording."""

    sample_rate: int
    n_fft: int
    hop: int
    mcep: np.ndarray  # (frames, M+1) float32
    f0: np.ndarray  # (frames,) Hz, 0 = unvoiced
    level_db: np.ndarray  # (frames,) frame RMS in dBFS

    @property
    def frames(self) -> int:
        return len(self.mcep)

    def speech_mask(self, below_peak_db: float = 35.0) -> np.ndarray:
        """Frames within ``below_peak_db`` of the loudest (speech, not pauses)."""
        if not len(self.level_db):
            return np.zeros(0, bool)
        return self.level_db > float(np.max(self.level_db)) - below_peak_db


def envelope_order(sr: int) -> int:
    return int(np.clip(sr / (2.0 * ENV_TOP_F0), 12, 80))


def log_envelopes(spec: np.ndarray, sr: int) -> np.ndarray:
    """True log-amplitude envelopes (natural log) of STFT frames."""
    return _log_envelope(np.log(np.abs(spec) + 1e-7), envelope_order(sr))


def frame_f0(x: np.ndarray, sr: int, hop: int, count: int) -> np.ndarray:
    """Pitch of ``count`` frames centred on i·hop (YIN, :func:`estimate_f0`)."""
    max_lag = int(np.ceil(sr / F0_MIN))
    half = (3 * max_lag) // 2  # YIN's frame is 3·max_lag long; centre it on i·hop
    padded = np.concatenate([np.zeros(half), np.asarray(x, np.float64), np.zeros(4 * max_lag)])
    f0 = estimate_f0(padded, sr, fmin=F0_MIN, fmax=F0_MAX, hop_s=hop / sr)
    out = np.zeros(count)
    n = min(count, len(f0))
    out[:n] = f0[:n]
    return out


def analyze(audio: np.ndarray, sr: int, with_f0: bool = True) -> Analysis:
    """Mel-cepstra, pitch and level of every frame of ``audio`` (mono float)."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    n_fft = fft_size(sr)
    hop = n_fft // 4
    spec = stft(x, n_fft, hop)
    env = log_envelopes(spec, sr)
    mcep = (env @ mel_basis(sr, n_fft).to_mcep).astype(np.float32)
    level = frame_rms_db(x, sr, hop_s=hop / sr, win_s=n_fft / sr)
    level = np.resize(level, len(mcep)) if len(level) != len(mcep) else level
    f0 = frame_f0(x, sr, hop, len(mcep)) if with_f0 else np.zeros(len(mcep))
    return Analysis(sr, n_fft, hop, mcep, f0, level.astype(np.float32))


def mcep_to_log_envelope(mcep: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    return np.asarray(mcep, np.float64) @ mel_basis(sr, n_fft, mcep.shape[1] - 1).to_env


MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)


def mcd_frames(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mel-cepstral distortion (dB) of paired frames, c̃(0) (level) left out."""
    d = np.asarray(a, np.float64)[:, 1:] - np.asarray(b, np.float64)[:, 1:]
    return MCD_SCALE * np.sqrt(np.sum(d * d, axis=1))


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Align feature sequences ``a`` (n×d) and ``b`` (m×d) with DTW.

    Steps (1,1), (1,2), (2,1): local slopes between 1/2 and 2, so each row's costs come
    from the two rows before it (vectorised over columns). Returns the index pairs and the
    mean Euclidean distance along the path."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("DTW needs two non-empty sequences")
    cost = np.sqrt(np.maximum(
        (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0))
    inf = np.inf
    acc = np.full((n, m), inf)
    move = np.zeros((n, m), np.int8)  # 0: (1,1), 1: (1,2), 2: (2,1)
    acc[0, 0] = cost[0, 0]
    for i in range(1, n):
        diag = np.full(m, inf)
        diag[1:] = acc[i - 1, :-1]
        skip_b = np.full(m, inf)  # from (i-1, j-2)
        skip_b[2:] = acc[i - 1, :-2] + cost[i, 1:-1]
        skip_a = np.full(m, inf)  # from (i-2, j-1)
        if i >= 2:
            skip_a[1:] = acc[i - 2, :-1] + cost[i - 1, 1:]
        options = np.stack([diag, skip_b, skip_a])
        best = np.argmin(options, axis=0)
        acc[i] = options[best, np.arange(m)] + cost[i]
        move[i] = best
    if not np.isfinite(acc[-1, -1]):  # lengths too different for slopes within 1/2..2
        raise ValueError("the two recordings are too different in length to align")
    pairs = []
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        pairs.append((i, j))
        k = move[i, j]
        if k == 0:
            i, j = i - 1, j - 1
        elif k == 1:
            pairs.append((i, j - 1))
            i, j = i - 1, j - 2
        else:
            pairs.append((i - 1, j))
            i, j = i - 2, j - 1
    pairs.append((0, 0))
    path = np.array(pairs[::-1])
    mean = float(cost[path[:, 0], path[:, 1]].mean())
    return path[:, 0], path[:, 1], mean


def trim_silence(an: Analysis, below_peak_db: float = 40.0, keep: int = 3) -> slice:
    """The frames from the first to the last loud one (with ``keep`` frames of margin)."""
    loud = np.nonzero(an.speech_mask(below_peak_db))[0]
    if not loud.size:
        return slice(0, an.frames)
    return slice(max(0, loud[0] - keep), min(an.frames, loud[-1] + keep + 1))


def aligned_mcd(source: Analysis, target: Analysis) -> float:
    """Mean MCD (dB) between two renderings of the same text, DTW-aligned over speech
    (leading and trailing silence trimmed, c̃(0) left out)."""
    sa, sb = trim_silence(source), trim_silence(target)
    a, b = source.mcep[sa], target.mcep[sb]
    ia, ib, _ = dtw_path(a[:, 1:], b[:, 1:])
    return float(np.mean(mcd_frames(a[ia], b[ib])))


def log_f0_stats(f0s: list[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation of log F0 over the voiced frames."""
    voiced = np.concatenate([np.log(f[f > 0]) for f in f0s]) if f0s else np.zeros(0)
    if voiced.size < 10:
        raise ValueError("too few voiced frames to measure the pitch")
    return float(voiced.mean()), float(voiced.std())

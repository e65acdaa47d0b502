"""Analysis for personal voices: mel-cepstrum round trip, MCD, DTW, pitch (no TTS needed)."""

from __future__ import annotations

import numpy as np

from studio.voice.effects import stft
from studio.voice.spectral import (
    aligned_mcd,
    analyze,
    dtw_path,
    log_envelopes,
    mcd_frames,
    mcep_to_log_envelope,
)

SR = 22050


def _vowel(f0: float, formants: tuple[float, ...], seconds: float = 1.0) -> np.ndarray:
    """A pulse train through resonances: a crude steady vowel."""
    n = int(seconds * SR)
    x = np.zeros(n)
    x[(np.arange(0, n, SR / f0)).astype(int)] = 1.0
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1 / SR)
    h = np.ones_like(f, dtype=complex)
    for fc in formants:
        h *= 1.0 / (1.0 + 1j * (f - fc) / 80.0) + 1.0 / (1.0 + 1j * (f + fc) / 80.0)
    y = np.fft.irfft(spec * h, n)
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def test_mel_cepstrum_keeps_the_envelope_shape():
    x = _vowel(120, (700, 1200, 2600))
    an = analyze(x, SR)
    env = log_envelopes(stft(x.astype(float), an.n_fft, an.hop), SR)
    back = mcep_to_log_envelope(an.mcep, SR, an.n_fft)
    mid = slice(10, len(env) - 10)
    err_db = 20 / np.log(10) * np.sqrt(np.mean((env[mid] - back[mid]) ** 2))
    assert err_db < 4.0  # 25 mel-cepstra hold the envelope within a few dB


def test_pitch_is_measured():
    an = analyze(_vowel(150, (700, 1200)), SR)
    voiced = an.f0[an.f0 > 0]
    assert voiced.size > 0.7 * an.frames
    assert abs(np.median(voiced) - 150) < 5


def test_mcd_zero_for_same_and_grows_with_timbre_change():
    a = analyze(_vowel(120, (700, 1200, 2600)), SR)
    b = analyze(_vowel(120, (850, 1500, 3000)), SR)
    assert aligned_mcd(a, a) == 0.0
    assert aligned_mcd(a, b) > 2.0
    assert np.all(mcd_frames(a.mcep, a.mcep) == 0)


def test_dtw_recovers_a_known_warp():
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.normal(size=(60, 4)), axis=0)
    idx = np.repeat(np.arange(60), [2 if k % 3 == 0 else 1 for k in range(60)])  # slower
    b = a[idx]
    ia, ib, mean = dtw_path(a, b)
    assert (ia[0], ib[0], ia[-1], ib[-1]) == (0, 0, 59, len(b) - 1)
    assert np.all(np.diff(ia) >= 0) and np.all(np.diff(ib) >= 0)
    # slopes are limited to 1/2..2, so a frame or two near a repeat may be off by one
    assert np.mean(idx[ib] == ia) > 0.9
    assert mean < 0.1 * dtw_path(a, a[::-1])[2]

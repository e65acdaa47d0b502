"""Resampling, pitch and formant shifting, loudness: measured on the audio."""

from __future__ import annotations

import numpy as np
import pytest

from studio.voice.analysis import estimate_f0, frame_rms_db, median_f0, rms
from studio.voice.effects import apply_gain_spans, normalize_peak, shift_pitch, time_stretch
from studio.voice.resample import resample


def sine(freq, sr, seconds=1.0):
    return np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)


def snr_db(ref, est):
    return 10 * np.log10(np.mean(ref**2) / np.mean((ref - est) ** 2))


@pytest.mark.parametrize("sr_in, sr_out, freq", [(44100, 16000, 1000), (16000, 22050, 3000),
                                                  (22050, 16000, 5000), (48000, 44100, 15000)])
def test_resample_keeps_sines_clean(sr_in, sr_out, freq):
    y = resample(sine(freq, sr_in), sr_in, sr_out)
    assert len(y) == round(sr_in * sr_out / sr_in)
    ref = sine(freq, sr_out)[: len(y)]
    edge = sr_out // 20
    assert snr_db(ref[edge:-edge], y[edge:-edge]) > 60


def test_downsampling_does_not_alias():
    for freq in (9000, 12000, 20000):  # above the new Nyquist (8 kHz)
        y = resample(sine(freq, 44100), 44100, 16000)
        assert 20 * np.log10(rms(y[800:-800]) / np.sqrt(0.5)) < -60


def test_resample_channels_and_identity():
    stereo = np.stack([sine(440, 8000), sine(880, 8000)], axis=1)
    y = resample(stereo, 8000, 16000)
    assert y.shape == (16000, 2) and y.dtype == np.float32
    assert np.array_equal(resample(stereo, 8000, 8000), stereo.astype(np.float32))
    with pytest.raises(ValueError):
        resample(stereo, 0, 8000)


def harmonic(f0, sr, seconds=1.2):
    t = np.arange(int(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 25) if f0 * k < sr / 2)
    return 0.3 * x


@pytest.mark.parametrize("semitones", [-7, -3, 3, 7, 12])
def test_pitch_shift_moves_f0_and_keeps_length(semitones):
    sr = 22050
    x = harmonic(130.0, sr)
    y = shift_pitch(x, sr, semitones)
    assert len(y) == len(x)
    expected = 130.0 * 2 ** (semitones / 12)
    assert median_f0(y, sr) == pytest.approx(expected, rel=0.01)
    assert 0.6 < rms(y) / rms(x) < 1.6


def formant_signal(f0, sr, seconds=1.2, formants=((700, 90), (1200, 110), (2600, 160))):
    """A pulse train through three resonators: a vowel-like source-filter signal."""
    n = int(sr * seconds)
    x = np.zeros(n)
    x[:: int(sr / f0)] = 1.0
    for freq, bw in formants:
        r = np.exp(-np.pi * bw / sr)
        a1, a2 = -2 * r * np.cos(2 * np.pi * freq / sr), r * r
        y = np.zeros(n)
        for i in range(n):
            y[i] = x[i] - a1 * y[i - 1] - a2 * y[i - 2]
        x = y
    return 0.5 * x / np.max(np.abs(x))


def envelope_peak(x, sr, f0, lo, hi):
    """Frequency of the spectral envelope's peak in [lo, hi]: the harmonics' levels
    (Welch spectrum, peak near each k·f0), the loudest one in range refined by a parabola
    through it and its two neighbours."""
    n = 4096
    frames = [x[i : i + n] * np.hanning(n) for i in range(0, len(x) - n, n // 2)]
    power = np.mean([np.abs(np.fft.rfft(f)) ** 2 for f in frames], axis=0)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    centres, levels = [], []
    for k in range(1, int((sr / 2) / f0)):
        sel = np.abs(freqs - k * f0) < f0 / 4
        i = np.nonzero(sel)[0][np.argmax(power[sel])]
        centres.append(freqs[i])
        levels.append(10 * np.log10(power[i] + 1e-20))
    centres, levels = np.array(centres), np.array(levels)
    inside = np.nonzero((centres >= lo) & (centres <= hi))[0]
    k = inside[np.argmax(levels[inside])]
    if 0 < k < len(levels) - 1:
        a, b, c = levels[k - 1], levels[k], levels[k + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
        return centres[k] + float(np.clip(shift, -1, 1)) * f0
    return centres[k]


def test_pitch_shift_keeps_formants_and_formant_shift_moves_them():
    sr = 16000
    x = formant_signal(120, sr)
    f1 = envelope_peak(x, sr, 120, 500, 950)
    f2 = envelope_peak(x, sr, 120, 1000, 1600)
    assert f1 == pytest.approx(700, rel=0.1) and f2 == pytest.approx(1200, rel=0.1)
    up = 2 ** (5 / 12)
    kept = shift_pitch(x, sr, 5)
    assert median_f0(kept, sr) == pytest.approx(120 * up, rel=0.02)
    assert envelope_peak(kept, sr, 120 * up, 500, 950) == pytest.approx(f1, rel=0.1)
    assert envelope_peak(kept, sr, 120 * up, 1000, 1600) == pytest.approx(f2, rel=0.1)
    plain = resample(x, sr, round(sr / up))  # a naive shift (played back faster) moves them
    assert envelope_peak(plain, sr, 120 * up, 1000, 2000) == pytest.approx(f2 * up, rel=0.1)
    moved = shift_pitch(x, sr, 0, formant=4)
    assert median_f0(moved, sr) == pytest.approx(120, rel=0.02)
    assert envelope_peak(moved, sr, 120, 1000, 2000) == pytest.approx(f2 * 2 ** (4 / 12), rel=0.1)


def test_pitch_shift_keeps_timing_of_speech(joe_speech):
    x, sr = joe_speech.audio, joe_speech.sample_rate
    y = shift_pitch(x, sr, 4)
    assert len(y) == len(x)
    a = frame_rms_db(x, sr)
    b = frame_rms_db(y, sr)
    a, b = a - a.mean(), b - b.mean()
    lags = range(-5, 6)  # 10 ms frames
    corr = [np.dot(a[5:-5], np.roll(b, lag)[5:-5]) for lag in lags]
    assert list(lags)[int(np.argmax(corr))] == 0  # no shift in time
    assert np.corrcoef(a, b)[0, 1] > 0.9
    f_x = median_f0(x, sr, fmax=400)
    f_y = median_f0(y, sr, fmax=500)
    assert f_y / f_x == pytest.approx(2 ** (4 / 12), rel=0.06)


def test_time_stretch_changes_length_not_pitch():
    sr = 16000
    x = harmonic(200, sr, 1.0)
    y = time_stretch(x, 1.5)
    assert len(y) == round(len(x) * 1.5)
    assert median_f0(y, sr) == pytest.approx(200, rel=0.01)


def test_estimate_f0_unvoiced_is_zero():
    rng = np.random.default_rng(0)
    assert np.mean(estimate_f0(rng.normal(size=16000) * 0.1, 16000) > 0) < 0.1
    assert median_f0(np.zeros(16000), 16000) == 0.0


def test_normalize_and_gain():
    x = 0.1 * sine(220, 8000)
    y = normalize_peak(x)
    assert np.max(np.abs(y)) == pytest.approx(10 ** (-1 / 20), rel=1e-3)
    loud = normalize_peak(x, volume=3.0)
    assert np.max(np.abs(loud)) <= 1.0
    g = apply_gain_spans(x.astype(np.float32), 8000, [(0.4, 0.6)], 6.0)
    assert rms(g[3300:4700]) / rms(x[3300:4700]) == pytest.approx(2.0, rel=0.01)
    assert rms(g[:2800]) == pytest.approx(rms(x[:2800]), rel=1e-4)

"""The audio-driven mouth (no transcript) moves like the phoneme-driven one."""

from __future__ import annotations

import numpy as np

from studio.animate import AnimationSettings, animate_audio, animate_speech, evaluate_curve
from studio.animate.audio_mouth import audio_mouth_curves


def test_audio_mouth_tracks_speech(neural_speech):
    s = neural_speech
    sound = {tr.channel: tr for tr in animate_audio(s.audio, s.sample_rate)}
    phones = {tr.channel: tr for tr in animate_speech(
        s.phonemes, s.duration, settings=AnimationSettings(blinks=False, head_motion=False))}
    t = np.arange(0, s.duration, 0.01)
    a = evaluate_curve(sound["mouth_open"], t)
    b = evaluate_curve(phones["mouth_open"], t)
    assert np.corrcoef(a, b)[0, 1] > 0.4
    for p in s.phonemes:
        if p.phoneme == "_" and p.duration > 0.2:
            mid = np.arange(p.start + 0.07, p.end - 0.07, 0.01)
            assert evaluate_curve(sound["mouth_open"], mid).max() < 0.1
    assert {"blink", "head_yaw", "lips_closed", "smile", "lip_pucker"} <= set(sound)


def test_silence_and_noise_keep_the_mouth_shut():
    sr = 16000
    rng = np.random.default_rng(0)
    quiet = rng.normal(size=sr) * 1e-4
    t, curves = audio_mouth_curves(quiet, sr)
    assert curves["mouth_open"].max() < 0.35  # nothing but noise: no speech range
    n = np.arange(sr) / sr
    voice = sum(np.sin(2 * np.pi * 150 * k * n) / k for k in range(1, 20))  # a buzz, like a vowel
    syllables = 0.3 * voice * (1 + np.sin(2 * np.pi * 4 * n))
    tone = np.concatenate([np.zeros(sr // 2), syllables, np.zeros(sr // 2)])
    t, curves = audio_mouth_curves(tone, sr)
    assert curves["mouth_open"][t < 0.4].max() < 0.05
    assert curves["mouth_open"][(t > 0.6) & (t < 1.4)].max() > 0.5

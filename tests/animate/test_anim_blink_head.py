"""Blinks at natural intervals; head motion that follows the speech."""

from __future__ import annotations

import numpy as np
import pytest

from studio.animate import animate_speech, evaluate_curve
from studio.animate.blink import BlinkSettings, blink_schedule, blink_track
from studio.animate.head import HeadSettings, head_tracks


def test_blinks_are_plausible_and_seeded():
    blinks = blink_schedule(600.0, settings=BlinkSettings(seed=3))
    starts = np.array([b.start for b in blinks])
    gaps = np.diff(starts)
    assert 100 < len(blinks) < 300
    assert gaps.min() >= 2.0 - 1e-9 and gaps.max() <= 6.0 + 1e-9
    assert 2.8 < gaps.mean() < 4.5
    assert all(0.1 <= b.duration <= 0.25 for b in blinks)
    assert blink_schedule(600.0, settings=BlinkSettings(seed=3)) == blinks
    assert blink_schedule(600.0, settings=BlinkSettings(seed=4)) != blinks


def test_blinks_follow_sentence_ends():
    ends = [3.0, 7.5, 12.0, 16.2]
    blinks = blink_schedule(20.0, ends, BlinkSettings(seed=1, sentence_blink_chance=1.0))
    starts = [b.start for b in blinks]
    for e in ends:
        assert any(0.0 < s - e <= 0.35 for s in starts), (e, starts)
    assert np.diff(starts).min() >= 1.2 - 1e-9


def test_blink_shape():
    track = blink_track(10.0, settings=BlinkSettings(seed=0))
    t = np.linspace(0, 10, 10001)
    v = evaluate_curve(track, t)
    assert v.min() >= 0 and v.max() == pytest.approx(1.0)
    closed = v > 0.5
    runs = np.diff(closed.astype(int))
    lengths = (np.nonzero(runs == -1)[0] - np.nonzero(runs == 1)[0]) * 1e-3
    assert len(lengths) >= 1 and np.all((lengths > 0.03) & (lengths < 0.2))


def test_head_follows_speech_energy():
    t = np.linspace(0, 60, 6001)
    energy = (t > 30).astype(float)  # silent, then talking
    tracks = {tr.channel: tr for tr in head_tracks(60, t, energy, [], HeadSettings())}
    grid = np.linspace(0, 60, 6001)
    for ch in ("head_yaw", "head_pitch", "head_roll"):
        v = evaluate_curve(tracks[ch], grid)
        assert np.abs(v).max() < 0.15
        quiet, talk = v[(grid > 2) & (grid < 28)], v[(grid > 32) & (grid < 58)]
        assert np.std(talk) > 2 * np.std(quiet)


def test_head_nods_at_accents():
    t = np.linspace(0, 4, 401)
    calm = HeadSettings(yaw=0, pitch=0, roll=0)
    tracks = {tr.channel: tr
              for tr in head_tracks(4, t, np.ones_like(t), [1.0, 3.0], calm)}
    v = evaluate_curve(tracks["head_pitch"], np.array([0.5, 1.12, 2.0, 3.12]))
    assert v[1] > 0.04 and v[3] > 0.04 and abs(v[0]) < 0.005 and abs(v[2]) < 0.005


def test_speech_blinks_and_head(speech):
    tracks = {tr.channel: tr for tr in animate_speech(
        speech.phonemes, speech.duration, words=speech.words,
        sentence_ends=speech.sentence_ends, audio=speech.audio, sample_rate=speech.sample_rate)}
    blink = evaluate_curve(tracks["blink"], np.linspace(0, speech.duration, 2000))
    assert blink.max() > 0.9  # a blink after the first sentence at least
    yaw = evaluate_curve(tracks["head_yaw"], np.linspace(0, speech.duration, 500))
    assert 0.005 < np.abs(yaw).max() < 0.15

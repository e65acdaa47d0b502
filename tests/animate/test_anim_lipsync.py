"""Speech → mouth: open on vowels, closed on p/b/m, at the times the phonemes say."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.animate import AnimationSettings, LipSyncSettings, animate_speech, evaluate_curve
from studio.animate.lipsync import viseme_curves
from studio.animate.visemes import VISEMES, phoneme_to_visemes, visemes_from_phones

VOWEL_VISEMES = {"aa", "E", "ih", "oh", "ou"}


def channels(tracks):
    return {tr.channel: tr for tr in tracks}


@pytest.mark.parametrize(
    "phoneme, visemes",
    [("p", ("PP",)), ("b", ("PP",)), ("m", ("PP",)), ("M", ("PP",)), ("f", ("FF",)),
     ("θ", ("TH",)), ("d", ("DD",)), ("k", ("kk",)), ("ʃ", ("CH",)), ("dʒ", ("CH",)),
     ("JH", ("CH",)), ("s", ("SS",)), ("n", ("nn",)), ("ɹ", ("RR",)), ("ɑː", ("aa",)),
     ("ɛ", ("E",)), ("iː", ("ih",)), ("ɔ", ("oh",)), ("uː", ("ou",)), ("aɪ", ("aa", "ih")),
     ("AY1", ("aa", "ih")), ("OW", ("oh", "ou")), ("_", ("sil",)), ("SIL", ("sil",)),
     ("h", ("next",)), ("HH", ("next",)), ("ɚ", ("RR",)), ("w", ("ou",))],
)
def test_phoneme_to_viseme(phoneme, visemes):
    assert phoneme_to_visemes(phoneme) == visemes


def test_viseme_spans_split_diphthongs_and_give_h_the_next_shape():
    spans = visemes_from_phones([("h", 0.0, 0.1), ("aɪ", 0.1, 0.3), ("_", 0.3, 0.5)])
    assert [(s.viseme, s.start, s.end) for s in spans] == [
        ("aa", 0.0, pytest.approx(0.22)), ("ih", pytest.approx(0.22), 0.3), ("sil", 0.3, 0.5)]


@pytest.mark.parametrize("which", ["speech", "neural_speech"])
def test_mouth_opens_on_vowels_and_closes_on_bilabials(which, request):
    speech = request.getfixturevalue(which)
    settings = AnimationSettings(blinks=False, head_motion=False)
    lead = settings.lip.anticipation
    tracks = channels(animate_speech(speech.phonemes, speech.duration, settings=settings))
    opened, closed = tracks["mouth_open"], tracks["lips_closed"]
    bilabials = [p for p in speech.phonemes if phoneme_to_visemes(p.phoneme) == ("PP",)]
    vowels = [p for p in speech.phonemes
              if set(phoneme_to_visemes(p.phoneme)) <= VOWEL_VISEMES and p.duration > 0.06]
    assert len(bilabials) >= 8 and len(vowels) >= 8
    for p in bilabials:  # during every p/b/m (the mouth leads the sound by `lead`)
        t = np.linspace(p.start - lead, p.end - lead, 20)
        assert evaluate_curve(closed, t).max() > 0.9, p
        assert evaluate_curve(opened, t).min() < 0.1, p
    open_at_vowels = [evaluate_curve(opened, (p.start + p.end) / 2 - lead)[0] for p in vowels]
    closed_at_vowels = [evaluate_curve(closed, (p.start + p.end) / 2 - lead)[0] for p in vowels]
    assert min(open_at_vowels) > 0.2 and np.mean(open_at_vowels) > 0.4
    assert np.mean(closed_at_vowels) < 0.3
    # in the long pauses the mouth rests
    for p in speech.phonemes:
        if p.phoneme == "_" and p.duration > 0.3:
            mid = (p.start + p.end) / 2
            assert evaluate_curve(opened, mid)[0] < 0.05


def test_timing_follows_the_phonemes():
    """Move one bilabial later: the closure moves with it."""
    phones = [("_", 0, 0.2), ("ɑː", 0.2, 0.5), ("m", 0.5, 0.6), ("ɑː", 0.6, 0.9), ("_", 0.9, 1.2)]
    later = [("_", 0, 0.2), ("ɑː", 0.2, 0.7), ("m", 0.7, 0.8), ("ɑː", 0.8, 0.9), ("_", 0.9, 1.2)]
    s = LipSyncSettings(viseme_channels=False)
    for ph, centre in ((phones, 0.55), (later, 0.75)):
        t, curves = viseme_curves(visemes_from_phones(ph), 1.2, s)
        shut = t[curves["lips_closed"] > 0.95]
        assert abs(shut.mean() - (centre - s.anticipation)) < 0.01
        assert shut.max() - shut.min() >= 0.04
        assert curves["mouth_open"][np.searchsorted(t, 0.35)] > 0.8


def test_intensity_and_viseme_channels(speech):
    low = channels(animate_speech(speech.phonemes, speech.duration, settings=AnimationSettings(
        blinks=False, head_motion=False, lip=LipSyncSettings(intensity=0.5))))
    full = channels(animate_speech(speech.phonemes, speech.duration, settings=AnimationSettings(
        blinks=False, head_motion=False)))
    t = np.linspace(0, speech.duration, 500)
    assert evaluate_curve(low["mouth_open"], t).max() == pytest.approx(
        0.5 * evaluate_curve(full["mouth_open"], t).max(), rel=0.05)
    assert {f"viseme.{v}" for v in VISEMES} <= set(full)
    weights = np.sum([evaluate_curve(full[f"viseme.{v}"], t) for v in VISEMES], axis=0)
    assert np.all(np.abs(weights - 1) < 0.1)  # the viseme weights share one mouth
    json.dumps([c.to_dict() for c in full.values()])  # every curve has a JSON form


def test_switches(speech):
    none = animate_speech(speech.phonemes, speech.duration,
                          settings=AnimationSettings(lipsync=False, blinks=False,
                                                     head_motion=False))
    assert none == []
    only_head = channels(animate_speech(speech.phonemes, speech.duration,
                                        settings=AnimationSettings(lipsync=False, blinks=False)))
    assert set(only_head) == {"head_yaw", "head_pitch", "head_roll"}


def test_accepts_timings_dicts_and_aligner_phones():
    phones = [{"phoneme": "SIL", "start": 0, "end": 0.2}, {"phoneme": "M", "start": 0.2,
              "end": 0.3}, {"phoneme": "AA1", "start": 0.3, "end": 0.6},
              {"phoneme": "P", "start": 0.6, "end": 0.7}, {"phoneme": "SIL", "start": 0.7,
                                                           "end": 1.0}]
    tracks = channels(animate_speech(phones, settings=AnimationSettings(head_motion=False)))
    assert evaluate_curve(tracks["mouth_open"], 0.42)[0] > 0.7
    assert evaluate_curve(tracks["lips_closed"], 0.62)[0] > 0.9
    assert tracks["blink"].times[-1] == pytest.approx(1.0)

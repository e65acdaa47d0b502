"""Forced alignment with PocketSphinx: a piper rendering of known text, resampled and with
noise, must give word boundaries within 50 ms of the truth on average."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.voice.align import ALIGN_SILENCE, align_audio
from studio.voice.resample import resample
from studio.voice.synth import synthesize

TEXT = "The quick brown fox jumps over the lazy dog. My name is Alexandra, I live at 42 Baker Street."


def degrade(result, rate=44100, snr_db=25.0, seed=0):
    """Resample to another rate and add white noise at ``snr_db``."""
    audio = resample(result.audio, result.sample_rate, rate)
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=len(audio)) * np.sqrt(np.mean(audio**2)) * 10 ** (-snr_db / 20)
    return (audio + noise).astype(np.float32), rate


def boundary_errors(truth, aligned):
    t = np.array([[w.start, w.end] for w in truth])
    a = np.array([[w.start, w.end] for w in aligned])
    return np.abs(t - a) * 1000.0


@pytest.fixture(scope="module")
def rendering():
    return synthesize(TEXT, "joe", cache=None)


def test_alignment_matches_truth_within_50ms(rendering):
    audio, rate = degrade(rendering)
    result = align_audio(audio, rate, TEXT)
    assert [w.word for w in result.words] == [w.word for w in rendering.words]
    errors = boundary_errors(rendering.words, result.words)
    assert errors.mean() < 50.0, errors.round()
    assert np.median(errors) < 40.0
    # phones: ARPAbet, tiling the audio, inside their words
    phones = result.phonemes
    assert phones[0].start == 0 and phones[-1].end == pytest.approx(len(audio) / rate)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:], strict=False))
    labels = {p.phoneme for p in phones}
    assert ALIGN_SILENCE in labels and {"K", "W", "IH", "B", "R"} <= labels
    fox = result.words[3]
    inside = [p.phoneme for p in phones if fox.start - 1e-6 <= p.start < fox.end - 1e-6]
    assert inside == ["F", "AA", "K", "S"]
    # "42" is not in the dictionary: eSpeak's pronunciation is used
    forty_two = result.words[[w.word for w in result.words].index("42")]
    assert forty_two.duration > 0.3


def test_alignment_errors_are_clear(rendering):
    audio, rate = degrade(rendering, rate=16000)
    with pytest.raises(StudioError, match="no words"):
        align_audio(audio, rate, "...")
    with pytest.raises(StudioError, match="too short"):
        align_audio(audio[:100], rate, "hello")

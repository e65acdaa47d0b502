"""Long recordings are aligned window by window (issue 9): PocketSphinx aligning 20 minutes
in one utterance died with ``malloc(-1056484304)``. Here about a minute of speech with a
20 s single-pass limit and 12 s windows: several windows, and the accuracy of one pass."""

from __future__ import annotations

import numpy as np
import pytest

from studio.voice import align
from studio.voice.synth import synthesize

TEXT = (
    "The studio makes a face, gives it a voice, and animates it on a timeline. "
    "Each of the three models can be trained again on your own photos and recordings. "
    "Everything runs on this computer, with the graphics card when there is one. "
    "A project keeps the avatar, the voice and the timeline in one small file. "
    "Saves are atomic, and a backup of the last good file is kept next to it. "
    "When the program stops without warning, it offers to recover your work. "
    "The voice panel speaks any text, with pauses and emphasis where you mark them. "
    "Lip sync curves follow the phonemes, and the eyes blink after most sentences. "
    "The head sways a little while the voice is talking, and nods on stressed words. "
    "A recording of your own can be aligned to its transcript in the same way. "
    "Long recordings are cut into windows, so that memory stays small and steady. "
    "Twenty minutes of speech take about as long to align as they take to listen to. "
    "Rendering writes the frames and the mixed audio into a video file. "
    "That is all there is to it; now make something worth watching."
)


@pytest.fixture(scope="module")
def long_speech():
    return synthesize(TEXT, "joe", cache=None)


@pytest.mark.slow
def test_long_recording_is_aligned_in_windows(long_speech, monkeypatch):
    speech = long_speech
    assert speech.duration > 45
    windows = []
    original = align._align_window

    def spy(decoder, a16, t0, words, ctx, report):
        windows.append((t0, len(a16) / align.ALIGN_RATE, len(words)))
        return (yield from original(decoder, a16, t0, words, ctx, report))

    monkeypatch.setattr(align, "_align_window", spy)
    monkeypatch.setattr(align, "SINGLE_PASS_SECONDS", 20.0)
    monkeypatch.setattr(align, "WINDOW_SECONDS", 12.0)
    result = align.align_audio(speech.audio, speech.sample_rate, TEXT)
    assert len(windows) >= 4
    assert max(length for _, length, _ in windows) <= 2 * align.WINDOW_SECONDS
    assert [t0 for t0, _, _ in windows] == sorted(t0 for t0, _, _ in windows)
    assert [w.word for w in result.words] == [w.word for w in speech.words]
    truth = np.array([[w.start, w.end] for w in speech.words])
    got = np.array([[w.start, w.end] for w in result.words])
    errors = np.abs(truth - got) * 1000
    assert errors.mean() < 50, errors.round()
    assert np.median(errors) < 40
    phones = result.phonemes
    assert phones[0].start == 0 and phones[-1].end == pytest.approx(speech.duration)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:], strict=False))
    assert len(result.sentence_ends) == TEXT.count(".")  # one per sentence

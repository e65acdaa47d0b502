"""Speech timings for the animation tests."""

from __future__ import annotations

import pytest

TEXT = "Bob made a big map of Bombay. Maybe we meet at the pub, Peter!"


@pytest.fixture(scope="session")
def speech():
    """eSpeak speech (fast) with phoneme timings."""
    from studio.voice.synth import synthesize

    return synthesize(TEXT, "espeak:en-us", cache=None)


@pytest.fixture(scope="session")
def neural_speech():
    from studio.voice.synth import synthesize

    return synthesize(TEXT, "joe", cache=None)

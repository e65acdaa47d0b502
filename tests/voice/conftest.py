"""Shared speech renderings for the voice tests (made once per session: piper is slow)."""

from __future__ import annotations

import pytest

HELLO = "Hello, I am your digital human. Peter bought a map!"


@pytest.fixture(scope="session")
def joe_speech():
    from studio.voice.synth import synthesize

    return synthesize(HELLO, "joe", cache=None)


@pytest.fixture(scope="session")
def espeak_speech():
    from studio.voice.synth import synthesize

    return synthesize(HELLO, "espeak:en-us", cache=None)


@pytest.fixture(scope="session")
def hello_text():
    return HELLO

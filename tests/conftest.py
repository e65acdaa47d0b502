"""Every test runs with its own studio home (settings, recovery, user models) and offscreen Qt."""

from __future__ import annotations

import gc
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def studio_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("studio_home")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


@pytest.fixture(autouse=True, scope="session")
def _collect_garbage_on_the_main_thread():
    """As the app does (studio/ui/main_thread_gc.py): no automatic collection, which could
    free a closed window's Qt objects from a preview or playback worker thread and crash;
    collect on the main thread after each test instead (see below)."""
    gc.disable()
    yield
    gc.enable()


@pytest.fixture(autouse=True)
def _collect_after_each_test():
    yield
    gc.collect()

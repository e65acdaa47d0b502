"""The GUI must not lose references to None, True or False.

PySide6 6.12.0 drops one reference to None for every call that returns None (and to the
bools for calls returning them). Python 3.11 can free None, so the app aborted with
"Fatal Python error: none_dealloc" after a few dozen timeline edits. This runs under the
exact Python and PySide6 that installer/setup.sh installs (CI runs `make test` in .venv).
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from studio.core.project import Clip, CurveTrack, Key

# Some slack for objects that legitimately come and go (caches, pending events); a leaking
# binding loses thousands over the loops below.
TOLERANCE = 200


def _counts() -> tuple[int, int, int]:
    gc.collect()
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def _lost(before, after) -> dict[str, int]:
    return {name: b - a for name, b, a in zip(("None", "True", "False"), before, after,
                                              strict=True)}


def test_plain_pyside_calls_keep_none_and_bools(qtbot):
    label = QLabel("x")
    qtbot.addWidget(label)
    before = _counts()
    for i in range(3000):
        label.setText(str(i))  # returns None
        label.isVisible()  # returns a bool
        label.isEnabled()
    lost = _lost(before, _counts())
    assert max(lost.values()) < TOLERANCE, f"PySide6 loses references: {lost}"


def _tracks(n: int, salt: int) -> list[CurveTrack]:
    return [CurveTrack(channel=f"ch{i}", keys=[Key(t=0, v=0), Key(t=1, v=(i + salt) % 3 / 2),
                                              Key(t=2, v=0)]) for i in range(n)]


def test_window_edits_and_redraws_keep_none_and_bools(window, qtbot):
    doc = window.document
    face = window.panels["face"]
    before = _counts()
    for i in range(60):
        # timeline edits: every one redraws the tracks, clips and curves
        doc.set_many({("timeline", "tracks"): _tracks(23, i),
                      ("timeline", "clips"): [Clip(kind="speech", start=0.1 * i, duration=1.0,
                                                   text=f"line {i}")]},
                     f"edit {i}")
        if i % 3 == 0:
            window.act_undo.trigger()
            window.act_redo.trigger()
        # face panel edits: spin box steps and checkbox toggles
        face.seed.stepUp()
        face.mix_on.setChecked(not face.mix_on.isChecked())
        window.grab()  # a full repaint of every widget
    qtbot.waitUntil(lambda: face.seed.value() >= 60, timeout=5000)
    window.statusBar().showMessage("done")
    face.mix_on.setCheckState(Qt.CheckState.Unchecked)
    lost = _lost(before, _counts())
    assert max(lost.values()) < TOLERANCE, f"the GUI loses references: {lost}"

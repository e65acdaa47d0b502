"""The dark theme draws every control: spin-box arrows, file-dialog icons, splitter handles."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QSpinBox, QSplitter, QToolButton

from studio.ui.app import apply_theme
from studio.ui.imageutil import from_qimage


@pytest.fixture
def themed(qtbot):
    apply_theme(QApplication.instance())
    yield
    QApplication.instance().setStyleSheet("")


def _pixels(widget) -> np.ndarray:
    return from_qimage(widget.grab().toImage())[..., :3].astype(int)


def test_spin_boxes_show_up_and_down_arrows(themed, qtbot):
    spin = QSpinBox()
    spin.setRange(0, 100)
    spin.setValue(50)
    spin.resize(120, 28)
    qtbot.addWidget(spin)
    spin.show()
    qtbot.waitExposed(spin)
    img = _pixels(spin)
    h = img.shape[0]
    buttons = img[:, -17:-2]
    # light arrow strokes in both halves of the button column, on a dark field
    assert (buttons[: h // 2].max(axis=2) > 150).sum() >= 6
    assert (buttons[h // 2:].max(axis=2) > 150).sum() >= 6


def test_file_dialog_tool_buttons_show_their_icons(themed, qtbot, tmp_path):
    dialog = QFileDialog(None, "Open", str(tmp_path))
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.resize(700, 300)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    for name in ("toParentButton", "newFolderButton", "listModeButton", "detailModeButton"):
        button = dialog.findChild(QToolButton, name)
        assert button is not None, name
        img = _pixels(button)
        inner = img[4:-4, 4:-4]
        background = np.median(inner.reshape(-1, 3), axis=0)
        drawn = (np.abs(inner - background).sum(axis=2) > 60).sum()
        assert drawn >= 20, f"{name}: icon not drawn ({drawn} pixels)"


def test_splitter_handles_are_plain(themed, qtbot):
    splitter = QSplitter()
    splitter.addWidget(QLabel("a"))
    splitter.addWidget(QLabel("b"))
    splitter.resize(200, 120)
    qtbot.addWidget(splitter)
    splitter.show()
    qtbot.waitExposed(splitter)
    handle = splitter.handle(1)
    img = _pixels(handle)
    assert img.reshape(-1, 3).std(axis=0).max() < 3  # no grip dots that read as a glyph

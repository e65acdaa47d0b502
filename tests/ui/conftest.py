from __future__ import annotations

import pytest

from studio.core.settings import Settings


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    from studio.ui.app import apply_theme
    from studio.ui.main_window import MainWindow

    apply_theme(QApplication.instance())
    from PySide6.QtWidgets import QMessageBox

    w = MainWindow(Settings(), offer_recovery=False)
    # never block a test on a modal question when qtbot closes the window
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.document.history.mark_clean()
    w.close()

"""Create the QApplication with the studio's theme and open the main window."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from studio.core import paths
from studio.core.demo import first_start_project
from studio.core.document import Document
from studio.core.settings import load_settings
from studio.ui import main_thread_gc
from studio.ui.main_window import MainWindow


def _dark_palette() -> QPalette:
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#1e1f22", QPalette.ColorRole.WindowText: "#d8dade",
        QPalette.ColorRole.Base: "#16171a", QPalette.ColorRole.AlternateBase: "#202226",
        QPalette.ColorRole.Text: "#d8dade", QPalette.ColorRole.Button: "#2f3237",
        QPalette.ColorRole.ButtonText: "#d8dade", QPalette.ColorRole.Highlight: "#3a5f99",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#2f3237",
        QPalette.ColorRole.ToolTipText: "#d8dade", QPalette.ColorRole.PlaceholderText: "#6c717a",
    }
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    return pal


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        app = QApplication(argv or [sys.argv[0]])
    app.setApplicationName("Digital Human Studio")
    app.setOrganizationName("Digital Human Studio")
    apply_theme(app)
    main_thread_gc.install(app)  # Qt objects must never be freed by a worker thread
    return app


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(_dark_palette())
    qss = paths.resources_dir() / "dark.qss"
    if qss.exists():
        # url(icons/...) in the sheet is relative to the resources folder, wherever we run
        icons = (paths.resources_dir() / "icons").as_posix()
        app.setStyleSheet(qss.read_text(encoding="utf-8").replace("url(icons/", f"url({icons}/"))


def has_display() -> bool:
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_main_window(project: str | Path | None, offer_recovery: bool = True,
                     demo_on_first_start: bool = False) -> MainWindow:
    """Create the main window; raises StudioError if the project cannot be opened. With
    ``demo_on_first_start`` and no project, the very first start opens (a copy of) the
    demo project."""
    settings, warning = load_settings()
    if not project and demo_on_first_start:
        try:
            project = first_start_project(settings.recent_projects)
        except OSError as exc:  # a read-only data folder: start empty, say why
            warning = f"Could not copy the demo project: {exc}"
    document = Document.open(project) if project else Document()
    window = MainWindow(settings, document, offer_recovery=offer_recovery)
    if project:
        settings.add_recent(document.path)
    if warning:
        window.show_status(warning, 15000)
    return window


def wait_until_ready(app: QApplication, window: MainWindow, timeout_s: float = 120.0) -> bool:
    """Process events until every panel that renders (e.g. the face preview) has drawn."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        pending = [p for p in window.panels.values()
                   if hasattr(p, "is_ready") and not p.is_ready()]
        if not pending:
            for _ in range(5):
                app.processEvents()
                time.sleep(0.02)
            return True
        time.sleep(0.02)
    return False

"""The Models panel: every model the studio can see, where it lives, and broken files."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.app import ModelRegistry
from studio.core.model_registry import ModelEntry

KIND_TITLES = {"face": "Face GANs", "voice": "Voices (Piper)", "refiner": "Diffusion refiners"}


def model_size(path: Path) -> int | None:
    """Bytes on disk: the file, or every file below a folder (diffusers); None if unreadable.
    A Piper voice counts its ``.onnx.json`` too."""
    try:
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        size = path.stat().st_size
        config = path.with_name(path.name + ".json")
        if path.suffix == ".onnx" and config.is_file():
            size += config.stat().st_size
        return size
    except OSError:
        return None


def format_size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


class ModelsPanel(QWidget):
    def __init__(self, models: ModelRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models = models
        self.tree = QTreeWidget()
        self.tree.setObjectName("modelsTree")
        self.tree.setHeaderLabels(["Model", "Details", "Location"])
        self.tree.setColumnWidth(0, 180)
        self.problems = QLabel()
        self.problems.setObjectName("missing")
        self.problems.setWordWrap(True)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        refresh = QPushButton("Rescan")
        refresh.setToolTip("Look for models in the model folders again")
        refresh.clicked.connect(self.refresh)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(refresh)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.problems)
        layout.addLayout(row)
        self.entries: list[ModelEntry] = []
        models.changed.connect(self._show)
        self._show()

    def refresh(self) -> None:
        """Scan the folders again (every panel that lists models hears of it)."""
        self.models.refresh()

    def _show(self) -> None:
        self.entries = self.models.entries
        problems = self.models.problems
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        for kind, title in KIND_TITLES.items():
            group = QTreeWidgetItem([title, "", ""])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(group)
            groups[kind] = group
        for e in self.entries:
            details = ", ".join(f"{k}: {v}" for k, v in e.details.items() if v not in (None, ""))
            size = format_size(model_size(Path(e.path)))
            item = QTreeWidgetItem([e.name, details, str(e.path)])
            item.setToolTip(0, f"{e.name}\n{e.path}\n{size}")
            item.setToolTip(1, "\n".join(part for part in (details, size) if part))
            item.setToolTip(2, f"{e.path}\n{size}")
            item.setData(0, Qt.ItemDataRole.UserRole, os.fspath(e.path))
            groups.setdefault(e.kind, QTreeWidgetItem([e.kind])).addChild(item)
        for kind, group in groups.items():
            if group.childCount() == 0:
                none = QTreeWidgetItem(["(none found)", "", ""])
                none.setFlags(Qt.ItemFlag.NoItemFlags)
                group.addChild(none)
            group.setText(1, f"{sum(1 for e in self.entries if e.kind == kind)} found")
        self.tree.expandAll()
        self.problems.setText("\n".join(problems[:20]))
        self.problems.setToolTip("\n".join(problems))
        self.problems.setVisible(bool(problems))

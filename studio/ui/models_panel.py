"""The Models panel: every model the studio can see, where it lives, and broken files."""

from __future__ import annotations

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

from studio.core.model_registry import ModelEntry, scan_models
from studio.core.settings import Settings

KIND_TITLES = {"face": "Face GANs", "voice": "Voices (Piper)", "refiner": "Diffusion refiners"}


class ModelsPanel(QWidget):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.tree = QTreeWidget()
        self.tree.setObjectName("modelsTree")
        self.tree.setHeaderLabels(["Model", "Details", "Location"])
        self.tree.setColumnWidth(0, 180)
        self.problems = QLabel()
        self.problems.setObjectName("missing")
        self.problems.setWordWrap(True)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        refresh = QPushButton("Rescan")
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
        self.refresh()

    def extra_entries(self) -> list[ModelEntry]:
        """Models that ship inside packages (e.g. the default Piper voice)."""
        from studio.voice.voices import packaged_voice_entries

        return packaged_voice_entries()

    def refresh(self) -> None:
        entries, problems = scan_models(self.settings.all_model_dirs())
        self.entries = entries + self.extra_entries()
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        for kind, title in KIND_TITLES.items():
            group = QTreeWidgetItem([title, "", ""])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(group)
            groups[kind] = group
        for e in self.entries:
            details = ", ".join(f"{k}: {v}" for k, v in e.details.items() if v not in (None, ""))
            item = QTreeWidgetItem([e.name, details, str(e.path)])
            item.setToolTip(2, str(e.path))
            groups.setdefault(e.kind, QTreeWidgetItem([e.kind])).addChild(item)
        for kind, group in groups.items():
            if group.childCount() == 0:
                none = QTreeWidgetItem(["(none found)", "", ""])
                none.setFlags(Qt.ItemFlag.NoItemFlags)
                group.addChild(none)
            group.setText(1, f"{sum(1 for e in self.entries if e.kind == kind)} found")
        self.tree.expandAll()
        self.problems.setText("\n".join(problems[:20]))
        self.problems.setVisible(bool(problems))

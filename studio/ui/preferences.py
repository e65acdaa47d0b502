"""Preferences dialog bound to the user settings."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.devices import DEVICE_CHOICES, PRECISION_CHOICES, select_device
from studio.core.settings import Settings


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("preferences")
        self.settings = settings
        self.device = QComboBox()
        self.device.addItems(DEVICE_CHOICES)
        self.device.setCurrentText(settings.device)
        self.precision = QComboBox()
        self.precision.addItems(PRECISION_CHOICES)
        self.precision.setCurrentText(settings.precision)
        self.resolved = QLabel()
        self.resolved.setObjectName("hint")
        self.device.currentTextChanged.connect(self._update_resolved)
        self.precision.currentTextChanged.connect(self._update_resolved)
        self.autosave = QSpinBox()
        self.autosave.setRange(5, 3600)
        self.autosave.setSuffix(" s")
        self.autosave.setValue(settings.autosave_interval_s)
        self.low_res = QCheckBox("Show a low-resolution preview first while dragging")
        self.low_res.setChecked(settings.preview_low_res_first)
        self.dirs = QListWidget()
        self.dirs.addItems(settings.model_dirs)
        add = QPushButton("Add folder…")
        remove = QPushButton("Remove")
        add.clicked.connect(self._add_dir)
        remove.clicked.connect(lambda: [self.dirs.takeItem(self.dirs.row(i))
                                        for i in self.dirs.selectedItems()])
        dir_buttons = QHBoxLayout()
        dir_buttons.addWidget(add)
        dir_buttons.addWidget(remove)
        dir_buttons.addStretch(1)
        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("", self.resolved)
        form.addRow("Autosave every", self.autosave)
        form.addRow("", self.low_res)
        form.addRow("Extra model folders", self.dirs)
        form.addRow("", dir_buttons)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._update_resolved()

    def _update_resolved(self) -> None:
        choice = select_device(self.device.currentText(), self.precision.currentText())
        self.resolved.setText(f"Will use {choice.label} ({choice.reason})")

    def _add_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.dirs.addItem(folder)

    def apply(self) -> None:
        """Write the dialog's values into the settings object."""
        s = self.settings
        s.device = self.device.currentText()
        s.precision = self.precision.currentText()
        s.autosave_interval_s = self.autosave.value()
        s.preview_low_res_first = self.low_res.isChecked()
        s.model_dirs = [self.dirs.item(i).text() for i in range(self.dirs.count())]

"""The voice picker: a searchable, grouped list of voices with an Import button.

It only shows and reports: ``chosen(id)`` when the user picks a voice (from the list, or
by typing part of a name or a language code and pressing Enter), ``import_clicked`` for
the Import button. The Voice panel turns a choice into an undoable document edit and
calls :meth:`VoicePicker.show_voice` when the document changes.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, QStringListModel, Qt, Signal
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.voice.library import VoiceEntry, find_entry, normalize_voice_id

ID_ROLE = Qt.ItemDataRole.UserRole
GROUPS = (("neural", "Neural voices (Piper)"), ("espeak", "eSpeak NG (robotic, many languages)"))
INDENT = "   "


class VoicePicker(QGroupBox):
    chosen = Signal(str)  # a voice id the user picked
    import_clicked = Signal()
    message = Signal(str)  # something to show in the status bar

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Voice", parent)
        self.entries: list[VoiceEntry] = []
        self.current = ""
        self.combo = QComboBox()
        self.combo.setObjectName("voiceCombo")
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setMaxVisibleItems(20)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumContentsLength(12)
        self.combo.lineEdit().setPlaceholderText("Type to search the voices…")
        self.combo.setToolTip("The voice. Type part of a name or a language code "
                              "(e.g. “de”, “French”) and press Enter to pick it.")
        self.model = QStandardItemModel(self)
        self.combo.setModel(self.model)
        self.completer_model = QStringListModel(self)
        self.completer = QCompleter(self.completer_model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.completer.setMaxVisibleItems(12)
        self.combo.setCompleter(self.completer)
        self.completer.activated[str].connect(self._on_typed)
        self.combo.currentIndexChanged.connect(self._on_index)
        edit = self.combo.lineEdit()
        edit.returnPressed.connect(lambda: self._on_typed(edit.text()))
        edit.editingFinished.connect(self._on_editing_finished)
        self.import_btn = QPushButton("Import…")
        self.import_btn.setObjectName("importVoiceButton")
        self.import_btn.setToolTip("Import a Piper voice: its .onnx model and the .onnx.json "
                                   "next to it are copied into your voices.")
        self.import_btn.clicked.connect(self.import_clicked)
        self.info = QLabel("")
        self.info.setObjectName("hint")
        # one line, clipped when narrow (a wrapping label makes the dock's scroll area
        # size the panel by its preferred height); the tooltip has the whole text
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(self.import_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)
        layout.addLayout(row)
        layout.addWidget(self.info)

    def set_entries(self, entries: list[VoiceEntry]) -> None:
        """Fill the list: one bold, unselectable heading per group."""
        self.entries = list(entries)
        header_font = QFont()
        header_font.setBold(True)
        with QSignalBlocker(self.combo):
            self.model.clear()
            for group, title in GROUPS:
                members = [e for e in self.entries if e.group == group]
                if not members:
                    continue
                header = QStandardItem(title)
                header.setFlags(Qt.ItemFlag.NoItemFlags)
                header.setFont(header_font)
                self.model.appendRow(header)
                for e in members:
                    item = QStandardItem(INDENT + e.label)
                    item.setData(e.id, ID_ROLE)
                    item.setToolTip(e.tooltip)
                    self.model.appendRow(item)
        self.completer_model.setStringList([e.label for e in self.entries])
        view = self.combo.view()
        view.setMinimumWidth(min(480, view.sizeHintForColumn(0) + 28))
        self.completer.popup().setMinimumWidth(view.minimumWidth())
        if self.current:
            self.show_voice(self.current)

    def entry(self, voice_id: str) -> VoiceEntry | None:
        want = normalize_voice_id(voice_id)
        return next((e for e in self.entries if e.id == want), None)

    def label(self, voice_id: str) -> str:
        entry = self.entry(voice_id)
        return entry.label if entry else voice_id

    def _row_of(self, voice_id: str) -> int:
        for row in range(self.model.rowCount()):
            if self.model.item(row).data(ID_ROLE) == voice_id:
                return row
        return -1

    def show_voice(self, voice_id: str) -> None:
        """Show ``voice_id`` as the current voice (no signal). A voice the list lacks
        (a project from another machine, an eSpeak variant) is added so it stays visible."""
        voice_id = normalize_voice_id(voice_id)
        self.current = voice_id
        row = self._row_of(voice_id)
        with QSignalBlocker(self.combo):
            if row < 0:
                item = QStandardItem(INDENT + voice_id)
                item.setData(voice_id, ID_ROLE)
                item.setToolTip("The project's voice (not among the voices found here)")
                self.model.appendRow(item)
                row = self.model.rowCount() - 1
            self.combo.setCurrentIndex(row)
            self.combo.setEditText(self.label(voice_id))
        entry = self.entry(voice_id)
        if entry is None:
            self.info.setText(f"{voice_id}: not found on this machine")
            self.info.setToolTip("Pick another voice, or import this Piper voice.")
        else:
            self.info.setText(entry.summary or entry.tooltip.splitlines()[0])
            self.info.setToolTip(entry.tooltip)

    def _on_index(self, row: int) -> None:
        item = self.model.item(row) if 0 <= row < self.model.rowCount() else None
        voice_id = item.data(ID_ROLE) if item is not None else None
        if voice_id:
            self.chosen.emit(voice_id)
        self.show_voice(self.current)  # until the document says otherwise

    def _on_typed(self, text: str) -> None:
        entry = find_entry(self.entries, text)
        if entry is None:
            if text.strip() and text.strip() != self.label(self.current):
                self.message.emit(f"No single voice matches “{text.strip()}”")
            self.show_voice(self.current)
            return
        self.chosen.emit(entry.id)
        self.show_voice(self.current)

    def _on_editing_finished(self) -> None:
        if not self.completer.popup().isVisible():
            self.show_voice(self.current)

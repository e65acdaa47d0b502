"""The Voice panel: pick a voice, shape it, speak text, put speech on the timeline.

Every setting edit goes through the document (one undo step per slider drag); synthesis,
alignment, voice import and file writing run as jobs on the runner's threads; playback
runs through :class:`~studio.ui.audio_player.AudioPlayer` and is simply off (with a
message in the status bar) on machines without an audio device.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind, JobState, Progress
from studio.core.project import VoiceSettings as ProjectVoice
from studio.timeline.speech import (
    SpeechForTimeline,
    add_speech_command,
    recording_to_timeline_job,
    speech_to_timeline_job,
)
from studio.ui.audio_player import AudioPlayer
from studio.ui.context import StudioContext
from studio.ui.delivery_box import SLIDERS, DeliveryBox
from studio.ui.voice_picker import VoicePicker
from studio.ui.waveform_view import WaveformView
from studio.voice.library import (
    engine_of,
    import_voice_job,
    normalize_voice_id,
    voice_entries,
    voice_folders,
)
from studio.voice.types import SpeechResult

AUDIO_FILTER = "Recordings (*.wav *.flac *.mp3 *.ogg *.oga *.opus *.aiff *.aif *.m4a);;All files (*)"
VOICE_FILTER = "Piper voices (*.onnx);;All files (*)"
SAVE_FIRST = (
    "Save the project first.\n\n"
    "Speech on the timeline is stored as audio files in the project's folder (audio/), "
    "so the project needs a folder. Save it now and the {what} is added right after.\n\n"
    "Nothing was changed yet; your text is still in the box."
)
TEXT_LINES = 4  # the speech box's first height, in lines (the splitter resizes it)


class SpeechTextEdit(QPlainTextEdit):
    """The speech text box: a few lines high at first (the splitter under the sliders
    resizes it), and never shorter than its placeholder, wrapped at the box's width."""

    _last_width = -1

    def _frame_extra(self) -> int:
        m = self.contentsMargins()
        return int(2 * self.document().documentMargin() + m.top() + m.bottom()) + 1

    def _placeholder_height(self) -> int:
        margin = int(self.document().documentMargin())
        width = max(40, self.viewport().width() - 2 * margin)
        rect = self.fontMetrics().boundingRect(QRect(0, 0, width, 100_000),
                                               int(Qt.TextFlag.TextWordWrap),
                                               self.placeholderText())
        return rect.height()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        lines = self.fontMetrics().lineSpacing() * TEXT_LINES
        return QSize(super().sizeHint().width(),
                     max(lines, self._placeholder_height()) + self._frame_extra())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        two_lines = 2 * self.fontMetrics().lineSpacing()
        return QSize(super().minimumSizeHint().width(),
                     max(two_lines, self._placeholder_height()) + self._frame_extra())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if event.size().width() != self._last_width:  # the placeholder wraps differently
            self._last_width = event.size().width()
            self.updateGeometry()


class VoicePanel(QWidget):
    speech_ready = Signal(object)  # SpeechResult now shown in the waveform
    timeline_added = Signal(object)  # the Clip that was added
    voices_reloaded = Signal()

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("voicePanel")
        self.ctx = ctx
        self.document = ctx.document
        self.last_speech: SpeechResult | None = None
        self._speak_job: Job | None = None
        self._task_job: Job | None = None  # add to timeline / import recording / import voice
        self._task_info: dict = {}
        self.player = AudioPlayer(self, probe=False)
        self._build()
        self.reload_voices()
        self._sync_from_document()
        self.document.changed.connect(self._on_document_changed)
        self.document.replaced.connect(self._sync_from_document)
        self.player.availability_changed.connect(self._on_audio_availability)
        self.player.position_changed.connect(self.waveform.set_playhead)
        self.player.started.connect(self._update_buttons)
        self.player.stopped.connect(self._update_buttons)
        self.player.probe()
        self._update_buttons()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        self.picker = VoicePicker()
        self.picker.chosen.connect(self.select_voice)
        self.picker.import_clicked.connect(lambda: self.import_voice())
        self.picker.message.connect(lambda text: self.ctx.show_status(text, 5000))
        self.voice_combo = self.picker.combo
        self.voice_info = self.picker.info
        self.import_voice_btn = self.picker.import_btn

        self.delivery = DeliveryBox()
        self.delivery.edited.connect(self._on_slider)
        self.delivery.released.connect(self.document.history.close_merge)
        self.delivery.reset_clicked.connect(self.reset_settings)
        self.sliders = self.delivery.sliders
        self.value_labels = self.delivery.value_labels
        self.reset_btn = self.delivery.reset_btn

        self.text_edit = SpeechTextEdit()
        self.text_edit.setObjectName("speechText")
        self.text_edit.setPlaceholderText(
            "What should the avatar say?  Tags: [pause 500ms], *emphasis*.\n"
            "Ctrl+Enter speaks.")
        self.text_edit.setTabChangesFocus(True)
        self.text_edit.textChanged.connect(self._update_buttons)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self.text_edit, activated=self.speak,
                      context=Qt.ShortcutContext.WidgetShortcut)
        self.speak_btn = QPushButton("Speak")
        self.speak_btn.setObjectName("primary")
        self.speak_btn.setAccessibleName("speakButton")
        self.speak_btn.clicked.connect(self.speak)
        self.play_btn = QPushButton("Play")
        self.play_btn.setObjectName("playButton")
        self.play_btn.clicked.connect(self.toggle_play)
        self.add_btn = QPushButton("Add to timeline")
        self.add_btn.setObjectName("addToTimelineButton")
        self.add_btn.setToolTip("Speak the text and add it as a clip with lip-sync, blink and "
                                "head animation at the end of the timeline (one undo step).")
        self.add_btn.clicked.connect(self.add_to_timeline)
        self.import_rec_btn = QPushButton("Import recording…")
        self.import_rec_btn.setObjectName("importRecordingButton")
        self.import_rec_btn.setToolTip(
            "Add a recording (WAV, FLAC, MP3, OGG) to the timeline. If the text box holds "
            "its transcript (English), the mouth follows the aligned phonemes; otherwise "
            "it follows the sound.")
        self.import_rec_btn.clicked.connect(lambda: self.import_recording())
        actions = QGridLayout()
        actions.setHorizontalSpacing(6)
        actions.setVerticalSpacing(6)
        actions.addWidget(self.speak_btn, 0, 0)
        actions.addWidget(self.play_btn, 0, 1)
        actions.addWidget(self.add_btn, 1, 0)
        actions.addWidget(self.import_rec_btn, 1, 1)

        self.waveform = WaveformView()
        self.waveform.clicked.connect(self._on_waveform_clicked)
        self.progress = QProgressBar()
        self.progress.setObjectName("voiceProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.progress.hide()
        self.info = QLabel("")
        self.info.setObjectName("hint")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        # the text box and the waveform share the height; the user drags the handle
        below = QWidget()
        below_layout = QVBoxLayout(below)
        below_layout.setContentsMargins(0, 0, 0, 0)
        below_layout.setSpacing(6)
        below_layout.addLayout(actions)
        below_layout.addWidget(self.waveform, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("speechSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.text_edit)
        self.splitter.addWidget(below)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.picker)
        layout.addWidget(self.delivery)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.info)

    # -- voices ---------------------------------------------------------------------------
    def folders(self) -> list[Path]:
        return voice_folders(self.ctx.settings.all_model_dirs())

    def reload_voices(self) -> None:
        """Rebuild the voice list (shipped, the user's Piper voices, eSpeak languages)."""
        entries, problems = voice_entries(self.folders())
        self.picker.set_entries(entries)
        if problems:
            self.ctx.show_status(problems[0], 10000)
        self.picker.show_voice(self.current_voice())
        self.voices_reloaded.emit()

    def current_voice(self) -> str:
        return normalize_voice_id(self.document.project.voice.voice)

    def select_voice(self, voice_id: str) -> None:
        """Make ``voice_id`` the project's voice (one undoable edit)."""
        voice_id = normalize_voice_id(voice_id)
        if voice_id != self.current_voice():
            self._set_many({("voice", "voice"): voice_id,
                            ("voice", "engine"): engine_of(voice_id)}, "Choose voice")

    def import_voice(self, path: str | Path | None = None) -> Job | None:
        """Import a Piper voice (.onnx + .onnx.json) into the user's voice folder."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import a Piper voice", "", VOICE_FILTER)
            if not path:
                return None
        return self._start_task(Job("Import voice", import_voice_job, Path(path),
                                    kind=JobKind.IMPORT), kind="voice", source=Path(path))

    # -- settings -------------------------------------------------------------------------
    def _set_many(self, values: dict, label: str) -> None:
        try:
            self.document.set_many(values, label)
        except StudioError as exc:
            self.ctx.report_error("Voice setting refused", str(exc))
        self.document.history.close_merge()
        self._sync_from_document()

    def _on_slider(self, name: str, value: float, dragging: bool) -> None:
        label = next(s.label for s in SLIDERS if s.name == name)
        try:
            self.document.set(("voice", name), value, label=f"Voice {label.lower()}",
                              merge_key=("voice-slider", name))
        except StudioError as exc:
            self.ctx.report_error("Voice setting refused", str(exc))
            self._sync_from_document()
        if not dragging:
            self.document.history.close_merge()  # a click or key press is a step of its own

    def reset_settings(self) -> None:
        defaults = ProjectVoice()
        self._set_many({("voice", s.name): getattr(defaults, s.name) for s in SLIDERS},
                       "Reset voice settings")

    def _on_document_changed(self, paths) -> None:
        if any(not p or p[0] == "voice" for p in paths or [()]):
            self._sync_from_document()

    def _sync_from_document(self) -> None:
        voice = self.document.project.voice
        self.delivery.show_values({s.name: float(getattr(voice, s.name)) for s in SLIDERS})
        self.picker.show_voice(self.current_voice())

    # -- speaking -------------------------------------------------------------------------
    def text(self) -> str:
        return self.text_edit.toPlainText()

    def _speech_args(self) -> tuple[str, ProjectVoice, list[Path]]:
        # a copy: the job reads it on a worker thread while the sliders may move on
        return self.current_voice(), self.document.project.voice.model_copy(), self.folders()

    def speak(self) -> Job | None:
        """Synthesise the text on a worker thread; show and play it when done."""
        text = self.text()
        if not text.strip():
            self.ctx.show_status("Type something for the avatar to say first.", 5000)
            self.text_edit.setFocus()
            return None
        from studio.voice.jobs import speak_job

        if self._speak_job is not None and not self._speak_job.state.finished:
            self._speak_job.cancel()  # newest request wins
        self.player.stop()
        voice_id, settings, folders = self._speech_args()
        job = Job("Speak", speak_job, text, voice_id, settings, voice_folders=folders,
                  kind=JobKind.SPEAK)
        self._speak_job = job
        self._show_busy("Speaking…")
        self._run(job)
        self._update_buttons()
        return job

    def show_speech(self, speech: SpeechResult, play: bool = True) -> None:
        self.last_speech = speech
        self.waveform.set_speech(speech.audio, speech.sample_rate, speech.phonemes,
                                 speech.words)
        spoken = [p for p in speech.phonemes if p.phoneme not in ("_", "SIL")]
        parts = [f"{speech.duration:.2f} s", f"{speech.sample_rate} Hz"]
        if speech.words:
            parts.append(f"{len(speech.words)} words")
        if spoken:
            parts.append(f"{len(spoken)} phonemes")
        self.info.setText(" · ".join(parts))
        self.info.setToolTip("")
        if play and self.player.available:
            self.player.play(speech.audio, speech.sample_rate)
        self._update_buttons()
        self.speech_ready.emit(speech)

    def toggle_play(self) -> None:
        if self.player.playing:
            self.player.stop()
        elif self.last_speech is not None:
            self.player.play(self.last_speech.audio, self.last_speech.sample_rate)
            if not self.player.available:
                self.ctx.show_status(self.player.message, 5000)
        self._update_buttons()

    def _on_waveform_clicked(self, t: float) -> None:
        if self.last_speech is None:
            return
        if self.player.available:
            self.player.play(self.last_speech.audio, self.last_speech.sample_rate, start=t)
        else:
            self.waveform.set_playhead(t)

    # -- timeline -------------------------------------------------------------------------
    def _project_dir(self, what: str, then: Callable[[], object]) -> Path | None:
        """The project's folder; for an unsaved project ``None``, after offering to save
        it (Save As… in the same box) and then to carry on with ``then``."""
        path = self.document.path
        if path is not None:
            return Path(path).parent
        box = QMessageBox(QMessageBox.Icon.Information, "Save the project first",
                          SAVE_FIRST.format(what=what), QMessageBox.StandardButton.Cancel,
                          self)
        box.setObjectName("saveFirstBox")
        save = box.addButton("Save As…", QMessageBox.ButtonRole.AcceptRole)
        save.setObjectName("saveAsButton")
        box.setDefaultButton(save)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def clicked(button) -> None:
            if button is save and self.ctx.save_project_as() and self.document.path:
                then()

        box.buttonClicked.connect(clicked)
        self.save_first_box = box
        box.open()  # window-modal, does not block the event loop
        return None

    def add_to_timeline(self) -> Job | None:
        """Speak the text, write it into the project's audio/ folder, add clip + tracks."""
        text = self.text()
        if not text.strip():
            self.ctx.show_status("Type something for the avatar to say first.", 5000)
            return None
        project_dir = self._project_dir("speech", self.add_to_timeline)
        if project_dir is None:
            return None
        voice_id, settings, folders = self._speech_args()
        job = Job("Add speech to timeline", speech_to_timeline_job, text, voice_id, settings,
                  project_dir, folders, kind=JobKind.SPEAK)
        return self._start_task(job, kind="timeline", project_dir=project_dir, voice=settings)

    def import_recording(self, path: str | Path | None = None) -> Job | None:
        """Add a recording to the timeline (aligned to the text box's transcript, if any)."""
        project_dir = self._project_dir("recording", lambda: self.import_recording(path))
        if project_dir is None:
            return None
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import a recording", "", AUDIO_FILTER)
            if not path:
                return None
        job = Job("Import recording", recording_to_timeline_job, Path(path), self.text(),
                  project_dir, kind=JobKind.IMPORT)
        return self._start_task(job, kind="timeline", project_dir=project_dir, voice=None)

    def _apply_timeline(self, item: SpeechForTimeline, info: dict) -> None:
        doc_path = self.document.path
        if doc_path is None or Path(doc_path).parent != info["project_dir"]:
            self.ctx.report_error(
                "Not added to the timeline",
                "The project changed while the speech was being made, so nothing was added. "
                "Try again.")
            return
        try:
            batch, clip = add_speech_command(self.document.project.timeline, item, info["voice"])
            self.document.push(batch)
        except (StudioError, ValueError) as exc:  # ValueError: pydantic validation
            self.ctx.report_error("Could not add to the timeline", str(exc))
            return
        self.document.history.close_merge()
        self.show_speech(item.speech, play=False)
        what = "speech" if item.kind == "speech" else "recording"
        message = f"Added {clip.duration:.2f} s of {what} at {clip.start:.2f} s ({clip.audio})"
        self.ctx.show_status(item.note or message, 10000 if item.note else 5000)
        if item.note:
            self.info.setText(self.info.text() + " · not aligned, see tooltip")
            self.info.setToolTip(item.note)
        self.timeline_added.emit(clip)

    # -- jobs -----------------------------------------------------------------------------
    def _start_task(self, job: Job, **info) -> Job | None:
        if self._task_job is not None and not self._task_job.state.finished:
            self.ctx.show_status(f"Wait for “{self._task_job.name}” to finish.", 5000)
            return None
        self._task_job = job
        self._task_info = info
        self._show_busy(job.name + "…")
        self._run(job)
        self._update_buttons()
        return job

    def _run(self, job: Job) -> None:
        """Start ``job`` with this panel's callbacks (on the UI thread, in order)."""
        self.ctx.runner.start(job, on_progress=lambda p: self._on_progress(job, p),
                              on_finished=self._on_job_finished)

    def _show_busy(self, message: str) -> None:
        self.progress.setRange(0, 0)
        self.progress.show()
        self.info.setText(message)

    def _on_progress(self, job: Job, progress: Progress) -> None:
        if job is not self._speak_job and job is not self._task_job:
            return
        if progress.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(max(0.0, min(1.0, progress.fraction)) * 1000))
        if progress.message:
            self.info.setText(f"{job.name}: {progress.message}")

    def _on_job_finished(self, job: Job) -> None:
        if job is self._speak_job:
            self._speak_job = None
            self._finish_busy()
            if job.state is JobState.DONE:
                self.show_speech(job.result)
            elif job.state is JobState.FAILED:
                self.info.setText("")
                self.ctx.report_error("Could not speak", job.error or "synthesis failed")
            else:
                self.info.setText("Cancelled")
        elif job is self._task_job:
            info = self._task_info
            self._task_job, self._task_info = None, {}
            self._finish_busy()
            if job.state is JobState.FAILED:
                self.info.setText("")
                title = {"voice": "Voice not imported"}.get(info.get("kind"),
                                                            f"{job.name} failed")
                self.ctx.report_error(title, job.error or "failed")
            elif job.state is JobState.DONE:
                if info.get("kind") == "voice":
                    self._voice_imported(job.result)
                else:
                    self._apply_timeline(job.result, info)
            else:
                self.info.setText("Cancelled")
        self._update_buttons()

    def _finish_busy(self) -> None:
        if self._speak_job is None and self._task_job is None:
            self.progress.hide()

    def _voice_imported(self, voice_id: str) -> None:
        self.reload_voices()
        self.ctx.app.models.refresh()
        self.select_voice(voice_id)
        self.ctx.show_status(f"Imported the voice {voice_id.removeprefix('piper:')}", 5000)

    # -- audio device ---------------------------------------------------------------------
    def _on_audio_availability(self, available: bool, message: str, details: str) -> None:
        self.ctx.set_audio_status(available, message, details)
        self._update_buttons()

    def _update_buttons(self, *args) -> None:
        has_text = bool(self.text().strip())
        speaking = self._speak_job is not None
        busy = self._task_job is not None
        self.speak_btn.setEnabled(has_text)
        self.speak_btn.setText("Speaking…" if speaking else "Speak")
        tip = "Synthesise the text, show its waveform and phonemes, and play it (Ctrl+Enter)."
        if self.player.checked and not self.player.available:
            tip = ("Synthesise the text and show its waveform and phonemes (Ctrl+Enter).\n"
                   f"{self.player.message}.")
        self.speak_btn.setToolTip(tip)
        self.play_btn.setText("Stop" if self.player.playing else "Play")
        self.play_btn.setEnabled(self.player.playing or (
            self.player.available and self.last_speech is not None))
        self.play_btn.setToolTip(
            self.player.message if self.player.checked and not self.player.available
            else "Play the last speech again (click the waveform to play from there).")
        self.add_btn.setEnabled(has_text and not busy)
        self.import_rec_btn.setEnabled(not busy)
        self.import_voice_btn.setEnabled(not busy)

    # -- lifetime -------------------------------------------------------------------------
    def shutdown(self) -> None:
        self.player.stop()
        for job in (self._speak_job, self._task_job):
            if job is not None:
                job.cancel()
        try:
            self.document.changed.disconnect(self._on_document_changed)
            self.document.replaced.disconnect(self._sync_from_document)
        except (TypeError, ValueError, RuntimeError):
            pass

"""The main window: viewport in the centre, dockable panels, menus, status bar."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QWidget,
)

from studio.core.app import AppModel
from studio.core.devices import DeviceChoice
from studio.core.document import Document, ProjectChangedOnDisk
from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind
from studio.core.project import PROJECT_SUFFIX, Project
from studio.core.recovery import RecoveryEntry, RecoveryStore
from studio.core.settings import Settings, save_settings
from studio.face.importers import import_checkpoint_job
from studio.ui.context import StudioContext
from studio.ui.face_panel import FacePanel
from studio.ui.job_runner import JobRunner
from studio.ui.jobs_panel import JobsPanel
from studio.ui.models_panel import ModelsPanel
from studio.ui.playback import install_playback
from studio.ui.preferences import PreferencesDialog
from studio.ui.refine_panel import RefinePanel
from studio.ui.render_dialog import RenderDialog, RenderQueue, export_curves_dialog
from studio.ui.timeline_panel import TimelinePanel
from studio.ui.training_panel import TrainingPanel
from studio.ui.viewport import Viewport
from studio.ui.voice_panel import VoicePanel
from studio.voice.voices import packaged_voice_entries

PROJECT_FILTER = f"Digital Human projects (*{PROJECT_SUFFIX});;All files (*)"
FPS_WINDOW_S = 1.0  # frames per second are counted over this window

# Docks: object name, title, area, and the panel class (built with the context); the jobs
# and models docks are built from the runner and the app model's model registry.
DOCKS = [
    ("face", "Face", "left", FacePanel),
    ("refine", "Refine", "left", RefinePanel),
    ("voice", "Voice", "right", VoicePanel),
    ("training", "Training", "right", TrainingPanel),
    ("timeline", "Timeline", "bottom", TimelinePanel),
    ("jobs", "Jobs", "bottom", None),
    ("models", "Models", "right", None),
]
AREAS = {
    "left": Qt.DockWidgetArea.LeftDockWidgetArea,
    "right": Qt.DockWidgetArea.RightDockWidgetArea,
    "bottom": Qt.DockWidgetArea.BottomDockWidgetArea,
}


class _WriteRecovery(QRunnable):
    def __init__(self, store: RecoveryStore, text: str, source: Path | None, title: str,
                 done) -> None:
        super().__init__()
        self.args = (store, text, source, title)
        self.done = done

    def run(self) -> None:
        store, text, source, title = self.args
        try:
            store.write(text, source, title)
            self.done(None)
        except OSError as exc:
            self.done(str(exc))


class MainWindow(QMainWindow):
    autosaved = Signal(str)  # path of the recovery file, or an error message

    def __init__(self, settings: Settings, document: Document | None = None,
                 recovery: RecoveryStore | None = None, offer_recovery: bool = True) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings
        self.document = document or Document()
        self.recovery = recovery or RecoveryStore()
        self.app = AppModel(settings, model_sources=[packaged_voice_entries])
        self.runner = JobRunner(parent=self)
        self.viewport = Viewport()
        self.viewport.set_message("No face model loaded yet")
        self.setCentralWidget(self.viewport)
        self.ctx = StudioContext(
            document=self.document, app=self.app, runner=self.runner,
            viewport=self.viewport, show_status=self.show_status,
            report_error=self.report_error, set_preview_stats=self.set_preview_stats,
            set_audio_status=self.set_audio_status,
            save_project_as=lambda: self.save_project(ask=True),
        )
        self.docks: dict[str, QDockWidget] = {}
        self.panels: dict[str, QWidget] = {}
        self.resize(1400, 900)  # before the docks: Qt keeps tab bars laid out at the first size
        self._build_status_bar()
        self._build_docks()
        self._build_menus()
        self.playback = install_playback(self, self.ctx, self.panels["face"].preview)
        self.app.events.device.connect(self._on_device_changed)
        self._autosave_rev = self.document.history.revision
        self._autosave_pool = QThreadPool(self)
        self._autosave_pool.setMaxThreadCount(1)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start(settings.autosave_interval_s * 1000)
        self.document.history.state_changed.connect(self._update_title)
        self.document.history.state_changed.connect(self._update_edit_actions)
        self.document.path_changed.connect(lambda p: self._update_title())
        self.autosaved.connect(self._on_autosaved)
        self._restore_layout()
        self._update_title()
        self._update_edit_actions()
        if offer_recovery:
            QTimer.singleShot(0, self.check_recovery)

    @property
    def device(self) -> DeviceChoice:
        return self.app.device

    # -- construction --------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel(f"Device: {self.device.label}")
        self.device_label.setObjectName("deviceLabel")
        self.device_label.setToolTip(self.device.reason)
        self.fps_label = QLabel("")
        self.fps_label.setObjectName("fpsLabel")
        self.fps_label.setToolTip("The last preview frame's render time; frames per second "
                                  "while frames are arriving")
        self._frame_times: list[float] = []
        self._clock = time.monotonic  # tests may pass their own
        self._render_ms: float | None = None
        self._fps_idle = QTimer(self)  # drops the fps once frames stop arriving
        self._fps_idle.setSingleShot(True)
        self._fps_idle.setInterval(int(FPS_WINDOW_S * 1000))
        self._fps_idle.timeout.connect(self._show_preview_stats)
        self.audio_label = QLabel("")
        self.audio_label.setObjectName("audioLabel")
        self.audio_label.hide()  # shown by the voice panel when it has something to say
        bar.addPermanentWidget(self.audio_label)
        bar.addPermanentWidget(self.fps_label)
        bar.addPermanentWidget(self.device_label)

    def _build_docks(self) -> None:
        self.setDockNestingEnabled(True)
        first_in_area: dict[str, QDockWidget] = {}
        for name, title, area, panel_class in DOCKS:
            if name == "jobs":
                widget: QWidget = JobsPanel(self.runner)
            elif name == "models":
                widget = ModelsPanel(self.app.models)
            else:
                widget = panel_class(self.ctx)
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{name}")
            if name in ("face", "refine", "voice", "training"):
                # tall control panels scroll rather than forcing a minimum window height
                scroll = QScrollArea()
                scroll.setWidgetResizable(True)
                scroll.setFrameShape(QFrame.Shape.NoFrame)
                scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
                scroll.setWidget(widget)
                dock.setWidget(scroll)
            else:
                dock.setWidget(widget)
            # One tab group per area; adding a dock straight into its group avoids Qt
            # leaving stray tab bars behind from intermediate layouts.
            if area in first_in_area:
                self.tabifyDockWidget(first_in_area[area], dock)
            else:
                self.addDockWidget(AREAS[area], dock)
                first_in_area[area] = dock
            self.docks[name] = dock
            self.panels[name] = widget
        for name in ("face", "voice", "timeline"):
            self.docks[name].raise_()
        self.resizeDocks([self.docks["face"], self.docks["voice"]], [360, 380],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["timeline"]], [280], Qt.Orientation.Vertical)
        self._default_state = self.saveState()

    def _action(self, menu, text: str, slot, shortcut=None, name: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        if name:
            action.setObjectName(name)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file = mb.addMenu("&File")
        self.act_new = self._action(file, "&New", self.new_project, QKeySequence.StandardKey.New,
                                    "actionNew")
        self.act_open = self._action(file, "&Open…", lambda: self.open_project(),
                                     QKeySequence.StandardKey.Open, "actionOpen")
        self.recent_menu = file.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_recent()
        file.addSeparator()
        self.act_save = self._action(file, "&Save", lambda: self.save_project(),
                                     QKeySequence.StandardKey.Save, "actionSave")
        self.act_save_as = self._action(file, "Save &As…", lambda: self.save_project(ask=True),
                                        QKeySequence.StandardKey.SaveAs, "actionSaveAs")
        file.addSeparator()
        self.act_import_model = self._action(file, "&Import Model…", lambda: self.import_model(),
                                             None, "actionImportModel")
        self.act_import_model.setToolTip("Import a StyleGAN2 checkpoint (NVIDIA .pkl or "
                                         "rosinality .pt) as a face model")
        self.act_invert = self._action(file, "New Avatar from &Photo…",
                                       lambda: self.new_avatar_from_photo(), None,
                                       "actionNewAvatarFromPhoto")
        self.act_render = self._action(file, "&Render…", self.show_render_dialog,
                                       "Ctrl+Shift+R", "actionRender")
        export = file.addMenu("&Export")
        self.act_export_frame = self._action(export, "Current frame as PNG…",
                                             lambda: self.export_frame(), None,
                                             "actionExportFrame")
        self._action(export, "Animation curves (CSV/JSON)…",
                     lambda: export_curves_dialog(self.ctx, self), None, "actionExportCurves")
        self.export_menu = export
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit, "actionQuit")

        edit = mb.addMenu("&Edit")
        self.act_undo = self._action(edit, "&Undo", self.undo, QKeySequence.StandardKey.Undo,
                                     "actionUndo")
        self.act_redo = self._action(edit, "&Redo", self.redo, QKeySequence.StandardKey.Redo,
                                     "actionRedo")
        edit.addSeparator()
        self._action(edit, "&Preferences…", self.show_preferences,
                     QKeySequence.StandardKey.Preferences, "actionPreferences")

        view = mb.addMenu("&View")
        self._action(view, "&Fit", self.viewport.fit, "F", "actionFit")
        self._action(view, "&Actual size (1:1)", self.viewport.actual_size, "1", "actionOneToOne")
        self._action(view, "Zoom &in", lambda: self.viewport.zoom_by(1.25),
                     QKeySequence.StandardKey.ZoomIn)
        self._action(view, "Zoom &out", lambda: self.viewport.zoom_by(0.8),
                     QKeySequence.StandardKey.ZoomOut)
        view.addSeparator()
        panels = view.addMenu("&Panels")
        for dock in self.docks.values():
            panels.addAction(dock.toggleViewAction())
        self._action(view, "&Reset layout", self.reset_layout)
        self.view_menu = view

        help_ = mb.addMenu("&Help")
        self._action(help_, "&About Digital Human Studio", self.show_about, None, "actionAbout")
        self.file_menu, self.edit_menu, self.help_menu = file, edit, help_

    # -- layout persistence ----------------------------------------------------------------
    def _restore_layout(self) -> None:
        s = self.settings
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.window_geometry.encode()))
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode()))

    def save_layout(self) -> None:
        self.settings.window_geometry = bytes(self.saveGeometry().toBase64()).decode()
        self.settings.window_state = bytes(self.saveState().toBase64()).decode()

    def reset_layout(self) -> None:
        for dock in self.docks.values():
            dock.setFloating(False)
            dock.show()
        self.restoreState(self._default_state)

    # -- status ----------------------------------------------------------------------------
    def show_status(self, message: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(message, ms)

    def set_preview_stats(self, render_ms: float, fps: float | None = None) -> None:
        """A full preview frame arrived that took ``render_ms`` to render. The label shows
        that time, and a frame rate only while frames keep arriving (``fps`` from the
        caller is not trusted: two frames in a burst are not 5000 fps)."""
        now = self._clock()
        self._render_ms = float(render_ms)
        self._frame_times = [t for t in self._frame_times if t > now - FPS_WINDOW_S] + [now]
        self._show_preview_stats()
        self._fps_idle.start()

    def preview_fps(self) -> float | None:
        """Frames per second over the last second, or None unless a stream of frames is
        arriving (at least 3, spread over a quarter of a second or more)."""
        now = self._clock()
        recent = [t for t in self._frame_times if t > now - FPS_WINDOW_S]
        if len(recent) < 3 or recent[-1] - recent[0] < FPS_WINDOW_S / 4:
            return None
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def _show_preview_stats(self) -> None:
        if self._render_ms is None:
            self.fps_label.setText("")
            return
        fps = self.preview_fps()
        self.fps_label.setText(f"Preview: {max(1.0, self._render_ms):.0f} ms"
                               + (f" · {fps:.1f} fps" if fps is not None else ""))

    def set_audio_status(self, available: bool, message: str, details: str) -> None:
        self.audio_label.setText("" if available else message)
        self.audio_label.setToolTip(details)
        self.audio_label.setVisible(not available)

    def report_error(self, title: str, text: str) -> QMessageBox:
        """Show an error without blocking the event loop (a window-modal box)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setObjectName("errorBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.show_status(text.splitlines()[0] if text else title, 10000)
        return box

    def _update_title(self) -> None:
        star = "*" if self.document.modified else ""
        self.setWindowTitle(f"{self.document.title}{star} — Digital Human Studio")

    def _update_edit_actions(self) -> None:
        h = self.document.history
        self.act_undo.setEnabled(h.can_undo)
        self.act_redo.setEnabled(h.can_redo)
        self.act_undo.setText(f"&Undo {h.undo_label}".rstrip())
        self.act_redo.setText(f"&Redo {h.redo_label}".rstrip())

    # -- edit --------------------------------------------------------------------------------
    def undo(self) -> None:
        self.document.history.undo()

    def redo(self) -> None:
        self.document.history.redo()

    def show_preferences(self) -> PreferencesDialog:
        """Open the preferences (window-modal, without blocking the event loop); OK
        applies them."""
        dlg = PreferencesDialog(self.settings, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def accepted() -> None:
            dlg.apply()
            self.apply_settings()

        dlg.accepted.connect(accepted)
        dlg.open()
        return dlg

    def apply_settings(self) -> None:
        """The settings changed: the app model tells whoever depends on them."""
        self.app.apply_settings()
        self._on_device_changed(self.device)
        self.autosave_timer.start(self.settings.autosave_interval_s * 1000)
        self._persist_settings()

    def _on_device_changed(self, device: DeviceChoice) -> None:
        self.device_label.setText(f"Device: {device.label}")
        self.device_label.setToolTip(device.reason)

    def _persist_settings(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.show_status(f"Could not save settings: {exc}")

    # -- files -------------------------------------------------------------------------------
    def _confirm_discard(self) -> bool:
        """True if it is fine to drop the current document (saved, or the user agreed)."""
        if not self.document.modified:
            return True
        answer = self.ask_save_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project()
        return answer == QMessageBox.StandardButton.Discard

    def ask_save_changes(self) -> QMessageBox.StandardButton:
        return QMessageBox.question(
            self, "Unsaved changes", f"Save changes to {self.document.title}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )

    def new_project(self) -> None:
        if self._confirm_discard():
            self.document.replace(Project(), None)

    def open_project(self, path: str | Path | None = None) -> bool:
        if not self._confirm_discard():
            return False
        if path is None:
            start = str(Path(self.document.path).parent) if self.document.path else ""
            path, _ = QFileDialog.getOpenFileName(self, "Open project", start, PROJECT_FILTER)
            if not path:
                return False
        try:
            loaded = Document.open(path)
        except StudioError as exc:
            self.report_error("Cannot open project", str(exc))
            return False
        self.document.replace(loaded.project, loaded.path, disk_stamp=loaded.disk_stamp)
        self.settings.add_recent(loaded.path)
        self._persist_settings()
        self.show_status(f"Opened {loaded.path}")
        from studio.render.audio import missing_audio

        if missing := missing_audio(loaded.project, loaded.path):
            self.report_error("Missing audio", "\n".join(missing) + "\n\nThose clips stay "
                              "silent; everything else plays and renders.")
        return True

    def show_render_dialog(self) -> RenderDialog:
        """File → Render: settings for a new render and the render queue."""
        if getattr(self, "render_queue", None) is None:
            self.render_queue = RenderQueue(self.ctx, self)
        old = getattr(self, "render_dialog", None)
        if old is not None:
            old.close()
        self.render_dialog = RenderDialog(self.ctx, self.render_queue, self)
        self.render_dialog.show()
        return self.render_dialog

    def save_project(self, ask: bool = False, overwrite: bool = False) -> bool:
        target = self.document.path
        if ask or target is None:
            start = str(target) if target else f"{self.document.project.name}{PROJECT_SUFFIX}"
            chosen, _ = QFileDialog.getSaveFileName(self, "Save project", start, PROJECT_FILTER)
            if not chosen:
                return False
            target = Path(chosen)
            if target.suffix != PROJECT_SUFFIX:
                target = target.with_name(target.name + PROJECT_SUFFIX)
        try:
            # a file picked in the Save As dialog was confirmed there
            saved = self.document.save(target, overwrite=overwrite or ask)
        except ProjectChangedOnDisk as exc:
            choice = self.ask_changed_on_disk(str(exc))
            if choice == "cancel":
                return False
            return self.save_project(ask=choice == "save_as", overwrite=choice == "overwrite")
        except StudioError as exc:
            self.report_error("Cannot save project", str(exc))
            return False
        self.settings.add_recent(saved)
        self._persist_settings()
        self.recovery.discard_own()
        self._autosave_rev = self.document.history.revision
        self.show_status(f"Saved {saved}")
        return True

    def ask_changed_on_disk(self, message: str) -> str:
        """'save_as', 'overwrite' or 'cancel' for a project file changed on disk."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Project changed on disk", message,
                          parent=self)
        save_as = box.addButton("Save As…", QMessageBox.ButtonRole.AcceptRole)
        overwrite = box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(save_as)
        box.exec()
        clicked = box.clickedButton()
        return "save_as" if clicked is save_as else "overwrite" if clicked is overwrite else "cancel"

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        if not self.settings.recent_projects:
            a = self.recent_menu.addAction("(no recent projects)")
            a.setEnabled(False)
            return
        for p in self.settings.recent_projects:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda checked=False, p=p: self.open_project(p))

    def export_frame(self, path: str | Path | None = None) -> bool:
        image = self.viewport.image
        if image is None:
            self.report_error("Nothing to export", "The viewport shows no image yet.")
            return False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export frame", "frame.png",
                                                  "PNG images (*.png)")
            if not path:
                return False
        if not image.save(str(path), "PNG"):
            self.report_error("Export failed", f"{path}: could not write the image")
            return False
        self.show_status(f"Exported {path}")
        return True

    def import_model(self, path: str | Path | None = None) -> Job | None:
        """Import a StyleGAN2 checkpoint as a job; the new model is selected when done."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, "Import face model", "",
                "StyleGAN2 checkpoints (*.pkl *.pt *.pth);;All files (*)")
            if not path:
                return None
        from studio.core import paths

        job = Job(f"Import {Path(path).name}", import_checkpoint_job, Path(path),
                  models_dir=paths.user_models_dir(), kind=JobKind.IMPORT)
        self.runner.start(job, on_done=self._model_imported,
                          on_failed=lambda error: self.report_error("Import failed", error))
        self.docks["jobs"].raise_()
        return job

    def new_avatar_from_photo(self, photo: str | Path | None = None, settings=None) -> Job | None:
        """File → New avatar from photo (studio/ui/invert_action.py)."""
        from studio.ui.invert_action import start_invert

        job = start_invert(self.ctx, photo, settings, parent=self)
        if job is not None:
            self.docks["jobs"].raise_()
        return job

    def _model_imported(self, out: Path) -> None:
        out = Path(out)
        self.app.models.refresh()  # the Models, Face and Training panels list it now
        self.document.set(("avatar", "model"), f"library:{out.name}", "Use imported model")
        self.show_status(f"Imported {out.name}", 8000)

    # -- autosave and recovery ------------------------------------------------------------------
    def autosave_now(self) -> bool:
        """Snapshot the document on this thread (fast), write it on a worker thread."""
        rev = self.document.history.revision
        if rev == self._autosave_rev or not self.document.modified:
            return False
        self._autosave_rev = rev
        text = self.document.to_text()
        store = self.recovery
        self._autosave_pool.start(_WriteRecovery(
            store, text, self.document.path, self.document.title,
            lambda err: self.autosaved.emit(err or str(store.file)),
        ))
        return True

    def _on_autosaved(self, message: str) -> None:
        if message.endswith(".json"):
            self.show_status(f"Autosaved at {time.strftime('%H:%M:%S')}", 3000)
        else:
            self.show_status(f"Autosave failed: {message}", 10000)

    def wait_autosave(self, msecs: int = 5000) -> bool:
        return self._autosave_pool.waitForDone(msecs)

    def ask_recover(self, entry: RecoveryEntry) -> bool:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.saved_at))
        what = str(entry.source) if entry.source else "an unsaved project"
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"The studio did not close properly. Autosaved work from {when} on {what} "
            "was found.\n\nRecover it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def check_recovery(self) -> bool:
        """Offer the newest snapshot left by a crashed session. True if recovered."""
        entries = self.recovery.pending()
        if not entries:
            return False
        entry = entries[0]
        if not self.ask_recover(entry):
            for e in entries:
                self.recovery.discard(e)
            return False
        try:
            project = self.recovery.load(entry)
        except StudioError as exc:
            self.report_error("Recovery failed", str(exc))
            return False
        self.document.replace(project, entry.source, modified=True)
        self.document.recovered_from = entry.file
        # Keep the snapshot until the recovered work is saved or autosaved again.
        self.recovery.discard(entry)
        self.recovery.write(self.document.to_text(), entry.source, self.document.title)
        for e in entries[1:]:
            self.recovery.discard(e)
        self.show_status("Recovered unsaved work; save it to keep it.", 10000)
        return True

    # -- about -------------------------------------------------------------------------------
    def show_about(self) -> QMessageBox:
        from studio.core.about import LICENCES, versions

        v = versions()
        rows = "".join(f"<tr><td>{k}</td><td>{val}</td></tr>" for k, val in v.items())
        lic = "".join(f"<tr><td>{k}</td><td>{val}</td></tr>" for k, val in LICENCES)
        text = (
            f"<h3>Digital Human Studio {v['studio']}</h3>"
            "<p>Author digital humans offline: StyleGAN faces, neural voices, lip-synced "
            "animation, video.</p>"
            f"<p>Device: {self.device.label} ({self.device.reason})</p>"
            f"<table>{rows}</table><h4>Licences</h4><table>{lic}</table>"
        )
        box = QMessageBox(QMessageBox.Icon.Information, "About Digital Human Studio", text,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("aboutBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    # -- closing -----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._confirm_discard():
            event.ignore()
            return
        self.runner.cancel_all()
        self.runner.wait(3000)
        self.runner.shutdown()  # a job still running past the wait delivers nothing more
        self.playback.shutdown()
        self.autosave_timer.stop()
        self.wait_autosave()
        self.recovery.discard_own()
        for panel in self.panels.values():
            shutdown = getattr(panel, "shutdown", None)
            if shutdown is not None:
                shutdown()
        self.save_layout()
        self._persist_settings()
        event.accept()

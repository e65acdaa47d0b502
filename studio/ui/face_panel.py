"""The Face panel: model picker, seed, truncation, style mixing, noise, locks — live preview.

Every change is an undoable edit on the project's avatar; the preview follows the document.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.model_registry import find_face_models
from studio.face.model_ref import face_model_dirs, reference_for, resolve_face_model
from studio.face.request import FaceRequest, check_request
from studio.render.frame import frame_request
from studio.ui.blend_box import BlendBox
from studio.ui.context import StudioContext
from studio.ui.controls_box import ControlsBox
from studio.ui.face_preview import FacePreview

SPIN_MAX = 2**31 - 1  # QSpinBox is 32-bit signed
TRUNC_SCALE = 100  # slider units per 1.0 of psi


class FacePanel(QWidget):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.document
        self.preview = FacePreview(ctx.app.device, self)
        self.preview.low_res_first = ctx.settings.preview_low_res_first
        self._gesture = itertools.count()
        self._drag_key = None
        self._syncing = False
        self._loaded_path: Path | None = None
        self._ready = False
        self.last_stamp = 0
        self._build()
        self.preview.model_loaded.connect(self._on_model_loaded)
        self.preview.model_failed.connect(self._on_model_failed)
        self.preview.frame_ready.connect(self._on_frame)
        self.preview.render_failed.connect(lambda s, m: self._set_problem(f"Render failed: {m}"))
        self.doc.changed.connect(self._on_doc_changed)
        self.doc.replaced.connect(self._on_replaced)
        ctx.app.events.device.connect(self._on_device_changed)
        ctx.app.events.settings.connect(self._on_settings)
        ctx.app.models.changed.connect(self._on_models_changed)
        self.refresh_models()
        self._sync_from_doc()
        self._load_current_model()

    # -- widgets ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("faceModel")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.activated.connect(self._on_model_chosen)
        self.model_info = QLabel()
        self.model_info.setObjectName("hint")
        self.model_info.setWordWrap(True)

        self.seed = QSpinBox()
        self.seed.setObjectName("faceSeed")
        self.seed.setRange(0, SPIN_MAX)
        self.seed.setKeyboardTracking(False)
        self.seed.valueChanged.connect(lambda v: self._set("seed", int(v), "Change seed"))
        self.prev_btn = QPushButton("◀")
        self.next_btn = QPushButton("▶")
        self.rand_btn = QPushButton("Random")
        self.prev_btn.setToolTip("Previous seed")
        self.next_btn.setToolTip("Next seed")
        self.prev_btn.clicked.connect(lambda: self.seed.setValue(max(0, self.seed.value() - 1)))
        self.next_btn.clicked.connect(lambda: self.seed.setValue(self.seed.value() + 1))
        self.rand_btn.clicked.connect(self.randomise)
        self.lock_seed = QCheckBox("Lock")
        self.lock_seed.setToolTip("Keep this identity when randomising")
        self.lock_seed.toggled.connect(lambda on: self._set_lock("seed", on))
        for b in (self.prev_btn, self.next_btn):
            b.setFixedWidth(30)
        seed_row = QHBoxLayout()
        for w in (self.seed, self.prev_btn, self.next_btn):
            seed_row.addWidget(w)
        seed_row.setStretch(0, 1)
        seed_row2 = QHBoxLayout()
        seed_row2.addWidget(self.rand_btn)
        seed_row2.addWidget(self.lock_seed)
        seed_row2.addStretch(1)

        self.trunc = QSlider(Qt.Orientation.Horizontal)
        self.trunc.setObjectName("faceTruncation")
        self.trunc.setRange(0, int(1.5 * TRUNC_SCALE))
        self.trunc.setToolTip("Truncation ψ: lower is more average and cleaner, higher more varied")
        self.trunc_label = QLabel()
        self.trunc_label.setMinimumWidth(36)
        self.trunc.sliderPressed.connect(self._begin_drag)
        self.trunc.sliderReleased.connect(self._end_drag)
        self.trunc.valueChanged.connect(self._on_trunc)
        trunc_row = QHBoxLayout()
        trunc_row.addWidget(self.trunc, 1)
        trunc_row.addWidget(self.trunc_label)

        self.mix_on = QCheckBox("Mix styles from another seed")
        self.mix_on.setObjectName("faceMixOn")
        self.mix_on.toggled.connect(self._on_mix_toggled)
        self.mix_seed = QSpinBox()
        self.mix_seed.setRange(0, SPIN_MAX)
        self.mix_seed.setKeyboardTracking(False)
        self.mix_seed.valueChanged.connect(
            lambda v: self.mix_on.isChecked() and self._set("mix_seed", int(v), "Change mix seed"))
        self.lock_mix = QCheckBox("Lock")
        self.lock_mix.toggled.connect(lambda on: self._set_lock("mix_seed", on))
        self.mix_from = QSpinBox()
        self.mix_to = QSpinBox()
        for s in (self.mix_from, self.mix_to):
            s.setRange(0, 18)
            s.setKeyboardTracking(False)
            s.valueChanged.connect(self._on_mix_layers)
        self.mix_from.setToolTip("First w layer taken from the mix seed (0 = coarse: pose, shape)")
        self.mix_to.setToolTip("Layers up to this one, not including it, come from the mix seed "
                               "(the CLI's --mix-layers A:B means the same)")
        mix_seed_row = QHBoxLayout()
        mix_seed_row.addWidget(self.mix_seed, 1)
        mix_seed_row.addWidget(self.lock_mix)
        layers_row = QHBoxLayout()
        layers_row.addWidget(QLabel("layers"))
        layers_row.addWidget(self.mix_from)
        layers_row.addWidget(QLabel("up to (excl.)"))
        layers_row.addWidget(self.mix_to)
        layers_row.addStretch(1)
        mix_box = QGroupBox("Style mixing")
        mix_form = QVBoxLayout(mix_box)
        mix_form.addWidget(self.mix_on)
        mix_form.addLayout(mix_seed_row)
        mix_form.addLayout(layers_row)

        self.noise = QComboBox()
        self.noise.addItems(["const", "random", "none"])
        self.noise.setToolTip("Per-pixel noise: const is repeatable, none is smoothest")
        self.noise.currentTextChanged.connect(lambda t: self._set("noise_mode", t, "Noise mode"))

        self.problem = QLabel()
        self.problem.setObjectName("missing")
        self.problem.setWordWrap(True)
        self.problem.hide()

        form = QFormLayout()
        form.addRow("Model", self.model_combo)
        form.addRow("", self.model_info)
        form.addRow("Seed", seed_row)
        form.addRow("", seed_row2)
        form.addRow("Truncation", trunc_row)
        form.addRow("Noise", self.noise)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(form)
        layout.addWidget(mix_box)
        self.blend_box = BlendBox(self.doc)
        self.controls_box = ControlsBox(self.doc)
        self.blend_box.on_problem = self.controls_box.on_problem = self._set_problem
        controls = QGroupBox("Controls")
        QVBoxLayout(controls).addWidget(self.controls_box)
        layout.addWidget(self.blend_box)
        layout.addWidget(controls)
        layout.addWidget(self.problem)
        layout.addStretch(1)

    # -- models ---------------------------------------------------------------------------
    def model_dirs(self) -> list[Path]:
        return self.ctx.settings.all_model_dirs()

    def refresh_models(self) -> None:
        self.models = find_face_models(face_model_dirs(self.model_dirs()))
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for m in self.models:
            label = f"{m.name} ({m.resolution} px)" + (" — untrained" if m.untrained else "")
            self.model_combo.addItem(label, str(m.path))
        if not self.models:
            self.model_combo.addItem("(no face models found)", None)
        self.model_combo.setEnabled(bool(self.models))
        self.model_combo.blockSignals(False)

    def _current_model_path(self) -> Path | None:
        ref = self.doc.project.avatar.model
        try:
            return resolve_face_model(ref, self.doc.path, self.model_dirs())
        except StudioError as exc:
            if ref == "default" and self.models:
                return self.models[0].path  # no default installed: use the first we have
            self._set_problem(str(exc))
            return None

    def _load_current_model(self) -> None:
        path = self._current_model_path()
        if path is None:
            self.ctx.viewport.set_message(
                "No face model yet.\nImport a StyleGAN2 checkpoint with File → Import Model…")
            self._ready = True
            return
        if self._loaded_path is not None and path.resolve() == self._loaded_path.resolve():
            self.request_render()
            return
        self._ready = False
        self._loaded_path = path
        idx = self.model_combo.findData(str(path))
        if idx >= 0:
            self.model_combo.setCurrentIndex(idx)
        self.model_info.setText(f"Loading {path.name}…")
        self.preview.load_model(path)

    def _on_model_chosen(self, index: int) -> None:
        path = self.model_combo.itemData(index)
        if not path:
            return
        try:
            ref = reference_for(Path(path), self.doc.path, self.model_dirs())
        except StudioError as exc:
            self.ctx.report_error("Cannot use this model", str(exc))
            return
        self._set("model", ref, "Change face model")

    def _on_model_loaded(self, engine) -> None:
        self._set_problem(None)
        meta = engine.model.meta
        source = meta.get("source") or ""
        self.model_info.setText(
            f"{engine.resolution}×{engine.resolution}, {engine.num_ws} w layers"
            + (f" · {source}" if source else "")
            + (" · untrained (tests only)" if (meta.get("training") or {}).get("untrained") else "")
        )
        for s in (self.mix_from, self.mix_to):
            s.blockSignals(True)
            s.setRange(0, engine.num_ws)
            s.blockSignals(False)
        self.controls_box.set_controls(engine.model.control_set)
        self._sync_from_doc()
        self.request_render()

    def _on_device_changed(self, device) -> None:
        """Preferences chose another device: reload the engine there, then render again."""
        if self._loaded_path is not None:
            self._ready = False
        self.preview.set_device(device)

    def _on_settings(self, settings) -> None:
        self.preview.low_res_first = settings.preview_low_res_first

    def _on_models_changed(self) -> None:
        """Models were imported, trained or rescanned: list them, keep the loaded one shown."""
        self.refresh_models()
        idx = self.model_combo.findData(str(self._loaded_path)) if self._loaded_path else -1
        if idx >= 0:
            self.model_combo.setCurrentIndex(idx)

    def _on_model_failed(self, message: str) -> None:
        self._ready = True
        self._loaded_path = None
        self.model_info.setText("")
        self._set_problem(f"Could not load the face model: {message}")
        self.ctx.viewport.set_image(None)
        self.ctx.viewport.set_message("The face model could not be loaded")

    # -- edits ------------------------------------------------------------------------------
    def _set(self, field: str, value, label: str, merge_key=None) -> None:
        if self._syncing:
            return
        try:
            self.doc.set(("avatar", field), value, label, merge_key)
        except StudioError as exc:
            self._set_problem(str(exc))

    def _set_lock(self, name: str, on: bool) -> None:
        locks = list(self.doc.project.avatar.locks)
        if on and name not in locks:
            locks.append(name)
        elif not on and name in locks:
            locks.remove(name)
        self._set("locks", locks, "Lock" if on else "Unlock")

    def _begin_drag(self) -> None:
        self._drag_key = ("truncation-drag", next(self._gesture))

    def _end_drag(self) -> None:
        self._drag_key = None
        self.doc.history.close_merge()

    def _on_trunc(self, v: int) -> None:
        psi = v / TRUNC_SCALE
        self.trunc_label.setText(f"{psi:.2f}")
        self._set("truncation", psi, "Change truncation", self._drag_key)

    def _on_mix_toggled(self, on: bool) -> None:
        self.mix_seed.setEnabled(on)
        self.mix_from.setEnabled(on)
        self.mix_to.setEnabled(on)
        if self._syncing:
            return
        values = {("avatar", "mix_seed"): int(self.mix_seed.value()) if on else None}
        engine = self.preview.engine
        a, b = self.doc.project.avatar.mix_layers
        if on and engine is not None and not 0 <= a < b <= engine.num_ws:
            # this model has fewer layers than the stored range: start from its upper half,
            # as an explicit part of this edit (never a silent clamp at render time)
            values[("avatar", "mix_layers")] = (engine.num_ws // 2, engine.num_ws)
        try:
            self.doc.set_many(values, "Style mixing on" if on else "Style mixing off")
        except StudioError as exc:
            self._set_problem(str(exc))

    def _on_mix_layers(self) -> None:
        a, b = self.mix_from.value(), self.mix_to.value()
        if a >= b:
            return  # wait until the range is valid
        self._set("mix_layers", (a, b), "Change mix layers")

    def randomise(self) -> None:
        """New random seeds for everything that is not locked, as one undo step."""
        locks = set(self.doc.project.avatar.locks)
        rng = random.SystemRandom()
        values = {}
        if "seed" not in locks:
            values[("avatar", "seed")] = rng.randrange(0, SPIN_MAX)
        if self.doc.project.avatar.mix_seed is not None and "mix_seed" not in locks:
            values[("avatar", "mix_seed")] = rng.randrange(0, SPIN_MAX)
        if values:
            self.doc.set_many(values, "Randomise face")

    # -- document → widgets and preview -------------------------------------------------------
    def _on_doc_changed(self, paths) -> None:
        if not any(p == () or p[:1] == ("avatar",) for p in paths):
            return
        self._sync_from_doc()
        if any(p == () or p[:2] == ("avatar", "model") for p in paths):
            self._load_current_model()
        else:
            self.request_render()

    def _on_replaced(self) -> None:
        self._sync_from_doc()
        self._load_current_model()

    def _sync_from_doc(self) -> None:
        a = self.doc.project.avatar
        self._syncing = True
        try:
            self.seed.setValue(min(a.seed, SPIN_MAX))
            self.trunc.setValue(int(round(a.truncation * TRUNC_SCALE)))
            self.trunc_label.setText(f"{a.truncation:.2f}")
            self.mix_on.setChecked(a.mix_seed is not None)
            if a.mix_seed is not None:
                self.mix_seed.setValue(min(a.mix_seed, SPIN_MAX))
            self.mix_from.setValue(a.mix_layers[0])
            self.mix_to.setValue(a.mix_layers[1])
            for w in (self.mix_seed, self.mix_from, self.mix_to):
                w.setEnabled(a.mix_seed is not None)
            self.noise.setCurrentText(a.noise_mode)
            self.lock_seed.setChecked("seed" in a.locks)
            self.lock_mix.setChecked("mix_seed" in a.locks)
        finally:
            self._syncing = False

    def current_request(self) -> FaceRequest:
        """The frame at the playhead as a request (the latent file is read once per change:
        cached), so the preview and timeline playback show the same pixels."""
        return frame_request(self.doc.project, self.ctx.app.transport.time, self.doc.path)

    def request_render(self) -> None:
        engine = self.preview.engine
        if engine is None:
            return
        try:
            req = self.current_request()
            check_request(req, engine.num_ws)
        except StudioError as exc:
            self._set_problem(str(exc))
            self.ctx.viewport.set_message(f"Cannot render this face:\n{exc.reason}")
            self._ready = True
            return
        self._set_problem(None)
        self.last_stamp = self.preview.request(req)

    def _on_frame(self, stamp: int, image, latency_ms: float, final: bool) -> None:
        if not self.preview.accept(stamp):
            return  # a newer frame is already on screen
        self.ctx.viewport.set_image(image)
        if final and self.preview.last_render_ms is not None:
            # the last real render's time; fps only while frames keep arriving
            self.ctx.set_preview_stats(self.preview.last_render_ms, self.preview.fps)
        if final and stamp == self.last_stamp:
            self._ready = True

    def _set_problem(self, text: str | None) -> None:
        self.problem.setText(text or "")
        self.problem.setVisible(bool(text))

    # -- lifecycle ----------------------------------------------------------------------------
    def is_ready(self) -> bool:
        """True once the preview shows the current state (or there is nothing to show)."""
        return self._ready and self.preview.idle

    def shutdown(self) -> None:
        self.preview.shutdown()

"""The app model: what the studio holds besides the project document, with events.

One typed, Qt-free object (napari's ``ViewerModel`` is the model) that panels receive
explicitly instead of reaching into the main window:

* ``settings``: the user's :class:`~studio.core.settings.Settings`;
* ``device``: the :class:`~studio.core.devices.DeviceChoice` that previews and jobs use now;
* ``models``: the :class:`ModelRegistry` of every model on disk;
* ``transport``: the playhead: current time, playing, loop range.

Events are psygnal signals: ``app.events.device`` (the device changed: reload engines on
it), ``app.events.settings`` (settings were applied), ``app.models.changed`` (the models
on disk changed: re-list them) and ``app.transport.events.<field>`` for the transport.
The model emits on the thread that changed it; the GUI changes it on the UI thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from psygnal import Signal, SignalGroup, evented

from studio.core.devices import DeviceChoice, select_device
from studio.core.model_registry import ModelEntry, scan_models
from studio.core.settings import Settings

ModelSource = Callable[[], list[ModelEntry]]


class AppEvents(SignalGroup):
    device = Signal(object)  # DeviceChoice: render and run on this from now on
    settings = Signal(object)  # Settings: a change was applied


class ModelRegistry:
    """Every model the studio can see: the model folders of the settings, plus sources of
    models that ship inside packages (e.g. the default Piper voice). Scanned on first use
    and on :meth:`refresh`; ``changed`` fires after each refresh."""

    changed = Signal()

    def __init__(self, dirs: Callable[[], list[Path]],
                 sources: Iterable[ModelSource] = ()) -> None:
        self._dirs = dirs
        self._sources: list[ModelSource] = list(sources)
        self._entries: list[ModelEntry] | None = None
        self._problems: list[str] = []

    def add_source(self, source: ModelSource) -> None:
        self._sources.append(source)
        if self._entries is not None:
            self.refresh()

    def _scan(self) -> None:
        entries, problems = scan_models(self._dirs())
        for source in self._sources:
            entries = entries + source()
        self._entries, self._problems = entries, problems

    @property
    def entries(self) -> list[ModelEntry]:
        if self._entries is None:
            self._scan()
        return list(self._entries or [])

    @property
    def problems(self) -> list[str]:
        if self._entries is None:
            self._scan()
        return list(self._problems)

    def of_kind(self, kind: str) -> list[ModelEntry]:
        return [e for e in self.entries if e.kind == kind]

    def refresh(self) -> None:
        """Scan again (a model was imported, trained or deleted) and tell the listeners."""
        self._scan()
        self.changed.emit()


@evented
@dataclass
class Transport:
    """The playhead of the timeline, shared by the timeline, the preview and the player."""

    time: float = 0.0  # seconds
    playing: bool = False
    loop: tuple[float, float] | None = None  # (start, end) seconds, or no loop

    def seek(self, t: float) -> None:
        self.time = max(0.0, float(t))

    def play(self) -> None:
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def set_loop(self, start: float | None, end: float | None = None) -> None:
        """Loop ``start``..``end`` (``set_loop(None)`` turns looping off)."""
        if start is None or end is None:
            self.loop = None
            return
        start, end = max(0.0, float(start)), float(end)
        if not end > start:
            raise ValueError(f"a loop must end after it starts ({start:g} s to {end:g} s)")
        self.loop = (start, end)


def same_device(a: DeviceChoice | None, b: DeviceChoice | None) -> bool:
    """True when ``a`` and ``b`` compute the same way (the reasons may differ)."""
    if a is None or b is None:
        return a is b
    return (a.device, a.precision) == (b.device, b.precision)


class AppModel:
    """Settings, device, model registry and transport, with events (see the module)."""

    def __init__(self, settings: Settings | None = None, *,
                 model_sources: Iterable[ModelSource] = (),
                 device: DeviceChoice | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.events = AppEvents()
        self.models = ModelRegistry(self.settings.all_model_dirs, model_sources)
        self.transport = Transport()
        self._device = device
        self._model_dirs = list(self.settings.model_dirs)

    @property
    def device(self) -> DeviceChoice:
        """The resolved device of the settings (resolved on first use: it imports torch)."""
        if self._device is None:
            self._device = select_device(self.settings.device, self.settings.precision)
        return self._device

    def apply_settings(self) -> None:
        """Call after ``settings`` changed: re-resolve the device (``events.device`` fires
        when it differs), rescan the models when the folders changed, then fire
        ``events.settings``."""
        new = select_device(self.settings.device, self.settings.precision)
        old, self._device = self._device, new
        if not same_device(old, new):
            self.events.device.emit(new)
        if self.settings.model_dirs != self._model_dirs:
            self._model_dirs = list(self.settings.model_dirs)
            self.models.refresh()
        self.events.settings.emit(self.settings)

    def update_settings(self, **changes: object) -> None:
        """Set fields of ``settings`` (validated) and apply them."""
        for key, value in changes.items():
            setattr(self.settings, key, value)
        self.apply_settings()


__all__ = ["AppEvents", "AppModel", "ModelRegistry", "Transport", "same_device"]

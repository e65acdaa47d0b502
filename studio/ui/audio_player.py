"""Audio playback through sounddevice (PortAudio), non-blocking, with a playhead clock.

sounddevice is imported lazily on a worker thread: importing it raises ``OSError`` when
the PortAudio library is missing, and asking for the output device raises
``PortAudioError`` on machines without one (CI, headless servers). Either way the player
reports ``available == False`` with a reason, and everything else keeps working.

The playhead position is the audio clock: the output stream's time since playback started,
less the output latency (what is heard now), so a picture that follows it stays in sync
with the sound. Where the host API gives no stream time (it reads 0), the wall-clock time
since playback started stands in (``clock_source`` says which). A timer emits the position
about 30 times a second.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

NO_DEVICE = "No audio output device: playback is off"
NO_LIBRARY = "Audio library (PortAudio) missing: playback is off"
NOT_INSTALLED = "Audio playback is not installed (sounddevice): playback is off"


def import_sounddevice() -> Any:
    """The sounddevice module (its import loads PortAudio; may raise OSError)."""
    import sounddevice

    return sounddevice


def probe_output() -> tuple[Any | None, str, str]:
    """(module or None, short message for the status bar, details) for the default output."""
    try:
        sd = import_sounddevice()
    except OSError as exc:
        return None, NO_LIBRARY, f"PortAudio could not be loaded: {exc}"
    except ImportError as exc:
        return None, NOT_INSTALLED, str(exc)
    try:
        info = sd.query_devices(kind="output")
    except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError: no usable device
        return None, NO_DEVICE, f"{type(exc).__name__}: {exc}"
    if not info:
        return None, NO_DEVICE, "the audio system reports no output device"
    name = info.get("name", "") if isinstance(info, dict) else str(info)
    return sd, "", f"Output: {name}"


class AudioPlayer(QObject):
    """Plays one mono float32 buffer at a time. Listen to ``position_changed``."""

    availability_changed = Signal(bool, str, str)  # available, message, details
    started = Signal()
    stopped = Signal()
    position_changed = Signal(float)  # seconds from the start of the buffer
    _probed = Signal(object, str, str)  # from the probe thread, delivered on the UI thread

    TICK_MS = 30

    def __init__(self, parent: QObject | None = None, probe: bool = True) -> None:
        super().__init__(parent)
        self._sd: Any | None = None
        self.checked = False  # the device probe has answered
        self.message = "Checking the audio output…"
        self.details = ""
        self._duration = 0.0
        self._offset = 0.0
        self._t0: float | None = None
        self._stream: Any | None = None  # the output stream of the sound playing now
        self._stream_t0 = 0.0
        self.clock_source = "wall"  # "audio" while the stream's clock is used
        self._timer = QTimer(self)
        self._timer.setInterval(self.TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._probed.connect(self._on_probed)
        if probe:
            self.probe()

    # -- device ----------------------------------------------------------------------
    def probe(self, wait: bool = False) -> None:
        """Look for an output device off the UI thread (PortAudio start-up can be slow)."""
        def work() -> None:
            sd, message, details = probe_output()
            with contextlib.suppress(RuntimeError):  # the player was deleted meanwhile
                self._probed.emit(sd, message, details)

        thread = threading.Thread(target=work, name="audio-probe", daemon=True)
        thread.start()
        if wait:
            thread.join(5.0)

    def _on_probed(self, sd: Any, message: str, details: str) -> None:
        self.checked = True
        self.set_backend(sd, message, details)

    def set_backend(self, sd: Any | None, message: str = "", details: str = "") -> None:
        self.stop()
        self._sd = sd
        self.message = "" if sd is not None else (message or NO_DEVICE)
        self.details = details
        self.availability_changed.emit(self.available, self.message, self.details)

    @property
    def available(self) -> bool:
        return self._sd is not None

    # -- playback --------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._t0 is not None

    @property
    def duration(self) -> float:
        return self._duration

    def _stream_time(self) -> float | None:
        """Seconds of sound heard since the stream started, by its clock; None if it has
        none."""
        stream = self._stream
        if stream is None:
            return None
        try:
            now = float(stream.time)
            latency = stream.latency
            latency = float(latency[1] if isinstance(latency, tuple | list) else latency)
        except Exception:  # noqa: BLE001 - a host API without a clock, a closed stream
            return None
        if now <= 0.0 or self._stream_t0 <= 0.0:
            return None
        return max(0.0, now - self._stream_t0 - latency)

    def position(self) -> float:
        if self._t0 is None:
            return self._offset
        heard = self._stream_time()
        self.clock_source = "wall" if heard is None else "audio"
        if heard is None:
            heard = time.monotonic() - self._t0
        return min(self._offset + heard, self._duration)

    def play(self, audio: np.ndarray, sample_rate: int, start: float = 0.0) -> bool:
        """Start playing (returns at once). False, with ``message`` set, if it cannot."""
        self.stop()
        if self._sd is None:
            return False
        data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        first = max(0, min(len(data), int(start * sample_rate)))
        if first >= len(data):
            return False
        try:
            self._sd.play(data[first:], int(sample_rate))
        except Exception as exc:  # noqa: BLE001 - a device that vanished must not crash us
            self.set_backend(None, f"Audio output failed: playback is off ({exc})", str(exc))
            return False
        self._duration = len(data) / float(sample_rate)
        self._offset = first / float(sample_rate)
        self._t0 = time.monotonic()
        self._stream, self._stream_t0 = None, 0.0
        with contextlib.suppress(Exception):  # older sounddevice, a host API without a clock
            self._stream = self._sd.get_stream()
            self._stream_t0 = float(self._stream.time)
        self._timer.start()
        self.started.emit()
        self.position_changed.emit(self._offset)
        return True

    def stop(self) -> None:
        if self._t0 is None:
            return
        self._t0 = None
        self._offset = 0.0
        self._stream = None
        self._timer.stop()
        if self._sd is not None:
            with contextlib.suppress(Exception):  # stopping a dead stream is fine
                self._sd.stop()
        self.position_changed.emit(0.0)
        self.stopped.emit()

    def _tick(self) -> None:
        pos = self.position()
        if pos >= self._duration:
            self._t0 = None
            self._offset = 0.0
            self._timer.stop()
            self.position_changed.emit(self._duration)
            self.stopped.emit()
            return
        self.position_changed.emit(pos)

"""What a clip draws besides its bar: the audio's waveform and the phoneme timings.

Audio is decoded off the UI thread, once per file, into peaks (the loudest sample of each
1/PEAK_RATE s); the phoneme timings are read from the timings file next to the audio
(``<audio>.timings.json``, written when speech is added to the timeline). ``loaded`` fires
on the UI thread when a file's data arrives.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.core.errors import StudioError
from studio.core.project import Clip, resolve_asset
from studio.timeline.speech import timings_path
from studio.ui.worker_gate import WorkerGate

PEAK_RATE = 200  # peaks per second of audio


class ClipData:
    __slots__ = ("peaks", "phonemes")

    def __init__(self, peaks: np.ndarray, phonemes: list[tuple[str, float, float]]) -> None:
        self.peaks = peaks  # float32, PEAK_RATE per second, 0..1
        self.phonemes = phonemes  # (label, start, end) seconds into the audio


def _load(path: Path) -> ClipData:
    from studio.voice.audio_io import load_audio
    from studio.voice.types import load_timings

    peaks = np.zeros(0, np.float32)
    try:
        clip = load_audio(path)
        hop = max(1, clip.sample_rate // PEAK_RATE)
        n = len(clip.audio) // hop
        if n:
            body = np.abs(clip.audio[: n * hop]).reshape(n, hop)
            peaks = body.max(axis=1).astype(np.float32)
            peaks /= max(float(peaks.max()), 1e-6)
    except (StudioError, OSError, ValueError):
        pass  # a missing or broken file: the clip is drawn without a waveform
    phonemes: list[tuple[str, float, float]] = []
    side = timings_path(path)
    if side.is_file():
        with contextlib.suppress(StudioError, OSError, ValueError):
            phonemes = [(p.phoneme, p.start, p.end) for p in load_timings(side).phonemes]
    return ClipData(peaks, phonemes)


class ClipAssets(QObject):
    loaded = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cache: dict[str, ClipData | None] = {}  # None: loading
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-assets")
        self._gate = gate = WorkerGate()  # nothing is emitted once the view is being deleted
        pool = self._pool
        self.destroyed.connect(lambda *_: (gate.close(),
                                           pool.shutdown(wait=False, cancel_futures=True)))

    def get(self, project_path: Path | None, clip: Clip) -> ClipData | None:
        """The clip's data, or None while it loads (``loaded`` says when it is there)."""
        if clip.audio is None or project_path is None:
            return None
        try:
            path = resolve_asset(project_path, clip.audio)
        except StudioError:
            return None
        key = str(path)
        if key in self._cache:
            return self._cache[key]
        self._cache[key] = None
        future = self._pool.submit(_load, path)
        future.add_done_callback(lambda f, k=key: self._arrived(k, f))
        return None

    def _arrived(self, key: str, future) -> None:  # on the worker thread
        if future.cancelled() or future.exception() is not None:
            return
        self._cache[key] = future.result()
        with contextlib.suppress(RuntimeError):  # the view may be gone
            self._gate.emit(self.loaded, key)  # queued to the UI thread

    def is_loading(self) -> bool:
        return any(v is None for v in self._cache.values())

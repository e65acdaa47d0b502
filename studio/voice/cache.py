"""Cache of synthesis results keyed by (text, voice, settings): memory LRU + optional disk.

Disk entries are ``.npz`` files (audio array + timings JSON string) read with
``allow_pickle=False``; a damaged entry is ignored and replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from studio.core.atomic import atomic_write
from studio.voice.types import SpeechResult, timings_from_dict

CACHE_VERSION = 1


def cache_key(text: str, voice_fingerprint: str, settings_key: tuple) -> str:
    blob = json.dumps([CACHE_VERSION, text, voice_fingerprint, list(settings_key)],
                      ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


MAX_MEMORY_BYTES = 512 * 1024 * 1024
"""Audio the memory cache keeps at most; a result over a quarter of it is only kept on disk."""


class SpeechCache:
    """Thread-safe LRU of :class:`SpeechResult` with an optional folder behind it."""

    def __init__(self, max_items: int = 64, folder: str | Path | None = None,
                 max_bytes: int = MAX_MEMORY_BYTES) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.folder = Path(folder) if folder is not None else None
        self._items: OrderedDict[str, SpeechResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> SpeechResult | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return _copy(self._items[key])
        result = self._load(key)
        with self._lock:
            if result is None:
                self.misses += 1
                return None
            self.hits += 1
            self._remember(key, result)
        return _copy(result)

    def put(self, key: str, result: SpeechResult) -> None:
        if result.audio.nbytes <= self.max_bytes // 4:
            with self._lock:
                self._remember(key, _copy(result))
        self._store(key, result)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def _remember(self, key: str, result: SpeechResult) -> None:
        if result.audio.nbytes > self.max_bytes // 4:
            return  # hours of speech: kept on disk only
        self._items[key] = result
        self._items.move_to_end(key)
        while len(self._items) > self.max_items or (
                len(self._items) > 1
                and sum(r.audio.nbytes for r in self._items.values()) > self.max_bytes):
            self._items.popitem(last=False)

    def _path(self, key: str) -> Path | None:
        return self.folder / f"{key}.npz" if self.folder is not None else None

    def _store(self, key: str, result: SpeechResult) -> None:
        path = self._path(key)
        if path is None:
            return
        meta = {"sample_rate": result.sample_rate, "voice": result.voice,
                "timings": result.timings_dict(decimals=None)}
        audio = result.audio.astype(np.float32, copy=False)
        text = np.array(json.dumps(meta, ensure_ascii=False))
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            # written straight into the file: no in-memory copy of the whole archive
            atomic_write(path, lambda f: np.savez(f, audio=audio, meta=text))

    def _load(self, key: str) -> SpeechResult | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                audio = data["audio"].astype(np.float32)
                meta = json.loads(str(data["meta"]))
            t = timings_from_dict(meta["timings"])
            return SpeechResult(audio, int(meta["sample_rate"]), t.phonemes, t.words,
                                t.sentence_ends, str(meta.get("voice", "")))
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            return None


def _copy(result: SpeechResult) -> SpeechResult:
    return SpeechResult(result.audio.copy(), result.sample_rate, list(result.phonemes),
                        list(result.words), list(result.sentence_ends), result.voice)


DEFAULT_CACHE = SpeechCache()

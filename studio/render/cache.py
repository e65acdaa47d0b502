"""The render cache: frames keyed by what decides their pixels, Qt-free and thread-safe.

A key is a digest of the frame request's fields (seed, truncation, mixing, noise mode, z,
latent, control values, W offset, size), the face model file (path, size and modification
time, so a retrained model misses) and the device and precision it renders on. Two times
of the timeline that evaluate to the same request share one frame.

The cache holds at most ``max_bytes`` of frames and drops the least recently used first.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studio.face.request import FaceRequest

__all__ = ["DEFAULT_CACHE_BYTES", "FrameCache", "frame_key", "model_stamp"]

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


def model_stamp(path: str | os.PathLike[str] | None) -> str:
    """The model file as part of a key: resolved path, size and modification time."""
    if path is None:
        return "no-model"
    p = Path(path)
    try:
        st = p.stat()
        return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        return str(p)


def _array(h: hashlib._Hash, name: str, a: np.ndarray | None) -> None:
    if a is None:
        h.update(f"{name}:none;".encode())
        return
    arr = np.ascontiguousarray(a)
    h.update(f"{name}:{arr.dtype.str}{arr.shape};".encode())
    h.update(arr.tobytes())


def frame_key(req: FaceRequest, model: str | os.PathLike[str] | None, device: str,
              precision: str = "") -> str:
    """A digest of everything that changes the pixels of ``req``'s frame. ``model`` is the
    model file (a path: stat'ed here) or its :func:`model_stamp` (a string: taken as is,
    so a caller keying many frames stats the file once)."""
    h = hashlib.blake2b(digest_size=16)
    mix = tuple(req.mix_layers) if req.mix_layers is not None else None
    controls = sorted((str(k), float(v)) for k, v in req.controls.items() if float(v) != 0.0)
    h.update(repr((int(req.seed), float(req.truncation), req.mix_seed, mix, req.noise_mode,
                   req.size, controls, model if isinstance(model, str) else model_stamp(model),
                   str(device),
                   str(precision))).encode())
    _array(h, "z", req.z)
    _array(h, "latent", req.latent)
    _array(h, "w_offset", req.w_offset)
    return h.hexdigest()


class FrameCache:
    """Frames by key, least recently used dropped past ``max_bytes``. ``on_change`` is
    called (on the thread that changed it) after a frame was added or dropped."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES,
                 on_change: Callable[[], None] | None = None) -> None:
        self.max_bytes = int(max_bytes)
        self.on_change = on_change
        self._frames: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._frames

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            img = self._frames.get(key)
            if img is None:
                self.misses += 1
                return None
            self._frames.move_to_end(key)
            self.hits += 1
            return img

    def put(self, key: str, image: np.ndarray) -> None:
        img = np.asarray(image)
        if img.nbytes > self.max_bytes:
            return  # one frame larger than the whole cache is not kept
        img.setflags(write=False)
        with self._lock:
            old = self._frames.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._frames[key] = img
            self._bytes += img.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._frames.popitem(last=False)
                self._bytes -= dropped.nbytes
        if self.on_change is not None:
            self.on_change()

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._frames)

    def clear(self) -> None:
        with self._lock:
            had = bool(self._frames)
            self._frames.clear()
            self._bytes = 0
        if had and self.on_change is not None:
            self.on_change()

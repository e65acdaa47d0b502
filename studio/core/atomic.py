"""Atomic file writes: temp file in the same folder, fsync, rename; keep a backup."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not all platforms can open a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _keep_backup(path: Path) -> None:
    """Make ``<name>.bak`` a copy of ``path`` atomically (a hard link where possible)."""
    bak = path.with_name(path.name + ".bak")
    fd, tmp = tempfile.mkstemp(prefix=f".{bak.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        os.link(path, tmp)  # instant even for multi-GB checkpoints
    except OSError:
        shutil.copy2(path, tmp)
    os.replace(tmp, bak)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None],
                 backup: bool = False) -> Path:
    """Call ``write(file)`` on a temp file, then move it over ``path``: readers see the old
    file or the new one, never half of one. With ``backup``, the previous file is kept as
    ``<name>.bak`` (the last good save)."""
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes 0600 files; give the result the mode a normal file would have
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if backup and path.exists():
            _keep_backup(path)
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes, backup: bool = False) -> None:
    atomic_write(path, lambda f: f.write(data), backup=backup)


def atomic_write_text(path: str | Path, text: str, backup: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), backup=backup)

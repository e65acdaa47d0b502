"""Atomic file writes: temp file in the same folder, fsync, rename; keep a backup."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


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


def atomic_write_bytes(path: str | Path, data: bytes, backup: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half.

    With ``backup``, the previous file is kept as ``<name>.bak`` (the last good save).
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes 0600 files; give the result the mode a normal file would have
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if backup and path.exists():
            bak = path.with_name(path.name + ".bak")
            fd2, tmp2 = tempfile.mkstemp(prefix=f".{bak.name}.", suffix=".tmp", dir=folder)
            os.close(fd2)
            shutil.copy2(path, tmp2)
            os.replace(tmp2, bak)
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str, backup: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), backup=backup)

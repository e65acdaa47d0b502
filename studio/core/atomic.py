"""Atomic file writes: temp file in the same folder, fsync, rename; keep a backup.

A write killed half-way leaves its temp file (``.<name>.XXXXXXXX.tmp``) behind;
:func:`remove_stale_temps` clears those of one target once nothing has written to them for
a while.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
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


# A temp file nothing has written to for this long belongs to a write that was killed: a
# live write touches its file at every chunk.
STALE_AFTER_S = 60.0


def _temp_name_pattern(path: Path) -> re.Pattern[str]:
    """Names of the temp files :func:`atomic_write` makes for ``path`` (and for its backup):
    ``.<name>.`` + mkstemp's 8 random characters + ``.tmp``."""
    return re.compile(rf"\.{re.escape(path.name)}\.(?:bak\.)?[a-z0-9_]{{8}}\.tmp")


def stale_temps(path: str | Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Temp files left in ``path``'s folder by killed writes of ``path``: only names of its
    own temp pattern, only regular files, only those untouched for ``older_than_s``."""
    path = Path(path)
    pattern = _temp_name_pattern(path)
    now = time.time()
    found = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if entry.is_file(follow_symlinks=False) and now - st.st_mtime >= older_than_s:
                found.append(Path(entry.path))
    return sorted(found)


def remove_stale_temps(path: str | Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete :func:`stale_temps` of ``path``; returns what was removed (best effort)."""
    removed = []
    for tmp in stale_temps(path, older_than_s):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed

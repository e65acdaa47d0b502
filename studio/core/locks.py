"""Advisory locks on outputs, so two writers never silently overwrite each other.

``with output_lock(path):`` holds ``.<name>.lock`` beside ``path`` (an ``flock`` on it, so
the lock goes away with the process even after ``kill -9``); a second process asking for
the same output gets a clear "in use by process N" error at once instead of waiting.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from studio.core.errors import StudioError

try:  # POSIX; on Windows the lock is a no-op (documented, not silently wrong)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class OutputInUse(StudioError):
    """Another process is writing the same output."""


def lock_path(path: str | Path) -> Path:
    """``.<name>.lock`` beside the output, file or folder alike: the same place whether or
    not the output exists yet, so two processes creating it meet at one lock."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _holder(lock: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock.read_text(encoding="ascii").strip() or "0")
        if pid > 0:
            return f"process {pid}"
    return "another process"


@contextlib.contextmanager
def output_lock(path: str | Path, what: str = "output") -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (a file or a folder) for the block."""
    path = Path(path)
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputInUse(f"this {what} is in use by {_holder(lock)}; "
                              "wait for it to finish or choose another", path) from None
        # The holder before us may have removed the file after we opened it: then our lock
        # is on an orphan inode and someone else may lock the new file. Retry.
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock)  # tidy; a racing locker re-creates it, which is fine
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

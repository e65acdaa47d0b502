"""Bounded, safe reads of user-given files.

Every file the user names (a project, a timings file, a text file, a checkpoint) goes
through here first: it must be a regular file (not a FIFO, a device such as ``/dev/zero``,
or a folder), its symlinks must resolve (no loops), and it must not be larger than what the
caller can use. Each problem becomes a :class:`FileFormatError` naming the file, never a
hang or a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from studio.core.errors import FileFormatError, StudioError


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def resolve_path(path: str | Path) -> Path:
    """``path`` with its symlinks resolved; a loop or an unreadable link is a clear error."""
    path = Path(path)
    try:
        return path.resolve(strict=False)
    except (RuntimeError, OSError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
        raise StudioError(f"cannot follow this path ({exc.__class__.__name__}: "
                          "a symlink loop?)", path) from None


def check_regular_file(path: str | Path, max_bytes: int | None = None,
                       what: str = "file") -> int:
    """Check that ``path`` is an existing regular file of at most ``max_bytes``.

    Returns its size. Never opens the file, so FIFOs and devices cannot block us."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks; a loop raises OSError(ELOOP)
    except FileNotFoundError:
        raise StudioError(f"no such {what}", path) from None
    except OSError as exc:
        raise StudioError(f"cannot read this {what}: {exc.strerror or exc}", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise StudioError(f"is a folder, not a {what}", path)
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(f"not a regular file (a pipe or a device?): cannot be a {what}",
                              path)
    if max_bytes is not None and st.st_size > max_bytes:
        raise FileFormatError(f"{_human(st.st_size)} is too large for a {what} "
                              f"(at most {_human(max_bytes)})", path)
    return st.st_size


def read_bytes_bounded(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (checked before reading, and
    again while reading in case the file grows)."""
    path = Path(path)
    size = check_regular_file(path, max_bytes, what)
    try:
        with open(path, "rb") as f:
            # read what is there, plus one byte to notice growth; never ask for max_bytes
            # at once (Python allocates a read's whole size up front)
            data = f.read(min(size, max_bytes) + 1)
    except OSError as exc:
        raise StudioError(f"cannot read this {what}: {exc.strerror or exc}", path) from None
    if len(data) > size:
        raise FileFormatError("the file grew while being read; try again when it is complete",
                              path)
    return data


def read_text_bounded(path: str | Path, max_bytes: int, what: str = "text file") -> str:
    """UTF-8 text of a regular file of at most ``max_bytes``."""
    data = read_bytes_bounded(path, max_bytes, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"not UTF-8 text (byte {exc.start})", path) from None

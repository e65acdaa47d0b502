"""Unexpected errors in a command: one line for the user, the full report in a log file."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from studio import __version__


class JobCrashed(RuntimeError):
    """A job failed with an unexpected error; ``details`` holds its traceback."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


def short_message(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``str(exc)``, at most ``limit`` characters."""
    try:
        text = str(exc).strip()
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error
        text = ""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def os_error_message(exc: OSError) -> str:
    """``<file>: <what the system said>`` for an OSError (read-only folder, disk full, ...)."""
    what = exc.strerror or short_message(exc) or type(exc).__name__
    names = [os.fsdecode(n) if isinstance(n, bytes) else str(n)
             for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


def one_line(exc: BaseException, log: Path | None) -> str:
    """``error: <Type>: <short message> (details in <log>)``."""
    where = f"details in {log}" if log is not None else "no log file could be written"
    if isinstance(exc, JobCrashed):  # its message already starts with the job error's type
        head = short_message(exc) or "a job failed"
    else:
        message = short_message(exc)
        head = type(exc).__name__ + (f": {message}" if message else "")
    return f"error: {head} ({where})"


def write_error_log(exc: BaseException, argv: list[str] | None = None) -> Path | None:
    """Write ``exc``'s full traceback (a crashed job's own traceback too) to a new file in
    :func:`studio.core.paths.log_dir`; returns its path, or None when no log could be
    written (a read-only or full disk)."""
    from studio.core.paths import log_dir

    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, JobCrashed):
            text = f"{exc.details}\nreported by the command as:\n{text}"
    except Exception:  # noqa: BLE001 - e.g. MemoryError again while formatting
        text = f"{type(exc).__name__}: {short_message(exc)} (no traceback could be formatted)\n"
    args = sys.argv[1:] if argv is None else argv
    header = (f"studio {__version__}, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
              f"python {sys.version.split()[0]}\n"
              f"command: studio {' '.join(map(str, args))}\n\n")
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        n = 1
        while path.exists():
            n += 1
            path = path.with_name(f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{n}.log")
        path.write_text(header + text, encoding="utf-8")
    except (OSError, ValueError):
        return None
    return path

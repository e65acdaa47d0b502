"""Errors meant for the artist: a clear message naming the file and what is wrong."""

from __future__ import annotations

from pathlib import Path


class StudioError(Exception):
    """A problem the user can act on. The UI and CLI show ``str(err)``, never a traceback."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)
        self.reason = message


class FileFormatError(StudioError):
    """A file that cannot be read: wrong type, truncated, malformed or hostile."""

"""Crash recovery: autosaved snapshots of open projects, offered again after a crash.

Each running app writes ``<session>.recovery.json`` holding the project and where it came
from. A clean exit deletes it. At start, files left by sessions whose process is gone are
offered for recovery.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from studio.core import paths
from studio.core.atomic import atomic_write_text
from studio.core.errors import FileFormatError
from studio.core.project import Project, project_from_text

SUFFIX = ".recovery.json"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass
class RecoveryEntry:
    file: Path
    source: Path | None  # the project file it was editing, None if never saved
    saved_at: float
    pid: int
    title: str

    def load(self) -> Project:
        data = json.loads(self.file.read_text(encoding="utf-8"))
        return project_from_text(json.dumps(data["project"]), self.file)


class RecoveryStore:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder else paths.recovery_dir()
        self.session = f"{os.getpid()}-{int(time.time() * 1000)}"
        self._lock = threading.Lock()

    @property
    def file(self) -> Path:
        return self.folder / f"{self.session}{SUFFIX}"

    def write(self, project_text: str, source: Path | None, title: str) -> Path:
        """Write this session's snapshot atomically (safe to call from a worker thread)."""
        body = (
            '{"meta": '
            + json.dumps({"pid": os.getpid(), "source": str(source) if source else None,
                          "saved_at": time.time(), "title": title})
            + ', "project": ' + project_text + "}"
        )
        with self._lock:
            atomic_write_text(self.file, body)
        return self.file

    def discard_own(self) -> None:
        with self._lock, contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    def pending(self) -> list[RecoveryEntry]:
        """Snapshots left by sessions that are no longer running, newest first."""
        if not self.folder.is_dir():
            return []
        entries = []
        for f in self.folder.glob(f"*{SUFFIX}"):
            if f == self.file:
                continue
            try:
                meta = json.loads(f.read_text(encoding="utf-8"))["meta"]
                pid = int(meta["pid"])
                entry = RecoveryEntry(f, Path(meta["source"]) if meta.get("source") else None,
                                      float(meta["saved_at"]), pid, str(meta.get("title", "")))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # half-written or foreign file: ignore it
            if not _pid_alive(entry.pid):
                entries.append(entry)
        return sorted(entries, key=lambda e: e.saved_at, reverse=True)

    @staticmethod
    def discard(entry: RecoveryEntry) -> None:
        with contextlib.suppress(FileNotFoundError):
            entry.file.unlink()

    @staticmethod
    def load(entry: RecoveryEntry) -> Project:
        try:
            return entry.load()
        except (OSError, ValueError, KeyError) as exc:
            raise FileFormatError(f"recovery file is damaged ({exc})", entry.file) from None

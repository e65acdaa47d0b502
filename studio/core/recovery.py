"""Crash recovery: autosaved snapshots of open projects, offered again after a crash.

Each running app writes ``<session>.recovery.json`` holding the project and where it came
from. A clean exit deletes it. At start, files left by sessions whose process is gone are
offered for recovery.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from studio.core import paths
from studio.core.atomic import STALE_AFTER_S, atomic_write_text
from studio.core.errors import FileFormatError, StudioError
from studio.core.files import read_text_bounded
from studio.core.project import MAX_FILE_BYTES, Project, project_from_text

SUFFIX = ".recovery.json"
MAX_RECOVERY_BYTES = MAX_FILE_BYTES + 64 * 1024  # a project and a little metadata
# Temp files of killed autosaves: ".<pid>-<ms>.recovery.json.XXXXXXXX.tmp"
_TEMP = re.compile(r"\.(\d+)-\d+\.recovery\.json\.[a-z0-9_]{8}\.tmp")


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
        data = json.loads(read_text_bounded(self.file, MAX_RECOVERY_BYTES, "recovery file"))
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
        self._remove_stale_temps()
        entries = []
        for f in self.folder.glob(f"*{SUFFIX}"):
            if f == self.file:
                continue
            try:
                meta = json.loads(read_text_bounded(f, MAX_RECOVERY_BYTES, "recovery file"))["meta"]
                pid = int(meta["pid"])
                entry = RecoveryEntry(f, Path(meta["source"]) if meta.get("source") else None,
                                      float(meta["saved_at"]), pid, str(meta.get("title", "")))
            except (OSError, ValueError, KeyError, TypeError, StudioError):
                continue  # half-written or foreign file (or not a file at all): ignore it
            if not _pid_alive(entry.pid):
                entries.append(entry)
        return sorted(entries, key=lambda e: e.saved_at, reverse=True)

    def _remove_stale_temps(self) -> None:
        """Temp files of autosaves killed half-way by sessions that are gone."""
        now = time.time()
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                m = _TEMP.fullmatch(entry.name)
                if m is None or _pid_alive(int(m.group(1))):
                    continue
                with contextlib.suppress(OSError):
                    if (entry.is_file(follow_symlinks=False)
                            and now - entry.stat(follow_symlinks=False).st_mtime >= STALE_AFTER_S):
                        os.unlink(entry.path)

    @staticmethod
    def discard(entry: RecoveryEntry) -> None:
        with contextlib.suppress(FileNotFoundError):
            entry.file.unlink()

    @staticmethod
    def load(entry: RecoveryEntry) -> Project:
        try:
            return entry.load()
        except StudioError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FileFormatError(f"recovery file is damaged ({exc})", entry.file) from None

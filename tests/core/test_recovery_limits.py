"""Crash recovery never hangs on odd files and cleans up after killed autosaves."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from studio.core.project import Project, project_to_text
from studio.core.recovery import RecoveryStore


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.timeout(30)
def test_a_pipe_named_like_a_recovery_file_does_not_hang_the_start(tmp_path):
    os.mkfifo(tmp_path / "x.recovery.json")  # the old code blocked reading it, for ever
    (tmp_path / "y.recovery.json").symlink_to(tmp_path / "y.recovery.json")  # a loop
    assert RecoveryStore(tmp_path).pending() == []


def test_temp_files_of_killed_autosaves_are_removed(tmp_path):
    store = RecoveryStore(tmp_path)
    store.write(project_to_text(Project()), None, "Untitled")
    dead, old = _dead_pid(), time.time() - 3600
    stale = tmp_path / f".{dead}-123.recovery.json.ab_12xyz.tmp"
    fresh = tmp_path / f".{dead}-124.recovery.json.ab_12xyz.tmp"
    alive = tmp_path / f".{os.getpid()}-1.recovery.json.ab_12xyz.tmp"  # a running session
    other = tmp_path / f".{dead}-123.recovery.json.notes.tmp"
    for f in (stale, fresh, alive, other):
        f.write_bytes(b"x" * 100)
    for f in (stale, alive, other):
        os.utime(f, (old, old))
    RecoveryStore(tmp_path).pending()
    assert not stale.exists()
    assert fresh.exists() and alive.exists() and other.exists() and store.file.exists()

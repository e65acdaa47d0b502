"""studio.core.locks: one writer per output, across threads and real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from studio.core.errors import StudioError
from studio.core.locks import OutputInUse, lock_path, output_lock

HOLD = textwrap.dedent("""
    import sys
    from studio.core.locks import output_lock
    with output_lock(sys.argv[1], sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
""")


def _holder(path, what="output"):
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path), what],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_lock_paths(tmp_path):
    assert lock_path(tmp_path / "a.dhproj") == tmp_path / ".a.dhproj.lock"
    assert lock_path(tmp_path / "set") == tmp_path / ".set.lock"  # a folder: beside it too


def test_second_lock_in_one_process_is_refused_then_free(tmp_path):
    out = tmp_path / "a.dhproj"
    with output_lock(out, "project"):
        assert lock_path(out).read_text() == str(os.getpid())
        with pytest.raises(OutputInUse) as err, output_lock(out, "project"):
            pass
        assert isinstance(err.value, StudioError)
        assert f"this project is in use by process {os.getpid()}" in str(err.value)
        assert str(out) in str(err.value)
    assert not lock_path(out).exists()  # tidied
    with output_lock(out):
        pass


def test_lock_released_when_the_block_raises(tmp_path):
    out = tmp_path / "x"
    with pytest.raises(RuntimeError), output_lock(out):
        raise RuntimeError("boom")
    with output_lock(out):
        pass


def test_two_processes_one_output(tmp_path):
    out = tmp_path / "p.dhproj"
    child = _holder(out, "project")
    try:
        with pytest.raises(OutputInUse, match=f"in use by process {child.pid}"), \
                output_lock(out, "project"):
            pass
        with output_lock(tmp_path / "other.dhproj"):  # other outputs are free
            pass
    finally:
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "released"
        child.wait(timeout=30)
    with output_lock(out):
        pass


def test_lock_of_a_killed_process_is_free(tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    child = _holder(folder, "data set folder")
    with pytest.raises(OutputInUse, match="data set folder is in use"), \
            output_lock(folder, "data set folder"):
        pass
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert lock_path(folder).exists()  # left behind by kill -9, but not held
    with output_lock(folder):
        assert lock_path(folder).read_text() == str(os.getpid())


def test_child_cannot_take_a_lock_this_process_holds(tmp_path):
    out = tmp_path / "p.dhproj"
    code = ("import sys\nfrom studio.core.locks import output_lock, OutputInUse\n"
            "try:\n    with output_lock(sys.argv[1]): print('got it')\n"
            "except OutputInUse as e: print(e)\n")
    with output_lock(out, "project"):
        res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                             text=True, timeout=60)
    assert f"in use by process {os.getpid()}" in res.stdout, res.stderr

"""``studio import`` given things that are not checkpoint files (a symlink loop, a FIFO,
``/dev/zero``) or an output another import is writing: a one-line error naming the file at
once, never a traceback or a hang, and nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hostile_files import assert_one_line_error, run_studio
from import_fixtures import tiny_generator, write_nvidia_pkl

import studio.cli as cli


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["import", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    G, kwargs = tiny_generator()
    return write_nvidia_pkl(tmp_path / "net.pkl", G.state_dict(), kwargs,
                            marker=tmp_path / "EXECUTED")


def test_a_symlink_loop_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a.pkl", tmp_path / "b.pkl"
    a.symlink_to(b)
    b.symlink_to(a)
    out = tmp_path / "out.safetensors"
    for args in (["import", str(a), "-o", str(out)], ["import", "--inspect", str(a)]):
        code = cli.main(args)
        line = _one_line(capsys.readouterr().err)
        assert code == 2
        assert "a.pkl" in line and "symbolic links" in line
    assert os.readlink(a) == str(b) and os.readlink(b) == str(a)
    assert not out.exists()


def test_an_output_symlink_loop_is_a_one_line_error(tmp_path: Path, capsys,
                                                    checkpoint: Path) -> None:
    out = tmp_path / "loop.safetensors"
    out.symlink_to(out)
    before = checkpoint.read_bytes()
    code, _, err = _cli(capsys, str(checkpoint), "-o", str(out))
    line = _one_line(err)
    assert code == 2 and "loop.safetensors" in line
    assert checkpoint.read_bytes() == before


def test_dev_zero_is_refused_without_reading_it(capsys) -> None:
    for args in (["/dev/zero", "-o", "/nonexistent/out.safetensors"], ["--inspect", "/dev/zero"]):
        code, _, err = _cli(capsys, *args)
        line = _one_line(err)
        assert code == 2 and "/dev/zero" in line and "not a regular file" in line


@pytest.mark.slow
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pkl"
    os.mkfifo(fifo)
    out = tmp_path / "out.safetensors"
    for args in (["import", str(fifo), "-o", str(out)], ["import", "--inspect", str(fifo)]):
        try:
            run = run_studio(args, tmp_path, timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"studio {' '.join(args)} hung on a FIFO") from None
        assert_one_line_error(run, "pipe.pkl", "not a regular file")
    assert fifo.is_fifo() and not out.exists()


def test_a_symlink_to_a_checkpoint_still_imports(tmp_path: Path, capsys,
                                                 checkpoint: Path) -> None:
    link = tmp_path / "link.pkl"
    link.symlink_to(checkpoint)
    code, out, _ = _cli(capsys, str(link), "-o", str(tmp_path / "via-link.safetensors"))
    assert code == 0 and "imported" in out
    assert (tmp_path / "via-link.safetensors").exists()


HOLD = textwrap.dedent("""
    import sys
    from studio.core.locks import output_lock
    with output_lock(sys.argv[1], "face model"):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_a_second_import_to_the_same_output_gets_in_use(tmp_path: Path, capsys,
                                                        checkpoint: Path) -> None:
    """Two imports to one ``-o`` both said "imported" and one result was lost: now the
    output is locked while converting and writing."""
    out = tmp_path / "models" / "face.safetensors"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, stdout, err = _cli(capsys, str(checkpoint), "-o", str(out), "--force")
        line = _one_line(err)
        assert code == 2 and "imported" not in stdout
        assert "face.safetensors" in line and f"in use by process {holder.pid}" in line
        assert not out.exists()
    finally:
        holder.communicate("\n", timeout=30)
    code, stdout, _ = _cli(capsys, str(checkpoint), "-o", str(out))
    assert code == 0 and "imported" in stdout and out.exists()
    assert not any(p.name.endswith(".lock") for p in out.parent.iterdir())

"""One top-level handler for every command: one line on stderr, never a traceback; the
details of an unexpected error go to a log file in the studio's log folder."""

from __future__ import annotations

import errno
import re
import types
from pathlib import Path

import pytest

import studio.cli as cli
from studio.core.errors import FileFormatError, StudioError


def _deep(n: int) -> int:
    return _deep(n + 1)


def _raiser(exc_factory):
    def register(sub):
        p = sub.add_parser("boom")
        p.set_defaults(func=lambda args: (_ for _ in ()).throw(exc_factory()))
    return types.SimpleNamespace(register=register)


_MODULES = cli.COMMAND_MODULES


def _run_failing(monkeypatch, capsys, exc_factory) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "COMMAND_MODULES", (*_MODULES, _raiser(exc_factory)))
    code = cli.main(["boom"])
    out, err = capsys.readouterr()
    return code, out, err


def _log_path(err: str) -> Path:
    m = re.search(r"\(details in (.+\.log)\)$", err.strip())
    assert m, err
    return Path(m.group(1))


def _recursion():
    try:
        _deep(0)
    except RecursionError as exc:
        return exc
    raise AssertionError("no RecursionError")


@pytest.mark.parametrize("factory, type_name", [
    (lambda: MemoryError(), "MemoryError"),
    (_recursion, "RecursionError"),
    (lambda: OverflowError("int too large to convert to float"), "OverflowError"),
    (lambda: ValueError("could not convert\nsecond line"), "ValueError"),
    (lambda: KeyError("relu6"), "KeyError"),
    (lambda: ZeroDivisionError("division by zero"), "ZeroDivisionError"),
])
def test_unexpected_errors_are_one_line_with_a_log(monkeypatch, capsys, studio_home, factory,
                                                   type_name):
    code, out, err = _run_failing(monkeypatch, capsys, factory)
    assert code == 1
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {type_name}")
    log = _log_path(err)
    assert log.is_file() and log.parent == studio_home / "state" / "logs"
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and type_name in text
    assert "command: studio boom" in text


def test_long_messages_are_cut_to_one_short_line(monkeypatch, capsys):
    code, _, err = _run_failing(monkeypatch, capsys, lambda: RuntimeError("x" * 5000))
    assert code == 1 and len(err) < 400 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("err_no, words", [
    (errno.EROFS, "Read-only file system"),
    (errno.ENOSPC, "No space left on device"),
    (errno.EACCES, "Permission denied"),
])
def test_os_errors_name_the_file_and_the_reason(monkeypatch, capsys, tmp_path, err_no, words):
    target = tmp_path / "out" / "clip.png"
    code, out, err = _run_failing(
        monkeypatch, capsys, lambda: OSError(err_no, words, str(target)))
    assert code == 2
    assert err.strip() == f"error: {target}: {words}"
    assert "Traceback" not in err + out


def test_a_real_os_error_names_the_file(monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "renders"
    blocker.write_text("a file where a folder should be")

    def write():
        (blocker / "frame.png").write_bytes(b"x")  # NotADirectoryError, with the file name

    code, out, err = _run_failing(monkeypatch, capsys, lambda: write() or None)
    assert code == 2 and err.strip() == f"error: {blocker / 'frame.png'}: Not a directory"
    assert "Traceback" not in out + err


def test_studio_errors_keep_their_message_and_exit_2(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "m.safetensors"
    code, _, err = _run_failing(monkeypatch, capsys,
                                lambda: FileFormatError("header is not JSON", bad))
    assert code == 2 and err.strip() == f"error: {bad}: header is not JSON"
    code, _, err = _run_failing(monkeypatch, capsys, lambda: StudioError("no model"))
    assert code == 2 and err.strip() == "error: no model"


def test_interrupt_is_130(monkeypatch, capsys):
    code, _, err = _run_failing(monkeypatch, capsys, KeyboardInterrupt)
    assert code == 130 and err.strip() == "interrupted"


def test_a_crashed_job_logs_the_jobs_own_traceback(monkeypatch, capsys):
    from studio.cli.progress import run_job
    from studio.core.jobs import Job

    def broken_job(ctx):
        yield from ()
        return {"a": 1}["missing_key"]

    def register(sub):
        p = sub.add_parser("boom")
        p.set_defaults(func=lambda args: run_job(Job("broken", broken_job)))

    monkeypatch.setattr(cli, "COMMAND_MODULES",
                        (*_MODULES, types.SimpleNamespace(register=register)))
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert lines == [err.strip().splitlines()[-1]]
    assert lines[0].startswith("error: broken: KeyError: 'missing_key'")
    text = _log_path(lines[0]).read_text(encoding="utf-8")
    assert "broken_job" in text and "missing_key" in text


def test_no_log_folder_still_gives_one_line(monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("STUDIO_HOME", str(blocker))  # state/logs cannot be made under a file
    code, _, err = _run_failing(monkeypatch, capsys, lambda: ValueError("bad"))
    assert code == 1
    assert err.strip() == "error: ValueError: bad (no log file could be written)"


def test_command_modules_are_imported_explicitly():
    """Issue 10: no lookup by name, no 'skip if missing' (a misspelt module fails loudly)."""
    src = Path(cli.__file__).read_text(encoding="utf-8")
    assert "import_module" not in src and "ModuleNotFoundError" not in src
    assert all(isinstance(m, types.ModuleType) for m in cli.COMMAND_MODULES)
    names = {m.__name__ for m in cli.COMMAND_MODULES}
    folder = Path(cli.__file__).parent
    on_disk = {f"studio.cli.{p.stem}" for p in folder.glob("*_cmds.py")}
    # a module of subcommands (e.g. `controls discover`, `train voice`) is registered by its
    # parent command's module, which imports it explicitly by name
    parents = "\n".join((folder / f"{n.rsplit('.', 1)[1]}.py").read_text(encoding="utf-8")
                         for n in names)
    nested = {n for n in on_disk - names if f"import {n.rsplit('.', 1)[1]}" in parents
              or f"from {n} import" in parents}
    assert names | nested == on_disk, "every *_cmds module is registered, and only those"


def test_log_dir_honours_studio_home(studio_home):
    from studio.core.paths import log_dir

    assert log_dir() == studio_home / "state" / "logs"

"""Issue 9, "never abort, never corrupt": what the schema accepts must save within what the
loader accepts; a killed save leaves no temp files behind for good; two writers of one
project never overwrite each other silently; asset symlinks cannot leave the project
folder; a device, a pipe or a symlink loop given as a project is a clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio.core import project as proj
from studio.core.document import Document
from studio.core.errors import FileFormatError, StudioError
from studio.core.project import CurveTrack, Key, Project, load_project, resolve_asset

# The old code had no total limit; the schema allowed a million keys per track.
LIMIT = getattr(proj, "MAX_TOTAL_KEYS", 500_000)


def _worst_keys(n: int, start_id: int = 2**53 - 10_000_000) -> tuple[Key, ...]:
    """Keys whose JSON is as long as a key's can be: huge ids, 17-digit floats."""
    return tuple(Key(id=start_id + i, t=1.2345678901234567e-05 * (1 + i / n),
                     v=-1.2345678901234567e-05 * (1 + i / n), interp="smooth")
                 for i in range(n))


@pytest.mark.slow
def test_project_at_the_key_limit_saves_and_reopens(tmp_path):
    tracks = 8
    per = LIMIT // tracks
    p = Project(name="x" * 256)
    p.timeline.tracks = [CurveTrack(id=f"t{'9' * 60}{i}", channel=f"channel_{i:03d}" + "x" * 100,
                                    keys=_worst_keys(per)) for i in range(tracks)]
    assert sum(len(t.keys) for t in p.timeline.tracks) == LIMIT
    f = tmp_path / "big.dhproj"
    Document(p).save(f)
    assert f.stat().st_size <= proj.MAX_FILE_BYTES
    again = load_project(f)  # the old code wrote ~75 MB indented: "too large to be a project"
    assert sum(len(t.keys) for t in again.timeline.tracks) == LIMIT
    assert again.timeline.tracks[-1].keys[-1] == p.timeline.tracks[-1].keys[-1]


def test_issue_file_with_a_million_keys_is_refused_clearly_and_fast(tmp_path):
    # The issue's file: one track of a million keys, 27 MB compact, which the old loader
    # accepted and the old save wrote at 77 MB. Refused at load (before building a million
    # objects), naming the file and the limit.
    keys = ",".join(f'{{"t":{i % 1000},"v":1}}' for i in range(1_000_000))
    text = ('{"schema_version":2,"timeline":{"tracks":[{"id":"t1","channel":"jaw",'
            '"keys":[' + keys + "]}]}}")
    f = tmp_path / "huge.dhproj"
    f.write_text(text)
    t0 = time.monotonic()
    with pytest.raises(FileFormatError) as err:
        load_project(f)
    assert "1,000,000 animation keys" in str(err.value) and str(f) in str(err.value)
    assert f"{LIMIT:,}" in str(err.value)
    assert time.monotonic() - t0 < 20


def test_a_loadable_project_always_saves_within_the_loader_limit(tmp_path, monkeypatch):
    # Written small (defaults left out), a file grows when saved (defaults written out).
    # The loader refuses a file whose saved form would not fit, instead of opening it and
    # then writing something it cannot read back.
    clips = [{"id": f"c{i}", "kind": "audio"} for i in range(300)]
    text = json.dumps({"schema_version": 2, "timeline": {"clips": clips}},
                      separators=(",", ":"))
    monkeypatch.setattr(proj, "MAX_FILE_BYTES", len(text) + 100)
    f = tmp_path / "grows.dhproj"
    f.write_text(text)
    with pytest.raises(FileFormatError, match="when saved"):
        load_project(f)


def test_save_refuses_before_writing_when_too_large(tmp_path, monkeypatch):
    f = tmp_path / "p.dhproj"
    doc = Document(Project(name="small"))
    doc.save(f)
    before = f.read_bytes()
    monkeypatch.setattr(proj, "MAX_FILE_BYTES", 50_000)
    doc.set(("name",), "big")
    doc.project.timeline.clips = [proj.Clip(kind="speech", text="y" * 30_000) for _ in range(3)]
    with pytest.raises(StudioError, match="too large|more than"):
        doc.save()
    assert f.read_bytes() == before  # untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert doc.modified  # the work is still there, unsaved


def test_small_projects_saved_indented_large_ones_compact(tmp_path, monkeypatch):
    small = proj.project_to_text(Project())
    assert "\n " in small  # readable diffs
    p = Project()
    p.timeline.tracks = [CurveTrack(channel="jaw", keys=_worst_keys(2000, 1))]
    monkeypatch.setattr(proj, "INDENT_BELOW", 10_000, raising=False)
    big = proj.project_to_text(p)
    assert big.count("\n") == 1 and '"keys":[{' in big
    assert proj.project_from_text(big) == p


def test_edit_past_the_key_limit_is_refused_and_leaves_the_document(monkeypatch):
    monkeypatch.setattr(proj, "MAX_TOTAL_KEYS", 10)
    doc = Document(Project())
    doc.set(("timeline", "tracks"), [CurveTrack(id="t1", channel="jaw", keys=_worst_keys(6, 1))])
    before = doc.project.model_copy(deep=True)
    undo_label = doc.history.undo_label
    with pytest.raises(StudioError, match="animation keys"):
        doc.set(("timeline", "tracks"),
                [CurveTrack(id="t1", channel="jaw", keys=_worst_keys(6, 1)),
                 CurveTrack(id="t2", channel="blink", keys=_worst_keys(6, 1))])
    assert doc.project == before
    assert doc.history.undo_label == undo_label and not doc.history.can_redo


# -- stale temp files ----------------------------------------------------------------------

def _age(path: Path, seconds: float = 3600) -> Path:
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def test_next_save_removes_stale_temp_files_of_that_project_only(tmp_path):
    f = tmp_path / "p.dhproj"
    doc = Document(Project())
    doc.save(f)
    stale = [tmp_path / ".p.dhproj.k3j_x9a2.tmp", tmp_path / ".p.dhproj.bak.abcd1234.tmp"]
    for s in stale:
        s.write_bytes(b"x" * 1000)
        _age(s)
    fresh = tmp_path / ".p.dhproj.zzzz0000.tmp"  # maybe being written right now
    fresh.write_bytes(b"x")
    others = [tmp_path / ".q.dhproj.k3j_x9a2.tmp", tmp_path / ".p.dhproj.notes.tmp",
              tmp_path / "p.dhproj.k3j_x9a2.tmp", tmp_path / ".p.dhproj.k3j_x9a2.tmp.keep"]
    for o in others:
        o.write_bytes(b"y")
        _age(o)
    doc.set(("name",), "again")
    doc.save()
    assert not any(s.exists() for s in stale)
    assert fresh.exists() and all(o.exists() for o in others)


KILLED_SAVE = textwrap.dedent("""
    import os, sys, time
    from studio.core.atomic import atomic_write
    def write(f):
        f.write(b"x" * 100000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
    atomic_write(sys.argv[1], write)
""")


def test_a_killed_save_leaves_a_temp_file_the_next_open_removes(tmp_path):
    f = tmp_path / "p.dhproj"
    Document(Project(name="kept")).save(f)
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(f)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1 and temps[0].stat().st_size == 100000
    Document.open(f)  # too fresh: it might still be being written
    assert temps[0].exists()
    _age(temps[0])
    doc = Document.open(f)
    assert doc.project.name == "kept"
    assert not temps[0].exists()


# -- two writers ---------------------------------------------------------------------------

def test_second_window_saving_a_changed_file_is_refused(tmp_path):
    f = tmp_path / "p.dhproj"
    Document(Project(name="v1")).save(f)
    a, b = Document.open(f), Document.open(f)
    a.set(("name",), "from A")
    a.save()
    b.set(("name",), "from B")
    with pytest.raises(StudioError, match="changed on disk") as err:
        b.save()
    assert "Save As" in str(err.value) and str(f) in str(err.value)
    assert load_project(f).name == "from A"  # A's work is not lost
    assert b.modified
    b.save(tmp_path / "b.dhproj")  # Save As keeps both
    assert load_project(tmp_path / "b.dhproj").name == "from B"
    assert load_project(f).name == "from A"
    # A keeps saving its own file without complaint
    a.set(("name",), "A again")
    a.save()
    a.save()
    assert load_project(f).name == "A again"


def test_changed_on_disk_can_be_overwritten_on_request(tmp_path):
    f = tmp_path / "p.dhproj"
    Document(Project(name="v1")).save(f)
    doc = Document.open(f)
    time.sleep(0.01)
    f.write_text(f.read_text().replace('"v1"', '"edited by hand"'))  # another program
    doc.set(("name",), "mine")
    with pytest.raises(StudioError, match="changed on disk"):
        doc.save()
    doc.save(overwrite=True)
    assert load_project(f).name == "mine"
    doc.set(("name",), "mine 2")
    doc.save()  # in sync again


def test_deleted_file_is_saved_again(tmp_path):
    f = tmp_path / "p.dhproj"
    Document(Project(name="v1")).save(f)
    doc = Document.open(f)
    f.unlink()
    doc.save()
    assert load_project(f).name == "v1"


HOLD_LOCK = textwrap.dedent("""
    import sys
    from studio.core.locks import output_lock
    with output_lock(sys.argv[1], "project"):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_save_while_another_process_writes_the_project(tmp_path):
    f = tmp_path / "p.dhproj"
    Document(Project(name="v1")).save(f)
    doc = Document.open(f)
    doc.set(("name",), "mine")
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(f)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(StudioError, match=f"in use by process {child.pid}"):
            doc.save()
        assert load_project(f).name == "v1"
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    doc.save()
    assert load_project(f).name == "mine"


# -- asset paths and symlinks --------------------------------------------------------------

def test_symlink_inside_the_project_folder_cannot_lead_outside(tmp_path):
    folder, outside = tmp_path / "proj", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "secret.npy").write_bytes(b"x")
    (folder / "assets").mkdir()
    (folder / "assets" / "a.npy").write_bytes(b"x")
    (folder / "escape").symlink_to(outside, target_is_directory=True)
    (folder / "inner").symlink_to(folder / "assets", target_is_directory=True)
    (folder / "file_link.npy").symlink_to(outside / "secret.npy")
    p = folder / "p.dhproj"
    assert resolve_asset(p, "assets/a.npy") == (folder / "assets" / "a.npy").resolve()
    assert resolve_asset(p, "inner/a.npy") == (folder / "assets" / "a.npy").resolve()
    for rel in ("escape/secret.npy", "file_link.npy"):
        with pytest.raises(StudioError) as err:
            resolve_asset(p, rel)
        assert "outside the project folder" in str(err.value) and rel in str(err.value)
        assert isinstance(err.value, ValueError)  # callers that caught ValueError still do
    # the project folder itself reached through a symlink is fine
    alias = tmp_path / "alias"
    alias.symlink_to(folder, target_is_directory=True)
    assert resolve_asset(alias / "p.dhproj", "assets/a.npy") == (folder / "assets" / "a.npy").resolve()


def test_symlink_loop_as_asset_is_a_clear_error(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(StudioError):
        resolve_asset(tmp_path / "p.dhproj", "loop/x.npy")


# -- files that are not project files ------------------------------------------------------

@pytest.mark.timeout(30)
def test_device_fifo_and_symlink_loop_as_project(tmp_path):
    fifo = tmp_path / "pipe.dhproj"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.dhproj"
    loop.symlink_to(loop)
    for path, fragment in ((Path("/dev/zero"), "not a regular file"),
                           (fifo, "not a regular file"),
                           (loop, "symbolic links")):
        with pytest.raises(FileFormatError) as err:
            load_project(path)
        assert fragment in str(err.value) and str(path) in str(err.value)
        with pytest.raises(StudioError):
            Document.open(path)

"""An open project: the data, its file, its undo history, and change signals.

The UI edits only through :meth:`Document.set` / :meth:`Document.push` (rule 2).

Saving never loses work: the project is checked against the file format's limits before
anything is written (an edit past the key limit is refused when it is made), the file is
locked while it is written (a second writer gets "in use by process N"), and a file changed
on disk since it was opened or last saved (another window, another program) is not
overwritten silently: :class:`ProjectChangedOnDisk` asks the caller to Save As or overwrite.
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Any, NamedTuple

from psygnal import Signal
from pydantic import BaseModel, ValidationError

from studio.core import project as _project
from studio.core.atomic import atomic_write_bytes, remove_stale_temps
from studio.core.errors import StudioError
from studio.core.files import resolve_path
from studio.core.history import Batch, Command, History, SetValue
from studio.core.locks import output_lock
from studio.core.project import (
    DEFAULT_NAME,
    Project,
    load_project,
    project_to_bytes,
    project_to_text,
)


class ProjectChangedOnDisk(StudioError):
    """The project file was changed by someone else since this document read or wrote it."""


class DiskStamp(NamedTuple):
    """What identifies one version of a file on disk (an atomic save makes a new inode)."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> DiskStamp:
        st = os.stat(path)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _tidy_temps(path: Path) -> None:
    """Remove temp files left by killed saves of ``path``, unless a save is running now."""
    with contextlib.suppress(StudioError, OSError), output_lock(path, "project"):
        remove_stale_temps(path)


class Document:
    changed = Signal(object)  # list of paths (tuples) that changed
    path_changed = Signal(object)  # Path | None
    replaced = Signal()  # the whole project was replaced (open, new, recover)

    def __init__(self, project: Project | None = None, path: Path | None = None) -> None:
        self.project = project or Project()
        self.path = Path(path) if path else None
        self.history = History(self)
        self.history.changed.connect(self.changed.emit)
        self.recovered_from: Path | None = None
        self.disk_stamp: DiskStamp | None = None  # the file as last read or written

    # -- target protocol for commands -------------------------------------------------
    def get(self, path: tuple) -> Any:
        node: Any = self.project
        for part in path:
            if isinstance(node, dict):
                node = node.get(part)  # a missing entry reads as None (absent)
            elif isinstance(node, list):
                node = node[part]
            else:
                node = getattr(node, part)
        return copy.deepcopy(node)

    def put(self, path: tuple, value: Any) -> None:
        if not path:
            raise ValueError("empty path")
        parent: Any = self.project
        for part in path[:-1]:
            parent = parent[part] if isinstance(parent, dict | list) else getattr(parent, part)
        last = path[-1]
        value = copy.deepcopy(value)
        if isinstance(parent, BaseModel):
            setattr(parent, last, value)  # validate_assignment checks it
        elif isinstance(parent, dict):
            if value is None:
                parent.pop(last, None)
            else:
                parent[last] = value
            # revalidate the owning model so a bad control value cannot slip in
            owner = self.project
            for part in path[:-2]:
                owner = owner[part] if isinstance(owner, dict | list) else getattr(owner, part)
            setattr(owner, path[-2], parent)
        else:
            parent[last] = value

    # -- editing ---------------------------------------------------------------------
    def set(self, path: tuple, value: Any, label: str | None = None,
            merge_key: Any = None) -> None:
        """Set a value as an undoable edit. Invalid values raise StudioError."""
        try:
            if self.get(path) == value:
                return
            cmd = SetValue(path, value, label, merge_key)
            self.history.push(cmd, check=lambda: self._check_limits(cmd))
        except ValidationError as exc:
            raise StudioError(f"invalid value for {'.'.join(map(str, path))}: "
                              f"{exc.errors()[0]['msg']}") from None

    def set_many(self, values: dict[tuple, Any], label: str, merge_key: Any = None) -> None:
        cmds = [SetValue(p, v) for p, v in values.items() if self.get(p) != v]
        if cmds:
            self.push(Batch(cmds, label, merge_key))

    def push(self, cmd: Command) -> None:
        try:
            self.history.push(cmd, check=lambda: self._check_limits(cmd))
        except ValidationError as exc:
            raise StudioError(f"invalid edit: {exc.errors()[0]['msg']}") from None

    def _check_limits(self, cmd: Command) -> None:
        """Refuse an edit that puts the project over the file format's limits, so that what
        can be made can always be saved and reopened (the history takes the edit back).
        Counting is cheap (one length per track), so every edit is checked."""
        n = _project.count_keys(self.project)
        if n > _project.MAX_TOTAL_KEYS:
            raise StudioError(f"cannot {cmd.label[:1].lower() + cmd.label[1:]}: the project "
                              f"would hold {_project.keys_limit_message(n)}")

    # -- files -----------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.path.name if self.path else "Untitled"

    @property
    def modified(self) -> bool:
        return not self.history.is_clean

    def to_text(self) -> str:
        return project_to_text(self.project)

    def save(self, path: Path | None = None, *, overwrite: bool = False) -> Path:
        """Write the project to ``path`` (default: its file). Raises StudioError with what
        to do: over a limit (nothing written), :class:`~studio.core.locks.OutputInUse`
        (another process is writing it), :class:`ProjectChangedOnDisk` (the file changed
        since it was opened or saved here; ``overwrite=True`` replaces it anyway)."""
        target = Path(path) if path else self.path
        if target is None:
            raise StudioError("choose where to save the project first")
        self._name_follows_file(target)
        data = project_to_bytes(self.project, target)  # over a limit: refused, nothing written
        same_file = (self.path is not None and self.disk_stamp is not None
                     and resolve_path(target) == resolve_path(self.path))
        try:
            with output_lock(target, "project"):
                if same_file and not overwrite:
                    self._check_unchanged(target)
                atomic_write_bytes(target, data, backup=True)
                stamp = DiskStamp.of(target)
                remove_stale_temps(target)
        except OSError as exc:
            raise StudioError(f"could not save ({exc.strerror or exc})", target) from None
        self.disk_stamp = stamp
        if target != self.path:
            self.path = target
            self.path_changed.emit(target)
        self.history.mark_clean()
        return target

    def _name_follows_file(self, target: Path) -> None:
        """Save As names the project after its new file, unless the user named it: the
        name is still the default, or still its old file's name. An undoable edit."""
        name = self.project.name
        follows = name == DEFAULT_NAME or (self.path is not None and name == self.path.stem)
        new = target.stem[:256]
        if follows and new and new != name and target != self.path:
            self.set(("name",), new, "Name the project after its file")

    def _check_unchanged(self, target: Path) -> None:
        try:
            now = DiskStamp.of(target)
        except FileNotFoundError:
            return  # deleted since: nothing of someone else's to overwrite
        if now != self.disk_stamp:
            raise ProjectChangedOnDisk(
                "the file was changed on disk by another program (or another studio window) "
                "since you opened or last saved it; use Save As to keep both versions, or "
                "overwrite it to replace those changes with yours", target)

    @classmethod
    def open(cls, path: str | Path) -> Document:
        try:
            stamp: DiskStamp | None = DiskStamp.of(Path(path))  # before reading: conservative
        except OSError:
            stamp = None
        project = load_project(path)
        real = resolve_path(path)
        doc = cls(project, real)
        doc.disk_stamp = stamp
        _tidy_temps(real)
        return doc

    def replace(self, project: Project, path: Path | None, modified: bool = False,
                disk_stamp: DiskStamp | None = None) -> None:
        self.project = project
        self.disk_stamp = disk_stamp
        self.history.clear()
        if not modified:
            self.history.mark_clean()
        else:
            self.history._clean_index = None  # recovered work is unsaved
            self.history.state_changed.emit()
        if path != self.path:
            self.path = path
            self.path_changed.emit(path)
        self.replaced.emit()
        self.changed.emit([()])

"""An open project: the data, its file, its undo history, and change signals.

The UI edits only through :meth:`Document.set` / :meth:`Document.push` (rule 2).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from psygnal import Signal
from pydantic import BaseModel, ValidationError

from studio.core.atomic import atomic_write_text
from studio.core.errors import StudioError
from studio.core.history import Batch, Command, History, SetValue
from studio.core.project import Project, load_project, project_to_text


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
            self.history.push(SetValue(path, value, label, merge_key))
        except ValidationError as exc:
            raise StudioError(f"invalid value for {'.'.join(map(str, path))}: "
                              f"{exc.errors()[0]['msg']}") from None

    def set_many(self, values: dict[tuple, Any], label: str, merge_key: Any = None) -> None:
        cmds = [SetValue(p, v) for p, v in values.items() if self.get(p) != v]
        if cmds:
            self.push(Batch(cmds, label, merge_key))

    def push(self, cmd: Command) -> None:
        try:
            self.history.push(cmd)
        except ValidationError as exc:
            raise StudioError(f"invalid edit: {exc.errors()[0]['msg']}") from None

    # -- files -----------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.path.name if self.path else "Untitled"

    @property
    def modified(self) -> bool:
        return not self.history.is_clean

    def to_text(self) -> str:
        return project_to_text(self.project)

    def save(self, path: Path | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise StudioError("choose where to save the project first")
        try:
            atomic_write_text(target, self.to_text(), backup=True)
        except OSError as exc:
            raise StudioError(f"could not save ({exc.strerror})", target) from None
        if target != self.path:
            self.path = target
            self.path_changed.emit(target)
        self.history.mark_clean()
        return target

    @classmethod
    def open(cls, path: str | Path) -> Document:
        path = Path(path).resolve()
        return cls(load_project(path), path)

    def replace(self, project: Project, path: Path | None, modified: bool = False) -> None:
        self.project = project
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

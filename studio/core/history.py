"""Undo history: every edit is a command with do/undo; consecutive edits may merge.

A slider drag sends many edits with the same ``merge_key``; they merge into one undo step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from psygnal import Signal


class Target(Protocol):
    def get(self, path: tuple) -> Any: ...
    def put(self, path: tuple, value: Any) -> None: ...


class Command:
    label = "Edit"

    def do(self, target: Target) -> None:
        raise NotImplementedError

    def undo(self, target: Target) -> None:
        raise NotImplementedError

    def merge(self, newer: Command) -> bool:
        """Absorb ``newer`` (already done) into this command; True if merged."""
        return False

    @property
    def paths(self) -> list[tuple]:
        return []


class SetValue(Command):
    """Set one value in the document, addressed by a path such as ("avatar", "truncation")."""

    def __init__(self, path: tuple, new: Any, label: str | None = None,
                 merge_key: Any = None) -> None:
        self.path = tuple(path)
        self.new = new
        self.old: Any = None
        self.label = label or "Set " + ".".join(str(p) for p in self.path)
        self.merge_key = merge_key

    def do(self, target: Target) -> None:
        self.old = target.get(self.path)
        target.put(self.path, self.new)

    def undo(self, target: Target) -> None:
        target.put(self.path, self.old)

    def merge(self, newer: Command) -> bool:
        if (
            isinstance(newer, SetValue)
            and self.merge_key is not None
            and newer.merge_key == self.merge_key
            and newer.path == self.path
        ):
            self.new = newer.new
            return True
        return False

    @property
    def paths(self) -> list[tuple]:
        return [self.path]


class Batch(Command):
    """Several commands as one undo step (e.g. 'Add speech to timeline')."""

    def __init__(self, commands: list[Command], label: str, merge_key: Any = None) -> None:
        self.commands = list(commands)
        self.label = label
        self.merge_key = merge_key

    def do(self, target: Target) -> None:
        for c in self.commands:
            c.do(target)

    def undo(self, target: Target) -> None:
        for c in reversed(self.commands):
            c.undo(target)

    def merge(self, newer: Command) -> bool:
        if (
            isinstance(newer, Batch)
            and self.merge_key is not None
            and newer.merge_key == self.merge_key
            and [getattr(c, "path", None) for c in self.commands]
            == [getattr(c, "path", None) for c in newer.commands]
        ):
            for mine, theirs in zip(self.commands, newer.commands, strict=True):
                if not mine.merge(theirs):
                    return False
            return True
        return False

    @property
    def paths(self) -> list[tuple]:
        return [p for c in self.commands for p in c.paths]


class History:
    """Undo/redo stacks over a target. ``changed`` fires with the paths touched."""

    changed = Signal(object)  # list[tuple] of paths
    state_changed = Signal()  # undo/redo availability or clean state changed

    def __init__(self, target: Target, limit: int = 1000) -> None:
        self._target = target
        self._undo: list[Command] = []
        self._redo: list[Command] = []
        self._limit = limit
        self._clean_index: int | None = 0
        self.revision = 0  # bumps on every change; autosave compares it
        self._open_merge = True

    def push(self, cmd: Command, check: Callable[[], None] | None = None) -> None:
        """Do ``cmd`` and record it. ``check`` runs right after the command is done; if it
        raises, the command is undone again and nothing is recorded (a refused edit)."""
        cmd.do(self._target)
        if check is not None:
            try:
                check()
            except BaseException:
                cmd.undo(self._target)
                raise
        self.revision += 1
        last = self._undo[-1] if self._undo else None
        merged = (
            self._open_merge
            and last is not None
            and not self._redo
            and len(self._undo) != self._clean_index
            and last.merge(cmd)
        )
        if not merged:
            self._undo.append(cmd)
            if len(self._undo) > self._limit:
                self._undo.pop(0)
                if self._clean_index is not None:
                    self._clean_index -= 1
        if self._redo:
            self._redo.clear()
            if self._clean_index is not None and self._clean_index > len(self._undo):
                self._clean_index = None
        self._open_merge = True
        self.changed.emit(cmd.paths)
        self.state_changed.emit()

    def close_merge(self) -> None:
        """End the current gesture: the next edit starts a new undo step."""
        self._open_merge = False

    def undo(self) -> bool:
        if not self._undo:
            return False
        cmd = self._undo.pop()
        cmd.undo(self._target)
        self._redo.append(cmd)
        self.revision += 1
        self._open_merge = False
        self.changed.emit(cmd.paths)
        self.state_changed.emit()
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        cmd = self._redo.pop()
        cmd.do(self._target)
        self._undo.append(cmd)
        self.revision += 1
        self._open_merge = False
        self.changed.emit(cmd.paths)
        self.state_changed.emit()
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    @property
    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def mark_clean(self) -> None:
        self._clean_index = len(self._undo)
        self._open_merge = False
        self.state_changed.emit()

    @property
    def is_clean(self) -> bool:
        return self._clean_index == len(self._undo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._clean_index = 0
        self.state_changed.emit()

"""Edits of many keys at once, as single undo steps (the timeline editor's selection).

- :class:`PutKeys`: keys by channel (tracks made for channels the timeline lacks); a key
  at the time of an existing key replaces it (keeping its id). Pasting and "key the
  current sliders" (:func:`key_channels`) are this edit.
- :class:`MoveKeys`: selected keys to new times (and values); a drag's edits merge.
- :class:`SetKeyShape`: interpolation and tangents of selected keys; a tangent drag merges.

Keys are named by ``(track id, key id)``. Locked tracks refuse the edit (StudioError,
nothing changed), except :class:`PutKeys`, which leaves them alone and names them in
``skipped``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.errors import StudioError
from studio.core.history import Command
from studio.core.project import CurveTrack, Key, Timeline
from studio.timeline.commands import HasProject, TimelineCommand, _editable, _key_pos
from studio.timeline.curves import find_track, next_key_id, next_track_id

KeyRef = tuple[str, int]  # (track id, key id)
SAME_TIME = 1e-6  # seconds: a key this close to another is at the same time
KEEP: Any = object()  # SetKeyShape: leave this field as it is


@dataclass(frozen=True)
class KeySpec:
    """A key to put on a channel (no id yet): what the clipboard holds."""

    t: float
    v: float
    interp: str = "smooth"
    tan_in: float | None = None
    tan_out: float | None = None

    @classmethod
    def of(cls, key: Key, shift: float = 0.0) -> KeySpec:
        return cls(key.t + shift, key.v, key.interp, key.tan_in, key.tan_out)


def _sorted(keys: Iterable[Key]) -> tuple[Key, ...]:
    return tuple(sorted(keys, key=lambda k: k.t))


class _TracksEdit(TimelineCommand):
    """Replaces the keys of several tracks (and adds tracks); undo puts them back."""

    _before: dict[str, tuple[Key, ...]]
    _added: list[CurveTrack]

    def _plan(self, tl: Timeline) -> tuple[dict[str, tuple[Key, ...]], list[CurveTrack]]:
        raise NotImplementedError

    def do(self, target: HasProject) -> None:
        tl = target.project.timeline
        new_keys, added = self._plan(tl)
        self._before = {tid: tl.track(tid).keys for tid in new_keys}
        self._added = added
        if added:
            tl.tracks = [*tl.tracks, *added]
        for tid, keys in new_keys.items():
            tl.track(tid).keys = keys

    def undo(self, target: HasProject) -> None:
        tl = target.project.timeline
        if self._added:
            gone = {t.id for t in self._added}
            tl.tracks = [t for t in tl.tracks if t.id not in gone]
        for tid, keys in self._before.items():
            tl.track(tid).keys = keys


class PutKeys(_TracksEdit):
    """Put keys on channels: ``{channel: [KeySpec, ...]}``. ``added_refs`` names the keys
    put (for selecting them) after ``do``."""

    def __init__(self, keys: Mapping[str, Sequence[KeySpec]], label: str = "Paste keys") -> None:
        self.keys = {ch: list(specs) for ch, specs in keys.items() if specs}
        self.label = label
        self.skipped: list[str] = []
        self.added_refs: list[KeyRef] = []
        self._track_ids: dict[str, str] = {}  # channel -> id of a track this edit made

    def _plan(self, tl: Timeline) -> tuple[dict[str, tuple[Key, ...]], list[CurveTrack]]:
        self.skipped, self.added_refs = [], []
        new_keys: dict[str, tuple[Key, ...]] = {}
        added: list[CurveTrack] = []
        for channel, specs in self.keys.items():
            track = find_track(tl, channel)
            if track is not None and track.locked:
                self.skipped.append(channel)
                continue
            old = track.keys if track is not None else ()
            keys, refs = _merge(old, specs)
            if track is None:
                tid = self._track_ids.get(channel) or next_track_id(
                    tl, [t.id for t in added])
                self._track_ids[channel] = tid
                added.append(CurveTrack(id=tid, channel=channel, keys=keys))
            else:
                tid = track.id
                new_keys[tid] = keys
            self.added_refs += [(tid, k) for k in refs]
        if not new_keys and not added:
            what = ", ".join(self.skipped)
            raise StudioError(f"nothing to key: the tracks {what} are locked" if what
                              else "nothing to key")
        return new_keys, added


def _merge(old: tuple[Key, ...], specs: Sequence[KeySpec]) -> tuple[tuple[Key, ...], list[int]]:
    keys = list(old)
    free = next_key_id(old)
    refs = []
    for spec in specs:
        t = round(max(0.0, float(spec.t)), 6)
        fields = {"t": t, "v": float(spec.v), "interp": spec.interp,
                  "tan_in": spec.tan_in, "tan_out": spec.tan_out}
        same = next((i for i, k in enumerate(keys) if abs(k.t - t) < SAME_TIME), None)
        if same is not None:
            keys[same] = Key(id=keys[same].id, **fields)
            refs.append(keys[same].id)
        else:
            keys.append(Key(id=free, **fields))
            refs.append(free)
            free += 1
    return _sorted(keys), refs


def key_channels(values: Mapping[str, float], t: float, interp: str = "smooth") -> PutKeys:
    """'Key the current sliders': a key at ``t`` for each channel's value (the pinned
    controls, or whichever channels the caller passes), one undo step."""
    n = len(values)
    return PutKeys({ch: [KeySpec(t, v, interp)] for ch, v in values.items()},
                   label=f"Key {n} control{'s' if n != 1 else ''}")


def _by_track(refs: Iterable[KeyRef]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for tid, kid in refs:
        out.setdefault(tid, set()).add(int(kid))
    return out


class MoveKeys(_TracksEdit):
    """Move keys to ``{(track id, key id): (t, v)}`` (``v`` None keeps the value). A drag
    sends absolute targets with one ``merge_key``; the edits merge into one step."""

    def __init__(self, targets: Mapping[KeyRef, tuple[float, float | None]],
                 merge_key: Any = None, label: str | None = None) -> None:
        self.targets = dict(targets)
        self.merge_key = merge_key
        self.label = label or ("Move key" if len(self.targets) == 1 else "Move keys")

    def _plan(self, tl: Timeline) -> tuple[dict[str, tuple[Key, ...]], list[CurveTrack]]:
        new_keys = {}
        for tid, kids in _by_track(self.targets).items():
            track = _editable(tl, tid)
            keys = list(track.keys)
            for kid in kids:
                i = _key_pos(track, kid)
                t, v = self.targets[(tid, kid)]
                update: dict[str, float] = {"t": round(max(0.0, float(t)), 6)}
                if v is not None:
                    update["v"] = float(v)
                keys[i] = Key.model_validate({**keys[i].model_dump(), **update})
            new_keys[tid] = _sorted(keys)
        return new_keys, []

    def do(self, target: HasProject) -> None:
        before = getattr(self, "_before", None)
        super().do(target)
        if before is not None:  # re-done after undo: the first state is still the base
            self._before = before

    def merge(self, newer: Command) -> bool:
        if (isinstance(newer, MoveKeys) and self.merge_key is not None
                and newer.merge_key == self.merge_key
                and set(newer.targets) == set(self.targets)):
            self.targets = newer.targets
            return True  # self._before stays the keys before the drag
        return False


class SetKeyShape(_TracksEdit):
    """Set the interpolation (``interp``) and/or tangents (slopes per second; None is
    automatic) of keys; ``KEEP`` leaves a field. Tangent drags merge by ``merge_key``."""

    def __init__(self, refs: Iterable[KeyRef], *, interp: Any = KEEP, tan_in: Any = KEEP,
                 tan_out: Any = KEEP, merge_key: Any = None, label: str | None = None) -> None:
        self.refs = sorted(set(refs))
        self.fields = {k: v for k, v in (("interp", interp), ("tan_in", tan_in),
                                         ("tan_out", tan_out)) if v is not KEEP}
        self.merge_key = merge_key
        self.label = label or (f"Interpolation {interp}" if "interp" in self.fields
                               else "Edit tangents")

    def _plan(self, tl: Timeline) -> tuple[dict[str, tuple[Key, ...]], list[CurveTrack]]:
        new_keys = {}
        for tid, kids in _by_track(self.refs).items():
            track = _editable(tl, tid)
            keys = list(track.keys)
            for kid in kids:
                i = _key_pos(track, kid)
                keys[i] = Key.model_validate({**keys[i].model_dump(), **self.fields})
            new_keys[tid] = tuple(keys)
        return new_keys, []

    def do(self, target: HasProject) -> None:
        before = getattr(self, "_before", None)
        super().do(target)
        if before is not None:
            self._before = before

    def merge(self, newer: Command) -> bool:
        if (isinstance(newer, SetKeyShape) and self.merge_key is not None
                and newer.merge_key == self.merge_key and newer.refs == self.refs):
            self.fields.update(newer.fields)
            return True
        return False


__all__ = ["KEEP", "KeyRef", "KeySpec", "MoveKeys", "PutKeys", "SetKeyShape", "key_channels"]

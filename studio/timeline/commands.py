"""Timeline edits as undo commands, addressed by stable ids (never by list position).

Each command changes only what it names: one key, one track's flags, one clip. Keys are
immutable and a track's keys a tuple, so a key edit swaps that track's tuple (the
track's cached curve follows); track and clip edits swap the timeline's list or set a
field, always through pydantic's validation. A drag sends many edits with one
``merge_key``; they merge into one undo step (as :class:`~studio.core.history.SetValue`
does for sliders).

The commands work on any history target with a ``project`` (the
:class:`~studio.core.document.Document`). A command that cannot apply (a locked track, an
id that is gone, a split outside the clip) raises :class:`StudioError` before it changes
anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from studio.core.errors import StudioError
from studio.core.history import Command
from studio.core.project import Clip, CurveTrack, Key, Project, Timeline
from studio.timeline.curves import next_clip_id, next_key_id, next_track_id

TRACKS = ("timeline", "tracks")
CLIPS = ("timeline", "clips")
MIN_CLIP = 0.001  # seconds: the shortest clip a trim or split leaves


class HasProject(Protocol):
    project: Project


def _timeline(target: HasProject) -> Timeline:
    return target.project.timeline


def _track(timeline: Timeline, track_id: str) -> CurveTrack:
    try:
        return timeline.track(track_id)
    except ValueError as exc:
        raise StudioError(str(exc)) from None


def _editable(timeline: Timeline, track_id: str) -> CurveTrack:
    track = _track(timeline, track_id)
    if track.locked:
        raise StudioError(f"the track {track.channel} is locked; unlock it to edit its keys")
    return track


def _clip(timeline: Timeline, clip_id: str) -> Clip:
    try:
        return timeline.clip(clip_id)
    except ValueError as exc:
        raise StudioError(str(exc)) from None


def _key_pos(track: CurveTrack, key_id: int) -> int:
    try:
        return track.key_index(key_id)
    except ValueError as exc:
        raise StudioError(str(exc)) from None


def _sorted_keys(keys: Iterable[Key]) -> tuple[Key, ...]:
    return tuple(sorted(keys, key=lambda k: k.t))


class TimelineCommand(Command):
    """A timeline edit. ``merge_key`` (optional) merges a drag's edits into one step."""

    merge_key: Any = None
    _paths: tuple[tuple, ...] = (TRACKS,)

    @property
    def paths(self) -> list[tuple]:
        return list(self._paths)


# ------------------------------------------------------------------------------ tracks


class AddTrack(TimelineCommand):
    """A new track for ``channel`` (a timeline has at most one track per channel)."""

    def __init__(self, channel: str, keys: Sequence[Key] = (), track_id: str | None = None,
                 label: str | None = None) -> None:
        self.channel = channel
        self.keys = tuple(keys)
        self.track_id = track_id
        self.track: CurveTrack | None = None
        self.label = label or f"Add track {channel}"

    def do(self, target: HasProject) -> None:
        tl = _timeline(target)
        if any(t.channel == self.channel for t in tl.tracks):
            raise StudioError(f"the timeline already has a track for {self.channel}")
        if self.track is None:
            self.track_id = self.track_id or next_track_id(tl)
            self.track = CurveTrack(id=self.track_id, channel=self.channel, keys=self.keys)
        tl.tracks = [*tl.tracks, self.track]

    def undo(self, target: HasProject) -> None:
        tl = _timeline(target)
        tl.tracks = [t for t in tl.tracks if t.id != self.track_id]


class DeleteTrack(TimelineCommand):
    def __init__(self, track_id: str, label: str | None = None) -> None:
        self.track_id = track_id
        self.label = label or "Delete track"
        self._removed: tuple[int, CurveTrack] | None = None

    def do(self, target: HasProject) -> None:
        tl = _timeline(target)
        track = _track(tl, self.track_id)
        if track.locked:
            raise StudioError(f"the track {track.channel} is locked; unlock it to delete it")
        self.label = f"Delete track {track.channel}"
        self._removed = (tl.tracks.index(track), track)
        tl.tracks = [t for t in tl.tracks if t.id != self.track_id]

    def undo(self, target: HasProject) -> None:
        assert self._removed is not None
        index, track = self._removed
        tl = _timeline(target)
        tracks = list(tl.tracks)
        tracks.insert(index, track)
        tl.tracks = tracks


class SetTrackFlags(TimelineCommand):
    """Mute, solo or lock a track (any of them; ``None`` leaves a flag as it is)."""

    FLAGS = ("muted", "solo", "locked")

    def __init__(self, track_id: str, *, muted: bool | None = None, solo: bool | None = None,
                 locked: bool | None = None, label: str | None = None) -> None:
        self.track_id = track_id
        self.new = {k: v for k, v in (("muted", muted), ("solo", solo), ("locked", locked))
                    if v is not None}
        self.old: dict[str, bool] = {}
        self._label = label

    @property
    def label(self) -> str:  # type: ignore[override]
        if self._label:
            return self._label
        words = {("muted", True): "Mute", ("muted", False): "Unmute", ("solo", True): "Solo",
                 ("solo", False): "Unsolo", ("locked", True): "Lock", ("locked", False): "Unlock"}
        return " + ".join(words[(k, v)] for k, v in self.new.items()) or "Track flags"

    def do(self, target: HasProject) -> None:
        track = _track(_timeline(target), self.track_id)
        self.old = {k: getattr(track, k) for k in self.new}
        for k, v in self.new.items():
            setattr(track, k, v)

    def undo(self, target: HasProject) -> None:
        track = _track(_timeline(target), self.track_id)
        for k, v in self.old.items():
            setattr(track, k, v)


def mute_track(track_id: str, muted: bool = True) -> SetTrackFlags:
    return SetTrackFlags(track_id, muted=muted)


def solo_track(track_id: str, solo: bool = True) -> SetTrackFlags:
    return SetTrackFlags(track_id, solo=solo)


def lock_track(track_id: str, locked: bool = True) -> SetTrackFlags:
    return SetTrackFlags(track_id, locked=locked)


# -------------------------------------------------------------------------------- keys


class _KeysEdit(TimelineCommand):
    """Replaces one track's keys: ``_apply(keys) -> new keys`` says how."""

    track_id: str

    def _apply(self, track: CurveTrack) -> tuple[Key, ...]:
        raise NotImplementedError

    def do(self, target: HasProject) -> None:
        track = _editable(_timeline(target), self.track_id)
        new = self._apply(track)
        self.before = track.keys
        track.keys = new

    def undo(self, target: HasProject) -> None:
        _track(_timeline(target), self.track_id).keys = self.before


class AddKey(_KeysEdit):
    """A key at ``t`` (its id, new unless given, is ``key_id`` after the first do)."""

    def __init__(self, track_id: str, t: float, v: float, interp: str = "smooth",
                 key_id: int | None = None, label: str = "Add key") -> None:
        self.track_id, self.t, self.v, self.interp = track_id, float(t), float(v), interp
        self.key_id = key_id
        self.label = label

    def _apply(self, track: CurveTrack) -> tuple[Key, ...]:
        if self.key_id is None:
            self.key_id = next_key_id(track.keys)
        elif any(k.id == self.key_id for k in track.keys):
            raise StudioError(f"the track {track.channel} already has a key {self.key_id}")
        key = Key(id=self.key_id, t=self.t, v=self.v, interp=self.interp)
        return _sorted_keys([*track.keys, key])


class MoveKey(_KeysEdit):
    """Move a key in time and/or value (and change its interpolation): ``None`` keeps."""

    def __init__(self, track_id: str, key_id: int, t: float | None = None,
                 v: float | None = None, interp: str | None = None, merge_key: Any = None,
                 label: str = "Move key") -> None:
        self.track_id, self.key_id = track_id, key_id
        self.t, self.v, self.interp = t, v, interp
        self.merge_key = merge_key
        self.label = label

    def _apply(self, track: CurveTrack) -> tuple[Key, ...]:
        i = _key_pos(track, self.key_id)
        old = track.keys[i]
        key = Key(id=old.id, t=old.t if self.t is None else float(self.t),
                  v=old.v if self.v is None else float(self.v),
                  interp=old.interp if self.interp is None else self.interp)
        keys = list(track.keys)
        keys[i] = key
        return _sorted_keys(keys)

    def merge(self, newer: Command) -> bool:
        if (isinstance(newer, MoveKey) and self.merge_key is not None
                and newer.merge_key == self.merge_key and newer.track_id == self.track_id
                and newer.key_id == self.key_id):
            for name in ("t", "v", "interp"):
                if getattr(newer, name) is not None:
                    setattr(self, name, getattr(newer, name))
            return True  # self.before stays the keys before the drag
        return False


class DeleteKeys(_KeysEdit):
    def __init__(self, track_id: str, key_ids: Iterable[int], label: str | None = None) -> None:
        self.track_id = track_id
        self.key_ids = frozenset(key_ids)
        self.label = label or ("Delete key" if len(self.key_ids) == 1 else "Delete keys")

    def _apply(self, track: CurveTrack) -> tuple[Key, ...]:
        missing = self.key_ids - {k.id for k in track.keys}
        if missing:
            raise StudioError(f"the track {track.channel} has no key {min(missing)}")
        return tuple(k for k in track.keys if k.id not in self.key_ids)


def delete_key(track_id: str, key_id: int) -> DeleteKeys:
    return DeleteKeys(track_id, [key_id])


# ------------------------------------------------------------------------------- clips


class _ClipCommand(TimelineCommand):
    _paths = (CLIPS,)


class AddClip(_ClipCommand):
    """Add ``clip`` (a fresh id when its id is taken)."""

    def __init__(self, clip: Clip, label: str | None = None) -> None:
        self.clip = clip
        self.label = label or f"Add {clip.kind} clip"
        self._placed = False

    def do(self, target: HasProject) -> None:
        tl = _timeline(target)
        if not self._placed:
            if any(c.id == self.clip.id for c in tl.clips):
                self.clip = self.clip.model_copy(update={"id": next_clip_id(tl)})
            self._placed = True
        tl.clips = [*tl.clips, self.clip]

    def undo(self, target: HasProject) -> None:
        tl = _timeline(target)
        tl.clips = [c for c in tl.clips if c.id != self.clip.id]


class DeleteClip(_ClipCommand):
    def __init__(self, clip_id: str, label: str = "Delete clip") -> None:
        self.clip_id = clip_id
        self.label = label
        self._removed: tuple[int, Clip] | None = None

    def do(self, target: HasProject) -> None:
        tl = _timeline(target)
        clip = _clip(tl, self.clip_id)
        self._removed = (tl.clips.index(clip), clip)
        tl.clips = [c for c in tl.clips if c.id != self.clip_id]

    def undo(self, target: HasProject) -> None:
        assert self._removed is not None
        index, clip = self._removed
        tl = _timeline(target)
        clips = list(tl.clips)
        clips.insert(index, clip)
        tl.clips = clips


class _ClipFields(_ClipCommand):
    """Sets fields of one clip; ``_fields(clip) -> {name: value}`` says which."""

    clip_id: str

    def _fields(self, clip: Clip) -> dict[str, float]:
        raise NotImplementedError

    def do(self, target: HasProject) -> None:
        clip = _clip(_timeline(target), self.clip_id)
        new = self._fields(clip)
        if any(v < 0 for v in new.values()):
            raise StudioError("a clip cannot start before 0 s or before its audio")
        if new.get("duration", clip.duration) < MIN_CLIP:
            raise StudioError("a clip cannot be shorter than 1 ms")
        self.before = {k: getattr(clip, k) for k in new}
        # one validated assignment: a rejected value leaves the clip as it was
        checked = Clip.model_validate({**clip.model_dump(), **new})
        for k in new:
            setattr(clip, k, getattr(checked, k))

    def undo(self, target: HasProject) -> None:
        clip = _clip(_timeline(target), self.clip_id)
        for k, v in self.before.items():
            setattr(clip, k, v)

    def merge(self, newer: Command) -> bool:
        if (type(newer) is type(self) and self.merge_key is not None
                and newer.merge_key == self.merge_key and newer.clip_id == self.clip_id):
            self._absorb(newer)
            return True
        return False

    def _absorb(self, newer: Any) -> None:
        raise NotImplementedError


class MoveClip(_ClipFields):
    """Move a clip so it starts at ``start`` (its audio and length go with it)."""

    def __init__(self, clip_id: str, start: float, merge_key: Any = None,
                 label: str = "Move clip") -> None:
        self.clip_id, self.start = clip_id, float(start)
        self.merge_key = merge_key
        self.label = label

    def _fields(self, clip: Clip) -> dict[str, float]:
        return {"start": round(self.start, 6)}

    def _absorb(self, newer: MoveClip) -> None:
        self.start = newer.start


class TrimClip(_ClipFields):
    """Move a clip's edges: ``start`` moves the head (the audio stays put in time, so the
    clip's offset into it changes), ``end`` moves the tail; ``None`` keeps an edge."""

    def __init__(self, clip_id: str, start: float | None = None, end: float | None = None,
                 merge_key: Any = None, label: str = "Trim clip") -> None:
        self.clip_id, self.start, self.end = clip_id, start, end
        self.merge_key = merge_key
        self.label = label

    def _fields(self, clip: Clip) -> dict[str, float]:
        start = clip.start if self.start is None else float(self.start)
        end = clip.start + clip.duration if self.end is None else float(self.end)
        return {"start": round(start, 6), "duration": round(end - start, 6),
                "offset": round(clip.offset + (start - clip.start), 6)}

    def _absorb(self, newer: TrimClip) -> None:
        if newer.start is not None:
            self.start = newer.start
        if newer.end is not None:
            self.end = newer.end


class SplitClip(_ClipCommand):
    """Split a clip at ``at`` seconds into two clips: the first keeps the id, the second
    (``new_id``) continues the same audio where the first stops."""

    def __init__(self, clip_id: str, at: float, new_id: str | None = None,
                 label: str = "Split clip") -> None:
        self.clip_id, self.at, self.new_id = clip_id, float(at), new_id
        self.label = label

    def do(self, target: HasProject) -> None:
        tl = _timeline(target)
        clip = _clip(tl, self.clip_id)
        at = round(self.at, 6)
        if not clip.start + MIN_CLIP <= at <= clip.start + clip.duration - MIN_CLIP:
            raise StudioError(f"{at:.3f} s is not inside the clip "
                              f"({clip.start:.3f}–{clip.start + clip.duration:.3f} s)")
        if self.new_id is None or any(c.id == self.new_id for c in tl.clips):
            self.new_id = next_clip_id(tl)
        head = at - clip.start
        second = clip.model_copy(update={
            "id": self.new_id, "start": at, "duration": round(clip.duration - head, 6),
            "offset": round(clip.offset + head, 6)}, deep=True)
        self.before = (clip.duration, list(tl.clips))
        clips = list(tl.clips)
        clips.insert(clips.index(clip) + 1, second)
        tl.clips = clips
        clip.duration = round(head, 6)

    def undo(self, target: HasProject) -> None:
        tl = _timeline(target)
        duration, clips = self.before
        tl.clips = clips
        _clip(tl, self.clip_id).duration = duration


__all__ = [
    "AddClip", "AddKey", "AddTrack", "DeleteClip", "DeleteKeys", "DeleteTrack", "MoveClip",
    "MoveKey", "SetTrackFlags", "SplitClip", "TimelineCommand", "TrimClip", "delete_key",
    "lock_track", "mute_track", "solo_track",
]

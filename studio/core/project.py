"""The project document: one UTF-8 JSON file (``.dhproj``) validated with pydantic.

Everything an artist makes lives here as plain data: the avatar (face model, latent, control
values), the refiner and voice settings, and the timeline. Asset paths are relative to the
project file and may not leave its folder. Loading is defensive: size, nesting depth,
numbers and paths are checked so a malformed or hostile file gives a clear error.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from studio.core.errors import FileFormatError, StudioError
from studio.core.files import read_bytes_bounded, resolve_path

SCHEMA_VERSION = 3
PROJECT_SUFFIX = ".dhproj"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32
MAX_SEED = 2**32 - 1
DEFAULT_NAME = "Untitled"  # until the user names the project or saves it under a name
DEFAULT_TRUNCATION = 0.7  # one default for the GUI, the CLI and new projects
TRUNCATION_RANGE = (-1.0, 2.0)
BIG = 1e6  # no sane value in a project is larger than this


def _rel_path(value: str) -> str:
    """An asset path relative to the project folder that cannot escape it."""
    if not value or len(value) > 1024 or "\x00" in value:
        raise ValueError("asset path is empty, too long or contains NUL")
    p = PurePosixPath(value.replace("\\", "/"))
    if p.is_absolute() or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"asset path {value!r} must be relative to the project folder")
    depth = 0
    for part in p.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise ValueError(f"asset path {value!r} escapes the project folder")
    return p.as_posix()


RelPath = Annotated[str, AfterValidator(_rel_path)]


def _model_ref(value: str) -> str:
    """'default', 'library:<file name>' (user model folders) or a path inside the project."""
    if value == "default":
        return value
    if value.startswith("library:"):
        name = value[len("library:") :]
        if not name or "/" in name or "\\" in name or name in (".", "..") or len(name) > 255:
            raise ValueError(f"bad library model name {name!r}")
        return value
    return _rel_path(value)


ModelRef = Annotated[str, AfterValidator(_model_ref)]
Finite = Annotated[float, Field(ge=-BIG, le=BIG, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\- ]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Blend(_Model):
    """Schema 3: the avatar's w+ interpolated towards another face's: a seed (at the
    avatar's truncation) or a w+ ``.npy`` (an inverted photo, another avatar's latent)."""

    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    latent: RelPath | None = None  # overrides seed
    amount: float = Field(0.5, ge=0.0, le=1.0, allow_inf_nan=False)


class RigTarget(_Model):
    """Schema 3: one control a rig channel drives (``control += gain * value + offset``)."""

    control: Name
    gain: Finite = 1.0
    offset: Finite = 0.0


class AvatarRig(_Model):
    """Schema 3: the project's own rig (:mod:`studio.animate.rig`), replacing the model's:
    which controls each animation channel drives."""

    channels: dict[Name, list[RigTarget]] = Field(default_factory=dict, max_length=256)
    passthrough: bool = True


class Avatar(_Model):
    model: ModelRef = "default"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    truncation: float = Field(DEFAULT_TRUNCATION, ge=TRUNCATION_RANGE[0], le=TRUNCATION_RANGE[1],
                              allow_inf_nan=False)
    mix_seed: int | None = Field(None, ge=0, le=MAX_SEED)
    mix_layers: tuple[int, int] = (8, 18)
    noise_mode: Literal["const", "random", "none"] = "const"
    latent: RelPath | None = None  # .npy of w+ from inversion, when the face came from a photo
    controls: dict[Name, Finite] = Field(default_factory=dict, max_length=512)
    locks: list[Name] = Field(default_factory=list, max_length=64)
    blend: Blend | None = None  # schema 3: blend with another face (None: no blend)
    rig: AvatarRig | None = None  # schema 3: the project's rig (None: the model's default)


class RefinerSettings(_Model):
    enabled: bool = False
    model: ModelRef = "default"
    prompt: str = Field("", max_length=4000)
    negative_prompt: str = Field("", max_length=4000)
    strength: float = Field(0.3, ge=0.0, le=1.0, allow_inf_nan=False)
    steps: int = Field(20, ge=1, le=500)
    guidance: float = Field(5.0, ge=0.0, le=50.0, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=MAX_SEED)


VOICE_DELIVERY = ("rate", "pitch", "formant", "expressiveness", "volume", "sentence_pause",
                  "emphasis_gain_db", "speaker")


def _voice_number(default: float, lo: float, hi: float, meaning: str) -> Any:
    return Field(default, ge=lo, le=hi, allow_inf_nan=False, description=meaning)


class VoiceSettings(_Model):
    """How a voice speaks: the one schema for the project, the speech engines and the CLI.

    ``voice`` names the voice (``default``/``joe``, ``piper:NAME``, ``espeak:LANG``); the
    rest is delivery, whose limits are what the engines accept. A value out of range is
    refused with a clear error, never clamped. Built directly (the CLI, the engines) a bad
    value raises :class:`StudioError`; inside a project it is a validation error.
    """

    # strict: built in code (the CLI, the engines) or read from a file, a number given as
    # text or a bool is a wrong type, not something to guess at
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)

    engine: Literal["piper", "espeak"] = "piper"
    voice: str = Field("default", max_length=1024)
    rate: float = _voice_number(1.0, 0.25, 4.0, "speaking speed, 1 = the voice's natural speed")
    pitch: float = _voice_number(0.0, -12.0, 12.0,
                                 "pitch shift in semitones, duration and timings kept")
    formant: float = _voice_number(
        0.0, -6.0, 6.0, "formant/timbre shift in semitones: + smaller/brighter, - larger/darker")
    expressiveness: float = _voice_number(1.0, 0.0, 2.0,
                                          "prosody variation, 1 = the voice's default")
    volume: float = _voice_number(1.0, 0.0, 4.0, "loudness, 1 = peaks at -1 dBFS")
    sentence_pause: float = _voice_number(0.0, 0.0, 5.0,
                                          "extra silence between sentences, seconds")
    emphasis_gain_db: float = _voice_number(4.0, 0.0, 12.0,
                                            "loudness boost of emphasised words, dB")
    speaker: int | None = Field(None, ge=0, le=100_000,
                                description="speaker number of a multi-speaker Piper voice")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise VoiceSettingsError(_voice_error(exc)) from None

    @classmethod
    def limits(cls) -> dict[str, tuple[float, float, str]]:
        """name → (minimum, maximum, meaning) of every numeric delivery setting."""
        out = {}
        for name in VOICE_DELIVERY:
            info = cls.model_fields[name]
            lo = hi = None
            for m in info.metadata:
                lo = getattr(m, "ge", lo) if getattr(m, "ge", None) is not None else lo
                hi = getattr(m, "le", hi) if getattr(m, "le", None) is not None else hi
            if name != "speaker":
                out[name] = (float(lo), float(hi), info.description or "")
        return out

    def key(self) -> tuple:
        """The delivery values (not the voice's name): part of the speech cache key."""
        return tuple(getattr(self, name) for name in VOICE_DELIVERY)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoiceSettings:
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise StudioError(f"unknown voice settings: {', '.join(unknown)}")
        return cls(**data)


class VoiceSettingsError(StudioError, ValueError):
    """A voice setting out of range (a ValueError too, so inside a project it is one of the
    file's validation errors)."""


def _voice_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err["loc"]) or "value"
    limits = VoiceSettings.limits().get(name)
    if limits is not None and err["type"] in ("greater_than_equal", "less_than_equal"):
        lo, hi, meaning = limits
        return (f"voice setting {name}={err['input']} is out of range {lo:g}..{hi:g} "
                f"({meaning})")
    return f"voice setting {name}: {err['msg']}"


# -- the timeline ---------------------------------------------------------------------------
# Tracks and clips carry ids unique in their timeline, keys ids unique in their track, so an
# edit names what it changes (no list indices). The timeline package makes short sequential
# ids (t1, c1, key 1); an object built without an id gets a random one (a key gets the next
# free number of its track). Keys are immutable and a track's keys a tuple: a change of keys
# replaces the tuple, which is what keeps a track's cached array view valid.

ItemId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
MAX_KEYS = 1_000_000


def new_item_id(prefix: str) -> str:
    """A random id (for tracks and clips made outside the timeline package)."""
    return f"{prefix}{secrets.token_hex(6)}"


class Key(_Model):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)

    id: int = Field(0, ge=0, le=2**53)  # 0: not yet numbered (the track numbers it)
    t: float = Field(ge=0.0, le=BIG, allow_inf_nan=False)
    v: Finite
    interp: Literal["linear", "smooth", "step", "bezier"] = "smooth"
    # Schema 3: the slopes (value per second) of the curve arriving at and leaving the key,
    # for "bezier" pieces (a cubic with handles a third of the piece long along these
    # slopes); None: automatic (the smooth curve's tangent). Written only when set.
    tan_in: Finite | None = None
    tan_out: Finite | None = None

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in ("tan_in", "tan_out"):
            if data.get(name, 0) is None:
                del data[name]
        return data


class _ViewSlot:
    """A track's cached derived view (e.g. its keys as arrays). Never part of equality
    or copies: it is rebuilt from the keys when they change."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple | None = None  # (keys, channel, value), replaced in one step

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ViewSlot)

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict) -> _ViewSlot:
        return _ViewSlot()

    def __copy__(self) -> _ViewSlot:
        return _ViewSlot()


class CurveTrack(_Model):
    id: ItemId = Field(default_factory=lambda: new_item_id("t"))
    channel: Name
    keys: tuple[Key, ...] = Field(default=(), max_length=MAX_KEYS)  # sorted by time
    muted: bool = False
    solo: bool = False
    locked: bool = False  # keys cannot be added, moved or deleted
    _view: _ViewSlot = PrivateAttr(default_factory=_ViewSlot)

    @field_validator("keys")
    @classmethod
    def _numbered_and_sorted(cls, keys: tuple[Key, ...]) -> tuple[Key, ...]:
        ids = [k.id for k in keys]
        if 0 in ids:
            free = max(ids) + 1
            numbered = []
            for k in keys:
                if k.id == 0:
                    k = k.model_copy(update={"id": free})
                    free += 1
                numbered.append(k)
            keys, ids = tuple(numbered), [k.id for k in numbered]
        if len(set(ids)) != len(ids):
            raise ValueError("two keys of the track have the same id")
        times = [k.t for k in keys]
        if any(b < a for a, b in zip(times, times[1:], strict=False)):
            keys = tuple(sorted(keys, key=lambda k: k.t))
        return keys

    def key_index(self, key_id: int) -> int:
        """Position of the key with this id (ValueError when the track has none)."""
        for i, k in enumerate(self.keys):
            if k.id == key_id:
                return i
        raise ValueError(f"the track {self.channel} has no key {key_id}")

    def cached(self, build: Callable[[CurveTrack], Any]) -> Any:
        """``build(self)``, computed once per change of the keys or channel (for array
        views: evaluating and drawing a track never converts its keys again)."""
        slot = self._view
        entry = slot.entry
        if entry is not None and entry[0] is self.keys and entry[1] == self.channel:
            return entry[2]
        keys, channel = self.keys, self.channel
        value = build(self)
        slot.entry = (keys, channel, value)
        return value


class Clip(_Model):
    id: ItemId = Field(default_factory=lambda: new_item_id("c"))
    kind: Literal["speech", "audio"]
    start: float = Field(0.0, ge=0.0, le=BIG, allow_inf_nan=False)  # on the timeline
    duration: float = Field(0.0, ge=0.0, le=BIG, allow_inf_nan=False)
    offset: float = Field(0.0, ge=0.0, le=BIG, allow_inf_nan=False)  # into the audio (trims)
    text: str = Field("", max_length=100_000)
    audio: RelPath | None = None  # rendered speech or an imported recording
    voice: VoiceSettings | None = None  # speech clips: None means the project voice
    gain: float = Field(1.0, ge=0.0, le=16.0, allow_inf_nan=False)

    @property
    def end(self) -> float:
        return self.start + self.duration


class Timeline(_Model):
    fps: int = Field(25, ge=1, le=240)
    duration: float = Field(10.0, gt=0.0, le=24 * 3600, allow_inf_nan=False)
    tracks: list[CurveTrack] = Field(default_factory=list, max_length=4096)  # one per channel
    clips: list[Clip] = Field(default_factory=list, max_length=100_000)

    @field_validator("tracks")
    @classmethod
    def _unique_tracks(cls, tracks: list[CurveTrack]) -> list[CurveTrack]:
        ids, channels = set(), set()
        for t in tracks:
            if t.id in ids:
                raise ValueError(f"two tracks have the id {t.id!r}")
            if t.channel in channels:
                raise ValueError(f"two tracks drive the channel {t.channel!r}")
            ids.add(t.id)
            channels.add(t.channel)
        return tracks

    @field_validator("clips")
    @classmethod
    def _unique_clips(cls, clips: list[Clip]) -> list[Clip]:
        ids = [c.id for c in clips]
        if len(set(ids)) != len(ids):
            raise ValueError("two clips have the same id")
        return clips

    def track(self, track_id: str) -> CurveTrack:
        """The track with this id (ValueError when there is none)."""
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise ValueError(f"the timeline has no track {track_id!r}")

    def clip(self, clip_id: str) -> Clip:
        for c in self.clips:
            if c.id == clip_id:
                return c
        raise ValueError(f"the timeline has no clip {clip_id!r}")


class Project(_Model):
    schema_version: Literal[3] = SCHEMA_VERSION
    name: str = Field(DEFAULT_NAME, max_length=256)
    avatar: Avatar = Field(default_factory=Avatar)
    refiner: RefinerSettings = Field(default_factory=RefinerSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    timeline: Timeline = Field(default_factory=Timeline)


# Migrations: MIGRATIONS[n] turns a version-n dict into a version-(n+1) dict. Version 1 is the
# first released schema; each later schema change adds one function here.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

# Version 1 voice settings allowed more than the engines took (they spoke it clamped) and
# defaulted to a 0.3 s sentence pause.
_V1_VOICE_RANGES = {"rate": (0.25, 4.0), "pitch": (-12.0, 12.0), "formant": (-6.0, 6.0),
                    "expressiveness": (0.0, 2.0), "volume": (0.0, 4.0),
                    "sentence_pause": (0.0, 5.0)}


def _v1_voice(voice: Any) -> Any:
    if not isinstance(voice, dict):
        return voice
    voice = dict(voice)
    voice.setdefault("sentence_pause", 0.3)  # the version 1 default
    for name, (lo, hi) in _V1_VOICE_RANGES.items():
        value = voice.get(name)
        if type(value) in (int, float) and not lo <= value <= hi:
            # what the engines actually spoke: version 1 clamped at synthesis time
            voice[name] = float(min(max(value, lo), hi))
    return voice


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2: ids for tracks (t1, t2, ...), clips (c1, ...) and keys (1, 2, ... per
    track); one track per channel (the keys of a repeated channel join the first track);
    one voice-settings schema (values brought into the engines' ranges, which is how
    version 1 spoke them; a missing sentence pause keeps version 1's 0.3 s)."""
    data = dict(data)
    if "voice" in data:
        data["voice"] = _v1_voice(data["voice"])
    timeline = data.get("timeline")
    if not isinstance(timeline, dict):
        return data
    timeline = dict(timeline)
    data["timeline"] = timeline
    tracks = timeline.get("tracks")
    if isinstance(tracks, list):
        merged: list[Any] = []
        by_channel: dict[str, dict[str, Any]] = {}
        for track in tracks:
            if not isinstance(track, dict):
                merged.append(track)
                continue
            track = dict(track)
            channel = track.get("channel")
            first = by_channel.get(channel) if isinstance(channel, str) else None
            if first is not None and isinstance(first.get("keys"), list) \
                    and isinstance(track.get("keys"), list):
                first["keys"] = first["keys"] + track["keys"]
                continue
            if isinstance(channel, str):
                by_channel[channel] = track
            merged.append(track)
        for n, track in enumerate(merged, 1):
            if not isinstance(track, dict):
                continue
            track["id"] = f"t{n}"
            keys = track.get("keys")
            if isinstance(keys, list):
                if all(isinstance(k, dict) and type(k.get("t")) in (int, float) for k in keys):
                    keys = sorted(keys, key=lambda k: k["t"])
                track["keys"] = [dict(k, id=i) if isinstance(k, dict) else k
                                 for i, k in enumerate(keys, 1)]
        timeline["tracks"] = merged
    clips = timeline.get("clips")
    if isinstance(clips, list):
        out = []
        for n, clip in enumerate(clips, 1):
            if isinstance(clip, dict):
                clip = dict(clip)
                clip["id"] = f"c{n}"
                if clip.get("voice") is not None:
                    clip["voice"] = _v1_voice(clip["voice"])
            out.append(clip)
        timeline["clips"] = out
    return data


MIGRATIONS[1] = _v1_to_v2


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3: keys may be "bezier" and carry tangents (``tan_in``, ``tan_out``); a
    version 2 key has neither, which reads as automatic tangents: nothing to change. The
    avatar may hold a ``blend`` (absent in version 2: no blend)."""
    return dict(data)


MIGRATIONS[2] = _v2_to_v3


def migrate(data: dict[str, Any], path: Path | None = None) -> dict[str, Any]:
    version = data.get("schema_version")
    if type(version) is not int:
        raise FileFormatError("not a project file: 'schema_version' is missing or not a number", path)
    if version > SCHEMA_VERSION:
        raise FileFormatError(
            f"made by a newer version of the studio (schema {version}; this version reads "
            f"up to {SCHEMA_VERSION}). Update the studio to open it.",
            path,
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise FileFormatError(f"schema version {version} is not supported", path)
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


# A JSON string (an unterminated one runs to the end), and anything but a bracket. Both
# patterns match in linear time, so the depth check costs little even for a 60 MB file.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _check_depth(text: str, path: Path | None) -> None:
    """Refuse deeply nested JSON before the parser recurses into it."""
    depth = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise FileFormatError(f"nested more than {MAX_DEPTH} levels deep", path)
        else:
            depth -= 1


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a project file")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]}… is out of range")
    return value


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{where}: {e['msg']}")
    more = len(err.errors()) - 5
    if more > 0:
        lines.append(f"… and {more} more problems")
    return "; ".join(lines)


# -- limits of a whole project ---------------------------------------------------------------
# Whatever a project may hold must save to a file the loader reads back (at most
# MAX_FILE_BYTES). Keys are what grows in practice (baked animation, recorded performances),
# so their total is capped where the edit is made: a key at its longest compact ("id" near
# 2**53, two 17-digit floats, "smooth") takes under 100 bytes, so MAX_TOTAL_KEYS of them fit in
# 48 MB with room for the rest. Anything else that makes a project too large (a book of text
# in thousands of clips) is refused when loading, and before writing when saving, with a
# clear message: never a file that saves and then cannot be reopened.
MAX_TOTAL_KEYS = 500_000
INDENT_BELOW = 2 * 1024 * 1024  # projects smaller than this (compact) are saved indented


class ProjectTooLarge(FileFormatError):
    """The project is over a limit of the file format."""


def count_keys(project: Project) -> int:
    return sum(len(t.keys) for t in project.timeline.tracks)


def keys_limit_message(n: int) -> str:
    return (f"{n:,} animation keys, more than the {MAX_TOTAL_KEYS:,} a project can hold; "
            "thin out baked tracks (fewer keys per second) or split the animation")


def check_limits(project: Project, path: Path | None = None) -> None:
    """Raise :class:`ProjectTooLarge` when the project holds more keys than a project may."""
    n = count_keys(project)
    if n > MAX_TOTAL_KEYS:
        raise ProjectTooLarge(keys_limit_message(n), path)


def _raw_key_count(data: dict[str, Any]) -> int:
    """Keys in a parsed, not yet validated project (to refuse before building them all)."""
    timeline = data.get("timeline")
    tracks = timeline.get("tracks") if isinstance(timeline, dict) else None
    if not isinstance(tracks, list):
        return 0
    return sum(len(t["keys"]) for t in tracks
               if isinstance(t, dict) and isinstance(t.get("keys"), list))


def _human_mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def project_to_bytes(project: Project, path: Path | None = None) -> bytes:
    """The file the studio writes: indented JSON when small (readable diffs), compact when
    large. Raises :class:`ProjectTooLarge` (before anything is written) when the project is
    over a limit, so that a save never makes a file the loader refuses."""
    check_limits(project, path)
    data = project.model_dump(mode="json")
    try:
        compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(compact) <= INDENT_BELOW:
            indented = (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
            if len(indented) <= MAX_FILE_BYTES:
                return indented
    except UnicodeEncodeError as exc:
        raise StudioError(f"the project holds text that cannot be saved ({exc.reason})",
                          path) from None
    if len(compact) + 1 > MAX_FILE_BYTES:
        raise ProjectTooLarge(
            f"the project is too large to save: {_size_message(len(compact) + 1)}; shorten "
            "long speech texts or remove clips, keys or tracks", path)
    return compact + b"\n"


def _size_message(n: int) -> str:
    return f"{_human_mb(n)}, more than the {_human_mb(MAX_FILE_BYTES)} a project file can hold"


def project_to_text(project: Project) -> str:
    return project_to_bytes(project).decode("utf-8")


def project_from_text(text: str, path: Path | None = None) -> Project:
    if len(text) > MAX_FILE_BYTES:
        raise FileFormatError("file is too large to be a project", path)
    _check_depth(text, path)
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except (ValueError, RecursionError) as exc:
        raise FileFormatError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise FileFormatError("not a project file: the top level is not a JSON object", path)
    data = migrate(data, path)
    keys = _raw_key_count(data)
    if keys > MAX_TOTAL_KEYS:
        raise ProjectTooLarge(keys_limit_message(keys), path)
    try:
        # strict: a number written as a string is a wrong type, not something to guess at
        project = Project.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise FileFormatError(f"invalid project: {_format_validation_error(exc)}", path) from None
    # A project that opens must save again: its file as the studio writes it (defaults
    # written out, numbers in full) must fit what the loader accepts.
    compact = json.dumps(project.model_dump(mode="json"), separators=(",", ":"),
                         ensure_ascii=False)
    size = len(compact.encode("utf-8")) + 1
    if size > MAX_FILE_BYTES:
        raise ProjectTooLarge(f"too large: when saved it would take {_size_message(size)}",
                              path)
    return project


def load_project(path: str | Path) -> Project:
    """Read and validate a project. Raises FileFormatError; never touches the file.

    Only a regular file is read (a pipe or a device such as ``/dev/zero`` would block or
    never end), and at most MAX_FILE_BYTES of it."""
    path = Path(path)
    try:
        raw = read_bytes_bounded(path, MAX_FILE_BYTES, "project file")
    except FileFormatError:
        raise
    except StudioError as exc:  # missing, a folder, unreadable, a symlink loop
        raise FileFormatError("file not found" if _missing(path) else exc.reason, path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileFormatError("not a project file (not UTF-8 text)", path) from None
    if not text.strip():
        raise FileFormatError("the file is empty", path)
    return project_from_text(text, path)


def _missing(path: Path) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


class AssetPathError(StudioError, ValueError):
    """An asset path that leaves the project folder (a ValueError for older callers)."""


def resolve_asset(project_path: Path | None, rel: str) -> Path:
    """Absolute path of an asset referenced by the project, with its symlinks resolved.

    The check is on the real path: a symlink inside the project folder that points outside
    it is refused like ``../``."""
    try:
        clean = _rel_path(rel)
    except ValueError as exc:
        raise AssetPathError(str(exc), project_path) from None
    base = resolve_path(project_path.parent if project_path is not None else Path.cwd())
    target = resolve_path(base / clean)
    if not target.is_relative_to(base):
        raise AssetPathError(f"asset path {rel!r} leads outside the project folder (through "
                             f"a symlink, to {target})", project_path)
    return target

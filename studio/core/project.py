"""The project document: one UTF-8 JSON file (``.dhproj``) validated with pydantic.

Everything an artist makes lives here as plain data: the avatar (face model, latent, control
values), the refiner and voice settings, and the timeline. Asset paths are relative to the
project file and may not leave its folder. Loading is defensive: size, nesting depth,
numbers and paths are checked so a malformed or hostile file gives a clear error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from studio.core.errors import FileFormatError

SCHEMA_VERSION = 1
PROJECT_SUFFIX = ".dhproj"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32
MAX_SEED = 2**32 - 1
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


class Avatar(_Model):
    model: ModelRef = "default"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    truncation: float = Field(0.7, ge=-1.0, le=2.0, allow_inf_nan=False)
    mix_seed: int | None = Field(None, ge=0, le=MAX_SEED)
    mix_layers: tuple[int, int] = (8, 18)
    noise_mode: Literal["const", "random", "none"] = "const"
    latent: RelPath | None = None  # .npy of w+ from inversion, when the face came from a photo
    controls: dict[Name, Finite] = Field(default_factory=dict, max_length=512)
    locks: list[Name] = Field(default_factory=list, max_length=64)


class RefinerSettings(_Model):
    enabled: bool = False
    model: ModelRef = "default"
    prompt: str = Field("", max_length=4000)
    negative_prompt: str = Field("", max_length=4000)
    strength: float = Field(0.3, ge=0.0, le=1.0, allow_inf_nan=False)
    steps: int = Field(20, ge=1, le=500)
    guidance: float = Field(5.0, ge=0.0, le=50.0, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=MAX_SEED)


class VoiceSettings(_Model):
    engine: Literal["piper", "espeak"] = "piper"
    voice: str = Field("default", max_length=1024)
    rate: float = Field(1.0, ge=0.25, le=4.0, allow_inf_nan=False)
    pitch: float = Field(0.0, ge=-24.0, le=24.0, allow_inf_nan=False)  # semitones
    formant: float = Field(0.0, ge=-12.0, le=12.0, allow_inf_nan=False)  # semitones
    expressiveness: float = Field(1.0, ge=0.0, le=3.0, allow_inf_nan=False)
    volume: float = Field(1.0, ge=0.0, le=4.0, allow_inf_nan=False)
    sentence_pause: float = Field(0.3, ge=0.0, le=10.0, allow_inf_nan=False)


class Key(_Model):
    t: float = Field(ge=0.0, le=BIG, allow_inf_nan=False)
    v: Finite
    interp: Literal["linear", "smooth", "step"] = "smooth"


class CurveTrack(_Model):
    channel: Name
    keys: list[Key] = Field(default_factory=list, max_length=1_000_000)
    muted: bool = False


class Clip(_Model):
    kind: Literal["speech", "audio"]
    start: float = Field(0.0, ge=0.0, le=BIG, allow_inf_nan=False)
    duration: float = Field(0.0, ge=0.0, le=BIG, allow_inf_nan=False)
    text: str = Field("", max_length=100_000)
    audio: RelPath | None = None  # rendered speech or an imported recording
    voice: VoiceSettings | None = None  # speech clips: None means the project voice
    gain: float = Field(1.0, ge=0.0, le=16.0, allow_inf_nan=False)


class Timeline(_Model):
    fps: int = Field(25, ge=1, le=240)
    duration: float = Field(10.0, gt=0.0, le=24 * 3600, allow_inf_nan=False)
    tracks: list[CurveTrack] = Field(default_factory=list, max_length=4096)
    clips: list[Clip] = Field(default_factory=list, max_length=100_000)


class Project(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field("Untitled", max_length=256)
    avatar: Avatar = Field(default_factory=Avatar)
    refiner: RefinerSettings = Field(default_factory=RefinerSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    timeline: Timeline = Field(default_factory=Timeline)


# Migrations: MIGRATIONS[n] turns a version-n dict into a version-(n+1) dict. Version 1 is the
# first released schema; each later schema change adds one function here.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


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


def _check_depth(text: str, path: Path | None) -> None:
    """Refuse deeply nested JSON before the parser recurses into it."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise FileFormatError(f"nested more than {MAX_DEPTH} levels deep", path)
        elif ch in "]}":
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
    try:
        # strict: a number written as a string is a wrong type, not something to guess at
        return Project.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise FileFormatError(f"invalid project: {_format_validation_error(exc)}", path) from None


def load_project(path: str | Path) -> Project:
    """Read and validate a project. Raises FileFormatError; never touches the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileFormatError(f"file is {size} bytes, too large to be a project", path)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError("file not found", path) from None
    except IsADirectoryError:
        raise FileFormatError("is a folder, not a project file", path) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read the file ({exc.strerror})", path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileFormatError("not a project file (not UTF-8 text)", path) from None
    if not text.strip():
        raise FileFormatError("the file is empty", path)
    return project_from_text(text, path)


def project_to_text(project: Project) -> str:
    return json.dumps(project.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n"


def resolve_asset(project_path: Path | None, rel: str) -> Path:
    """Absolute path of an asset referenced by the project."""
    base = project_path.parent if project_path is not None else Path.cwd()
    return (base / _rel_path(rel)).resolve()

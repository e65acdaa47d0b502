"""The model registry: find the models on disk without loading them (face GANs, voices,
refiners), and the one reader of safetensors headers.

Reads only file headers (safetensors JSON header, Piper ``.onnx.json``), so listing is fast,
imports no torch and never executes anything. Broken files are reported, not fatal.

Face models: the shipped ones live in ``<repo>/models/face/``; the user's folders are added
by the caller. A face model whose metadata marks it untrained (``training.untrained``) is
listed with that flag and is never offered as the default. The checks here are those of the
file's envelope (format, version, resolution, ...); ``studio.face.model_file`` adds the
checks of the network settings when it reads or loads a model.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import FileFormatError, StudioError
from studio.core.files import check_regular_file

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 100 * 1024 * 1024
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1,
}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})

STUDIO_META_KEY = "studio"  # our JSON metadata: __metadata__["studio"]
FACE_FORMAT = "dhs-face"
FACE_FORMAT_VERSION = 1
DEFAULT_FACE_MODEL = "default.safetensors"


# --------------------------------------------------------------------------- headers


def read_safetensors_header(path: str | os.PathLike[str],
                            what: str = "safetensors file") -> tuple[dict[str, Any], int]:
    """Parse and check the header of a safetensors file; returns ``(header, data_start)``.

    The file must be a regular file (a FIFO or ``/dev/zero`` is refused before it is
    opened); every tensor entry must have a known dtype, a shape and offsets that agree, and
    lie inside the file. Every problem is a :class:`FileFormatError` naming the file."""
    p = Path(path)
    if not os.path.lexists(p):
        raise FileFormatError("file not found", p)
    try:
        size = check_regular_file(p, what=what)
    except FileFormatError:
        raise
    except StudioError as exc:  # a folder, a symlink loop, no permission
        raise FileFormatError(exc.reason, p) from None
    try:
        with open(p, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise FileFormatError("not a safetensors file (too short)", p)
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise FileFormatError("not a safetensors file (bad header length)", p)
            raw = f.read(n)
    except OSError as exc:
        raise FileFormatError(f"cannot read: {exc.strerror or exc}", p) from None
    if len(raw) != n:
        raise FileFormatError("truncated file (shorter than its header says)", p)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise FileFormatError("not a safetensors file (header is not JSON)", p) from None
    if not isinstance(header, dict):
        raise FileFormatError("not a safetensors file (header is not an object)", p)
    data_len = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            if info is not None and not isinstance(info, dict):
                raise FileFormatError("not a safetensors file (__metadata__ is not an object)", p)
            continue
        if not isinstance(info, dict):
            raise FileFormatError(f"tensor {key!r}: malformed header entry", p)
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            raise FileFormatError(f"tensor {key!r}: unsupported dtype {dtype!r}", p)
        if (
            not isinstance(shape, list)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
            or not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise FileFormatError(f"tensor {key!r}: malformed header entry", p)
        begin, end = offsets
        if not 0 <= begin <= end or end - begin != math.prod(shape) * DTYPE_SIZES[dtype]:
            raise FileFormatError(f"tensor {key!r}: size does not match its shape", p)
        if end > data_len:
            raise FileFormatError(f"truncated file (tensor {key!r} runs past the end)", p)
    return header, 8 + n


def studio_metadata(header: Mapping[str, Any], path: str | os.PathLike[str]) -> dict | None:
    """Our JSON metadata stored under ``__metadata__['studio']``, or None if there is none."""
    md = header.get("__metadata__") or {}
    text = md.get(STUDIO_META_KEY) if isinstance(md, dict) else None
    if text is None:
        return None
    if not isinstance(text, str):
        raise FileFormatError("invalid studio metadata", path)
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise FileFormatError("invalid studio metadata (not JSON)", path) from None
    if not isinstance(value, dict):
        raise FileFormatError("invalid studio metadata (not an object)", path)
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def face_metadata(header: Mapping[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """The studio metadata of a face model file, with its envelope checked: the format and
    its version, ``G_kwargs``/``D_kwargs`` objects, the resolution (a power of two), and
    the types of the descriptive fields."""
    meta = studio_metadata(header, path)
    if meta is None:
        raise FileFormatError("not a face model (no studio metadata)", path)
    if meta.get("format") != FACE_FORMAT:
        raise FileFormatError(f"not a face model (format is {meta.get('format')!r})", path)
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise FileFormatError("invalid studio metadata (format_version)", path)
    if version > FACE_FORMAT_VERSION:
        raise FileFormatError(
            f"face model format version {version} is newer than this studio supports "
            f"({FACE_FORMAT_VERSION}); update the studio", path)
    if not isinstance(meta.get("G_kwargs"), dict):
        raise FileFormatError("invalid studio metadata (G_kwargs missing)", path)
    if meta.get("D_kwargs") is not None and not isinstance(meta["D_kwargs"], dict):
        raise FileFormatError("invalid studio metadata (D_kwargs)", path)
    controls = meta.get("controls", {})
    if not isinstance(controls, dict) or not all(isinstance(v, dict) for v in controls.values()):
        raise FileFormatError("invalid studio metadata (controls)", path)
    res = meta.get("resolution")
    if not _is_int(res) or not 4 <= res <= 4096 or res & (res - 1):
        raise FileFormatError(
            f"invalid studio metadata (resolution {res!r}: a power of two from 4 to 4096)", path)
    for key in ("name", "source", "license"):
        if key in meta and not isinstance(meta[key], str):
            raise FileFormatError(f"invalid studio metadata ({key} is not text)", path)
    if meta.get("training") is not None and not isinstance(meta["training"], dict):
        raise FileFormatError("invalid studio metadata (training is not an object)", path)
    return meta


def read_face_header_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked metadata of a face model file, reading only its header."""
    header, _ = read_safetensors_header(path, "face model file")
    return face_metadata(header, path)


# --------------------------------------------------------------------------- face models


@dataclass(frozen=True)
class ModelInfo:
    """A face model found on disk (for pickers)."""

    path: Path
    name: str
    resolution: int
    source: str
    license: str = ""
    untrained: bool = False


@dataclass(frozen=True)
class ModelProblem:
    path: Path
    reason: str


def shipped_face_dir() -> Path:
    """``<repo>/models/face``: where the face models that ship with the app live."""
    return paths.shipped_models_dir() / "face"


def default_model_path() -> Path:
    """Where the default face model is installed (the file may not exist yet)."""
    return shipped_face_dir() / DEFAULT_FACE_MODEL


def is_untrained(meta: Mapping[str, Any]) -> bool:
    training = meta.get("training")
    return isinstance(training, dict) and bool(training.get("untrained", False))


def default_face_model() -> Path | None:
    """The default model's path if it is installed, valid and trained; otherwise None."""
    path = default_model_path()
    if not path.is_file():
        return None
    try:
        meta = read_face_header_meta(path)
    except FileFormatError as exc:
        log.warning("default face model unusable: %s", exc)
        return None
    return None if is_untrained(meta) else path


def _face_info(path: Path, meta: Mapping[str, Any]) -> ModelInfo:
    return ModelInfo(path=path, name=str(meta.get("name") or path.stem),
                     resolution=int(meta["resolution"]), source=str(meta.get("source", "")),
                     license=str(meta.get("license", "")), untrained=is_untrained(meta))


def _face_files(folder: Path) -> Iterator[tuple[Path, ModelInfo | FileFormatError]]:
    """Each ``*.safetensors`` in ``folder`` (not recursive) with its info or its problem."""
    for path in sorted(folder.glob("*.safetensors")):
        try:
            yield path, _face_info(path, read_face_header_meta(path))
        except FileFormatError as exc:
            yield path, exc


def find_face_models(
    extra_dirs: Iterable[str | os.PathLike[str]] = (),
    problems: list[ModelProblem] | None = None,
) -> list[ModelInfo]:
    """Face models in ``models/face/`` and ``extra_dirs`` (``*.safetensors``, not recursive),
    sorted by name then path. Files that are not valid face models are skipped; each one is
    logged and, when ``problems`` is given, appended to it."""
    found: list[ModelInfo] = []
    seen: set[Path] = set()
    for folder in [shipped_face_dir(), *(Path(d) for d in extra_dirs)]:
        if not folder.is_dir():
            continue
        for path, info in _face_files(folder):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            if isinstance(info, FileFormatError):
                log.warning("skipping %s", info)
                if problems is not None:
                    problems.append(ModelProblem(path, info.reason))
                continue
            found.append(info)
    found.sort(key=lambda m: (m.name.lower(), str(m.path)))
    return found


# --------------------------------------------------------------------------- all models


@dataclass
class ModelEntry:
    kind: str  # "face", "voice", "refiner"
    name: str
    path: Path
    details: dict = field(default_factory=dict)


def _scan_face(folder: Path, found: list[ModelEntry], problems: list[str]) -> None:
    for path, info in _face_files(folder):
        if isinstance(info, FileFormatError):
            problems.append(str(info))
            continue
        found.append(ModelEntry("face", info.name, path, {
            "resolution": info.resolution, "source": info.source, "license": info.license,
            **({"untrained": True} if info.untrained else {}),
        }))


def _scan_voice(folder: Path, found: list[ModelEntry], problems: list[str]) -> None:
    for f in sorted(folder.glob("*.onnx")):
        cfg = f.with_name(f.name + ".json")
        if not cfg.exists():
            problems.append(f"{f}: Piper voice without its {cfg.name}")
            continue
        try:
            check_regular_file(cfg, 16 * 1024 * 1024, "Piper voice config")
            data = json.loads(cfg.read_text(encoding="utf-8"))
            details = {
                "sample_rate": data["audio"]["sample_rate"],
                "language": (data.get("language") or {}).get("code")
                or (data.get("espeak") or {}).get("voice"),
            }
        except StudioError as exc:
            problems.append(str(exc))
            continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"{cfg}: not a Piper voice config ({exc})")
            continue
        found.append(ModelEntry("voice", f.name.removesuffix(".onnx"), f, details))


def _scan_refiner(folder: Path, found: list[ModelEntry], problems: list[str]) -> None:
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (d / "model_index.json").exists():
            found.append(ModelEntry("refiner", d.name, d, {"format": "diffusers"}))
    for f in sorted(folder.glob("*.safetensors")):
        try:
            read_safetensors_header(f, "refiner model file")
        except FileFormatError as exc:
            problems.append(str(exc))
            continue
        found.append(ModelEntry("refiner", f.stem, f, {"format": "single file"}))


SCANNERS = {"face": _scan_face, "voice": _scan_voice, "refiner": _scan_refiner}


def scan_models(dirs: list[Path]) -> tuple[list[ModelEntry], list[str]]:
    """Models in ``<dir>/face``, ``<dir>/voice``, ``<dir>/refiner`` for each dir."""
    found: list[ModelEntry] = []
    problems: list[str] = []
    for base in dirs:
        for kind, scan in SCANNERS.items():
            folder = Path(base) / kind
            if folder.is_dir():
                scan(folder, found, problems)
    return found, problems

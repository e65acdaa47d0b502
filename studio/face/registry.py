"""Find face models: the shipped ones in ``<repo>/models/face/`` and any folders the user adds.

Only the file headers are read (no torch import), so listing models for a picker is cheap.
A model whose metadata marks it untrained (``training.untrained``) is listed with that flag
and is never offered as the default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import FileFormatError
from studio.face.model_file import read_face_model_meta

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "default.safetensors"


@dataclass(frozen=True)
class ModelInfo:
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


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def models_dir() -> Path:
    """``<repo>/models/face``: where face models that ship with the app live."""
    return repo_root() / "models" / "face"


def default_model_path() -> Path:
    """Where the default face model is installed (the file may not exist yet)."""
    return models_dir() / DEFAULT_MODEL_NAME


def is_untrained(meta: dict[str, Any]) -> bool:
    training = meta.get("training")
    return isinstance(training, dict) and bool(training.get("untrained", False))


def default_face_model() -> Path | None:
    """The default model's path if it is installed, valid and trained; otherwise None."""
    path = default_model_path()
    if not path.is_file():
        return None
    try:
        meta = read_face_model_meta(path)
    except FileFormatError as exc:
        log.warning("default face model unusable: %s", exc)
        return None
    return None if is_untrained(meta) else path


def find_face_models(
    extra_dirs: Iterable[str | os.PathLike[str]] = (),
    problems: list[ModelProblem] | None = None,
) -> list[ModelInfo]:
    """Face models in ``models/face/`` and ``extra_dirs`` (``*.safetensors``, not recursive),
    sorted by name then path. Files that are not valid face models are skipped; each one is
    logged and, when ``problems`` is given, appended to it."""
    found: list[ModelInfo] = []
    seen: set[Path] = set()
    for folder in [models_dir(), *(Path(d) for d in extra_dirs)]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.safetensors")):
            key = path.resolve()
            if key in seen or not path.is_file():
                continue
            seen.add(key)
            try:
                meta = read_face_model_meta(path)
            except FileFormatError as exc:
                log.warning("skipping %s", exc)
                if problems is not None:
                    problems.append(ModelProblem(path, exc.reason))
                continue
            found.append(
                ModelInfo(
                    path=path,
                    name=str(meta.get("name") or path.stem),
                    resolution=int(meta["resolution"]),
                    source=str(meta.get("source", "")),
                    license=str(meta.get("license", "")),
                    untrained=is_untrained(meta),
                )
            )
    found.sort(key=lambda m: (m.name.lower(), str(m.path)))
    return found

"""Resolve a project's face-model reference to a file.

References are ``"default"`` (the shipped default model), ``"library:<file name>"`` (a model in
the user's model folders) or a path relative to the project file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.model_registry import default_face_model
from studio.core.project import resolve_asset


def face_model_dirs(model_dirs: Iterable[Path]) -> list[Path]:
    return [Path(d) / "face" for d in model_dirs]


def resolve_face_model(ref: str, project_path: Path | None,
                       model_dirs: Iterable[Path]) -> Path:
    """The model file for ``ref``; StudioError saying what is missing otherwise."""
    if ref == "default":
        path = default_face_model()
        if path is None:
            raise StudioError("no default face model is installed yet; pick or import a model")
        return path
    if ref.startswith("library:"):
        name = ref[len("library:"):]
        for folder in face_model_dirs(model_dirs):
            candidate = folder / name
            if candidate.is_file():
                return candidate
        raise StudioError(f"face model {name!r} is not in any model folder")
    path = resolve_asset(project_path, ref)
    if not path.is_file():
        raise StudioError("face model file not found", path)
    return path


def reference_for(path: Path, project_path: Path | None, model_dirs: Iterable[Path]) -> str:
    """The reference to store for a chosen model file."""
    path = Path(path).resolve()
    default = default_face_model()
    if default is not None and path == default.resolve():
        return "default"
    for folder in face_model_dirs(model_dirs):
        if path.parent == folder.resolve():
            return f"library:{path.name}"
    if project_path is not None:
        try:
            return path.relative_to(project_path.parent.resolve()).as_posix()
        except ValueError:
            pass
    raise StudioError("models must live in a model folder or next to the project; "
                      "import it first (File → Import Model…)", path)

"""``import_checkpoint``: convert a checkpoint, build our networks from it and write the
face model: under a lock on the output (two imports to the same file never both say
"imported"), through a temporary file that is loaded back before it replaces anything."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

from studio.core.errors import FileFormatError, StudioError
from studio.core.files import resolve_path
from studio.core.jobs import JobContext, Progress
from studio.core.locks import output_lock
from studio.face.importers.build import build_networks
from studio.face.importers.convert import convert_checkpoint, with_path
from studio.face.importers.detect import FORMAT_NAMES, check_checkpoint_file

__all__ = ["LICENSE_NOTE", "default_output_path", "import_checkpoint"]

LICENSE_NOTE = (
    "licence unknown: the terms of the original model apply (NVIDIA's published models, "
    "for example, are for non-commercial use only)"
)


def default_output_path(path: str | Path, models_dir: str | Path | None = None) -> Path:
    """``<models_dir>/face/<stem>.safetensors``; ``models_dir`` defaults to the user's
    models folder (``studio.core.paths.user_models_dir()``)."""
    if models_dir is None:
        from studio.core.paths import user_models_dir

        models_dir = user_models_dir()
    return Path(models_dir) / "face" / f"{Path(path).stem}.safetensors"


def import_checkpoint(
    path: str | Path,
    out_path: str | Path | None = None,
    name: str | None = None,
    *,
    models_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a StyleGAN2 checkpoint into a studio face model and return its path.

    Nothing is written unless the whole checkpoint converts and loads into our networks
    (strictly: every tensor accounted for, every shape right). The output is locked while
    converting and writing: a second import to the same file gets
    :class:`~studio.core.locks.OutputInUse` at once.
    """
    src = Path(path)
    out = Path(out_path) if out_path is not None else default_output_path(src, models_dir)
    if out.suffix.lower() != ".safetensors":
        raise StudioError(f"the output file must end in .safetensors: {out}")
    check_checkpoint_file(src)  # a FIFO, /dev/zero or a symlink loop: a clear error, at once
    if out.exists() and not overwrite:
        raise StudioError(f"{out} already exists; choose another name or allow overwriting")
    if resolve_path(out) == resolve_path(src):
        raise StudioError(f"the output would replace the checkpoint itself: {out}")

    made_dir = not out.parent.exists()
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(output_lock(out, "face model"))
            except OSError as exc:
                raise StudioError(f"cannot write {out}: {exc.strerror or exc}") from None
            if out.exists() and not overwrite:  # written by someone else meanwhile
                raise StudioError(f"{out} already exists; choose another name or allow overwriting")
            return _convert_and_save(src, out, name)
    except BaseException:
        if made_dir:  # leave no empty folder behind a failed import
            with contextlib.suppress(OSError):
                out.parent.rmdir()
        raise


def _convert_and_save(src: Path, out: Path, name: str | None) -> Path:
    conv = convert_checkpoint(src)
    try:
        G, D, more = build_networks(conv)
    except FileFormatError as exc:
        raise with_path(exc, src) from None
    notes = conv.notes + more
    imported_from = {
        "file": src.name,
        "format": conv.format,
        "format_name": FORMAT_NAMES[conv.format],
        **conv.info,
    }
    source = f"imported from {src.name} ({FORMAT_NAMES[conv.format]})"

    def save(D: Any) -> Path:
        training = {"imported_from": imported_from, "notes": [*notes, LICENSE_NOTE]}
        return _save_verified(out, G, D, name=name or src.stem, source=source, training=training)

    try:
        try:
            return save(D)
        except FileFormatError as exc:
            if D is None:
                raise
            notes.append(
                f"discriminator not kept (the model file refused it: {exc.reason}); "
                "fine-tuning starts a fresh one"
            )
            return save(None)
    except FileFormatError as exc:
        raise FileFormatError(
            f"the converted model does not open ({exc.reason}); this is a bug in the "
            "importer, please report it with the file",
            src,
        ) from None


def _save_verified(out: Path, G: Any, D: Any, *, name: str, source: str, training: dict) -> Path:
    """Save next to ``out``, load it back as the studio would, then rename into place: an
    import never leaves a model file that does not open."""
    from studio.face.model_file import load_face_model, save_face_model

    tmp = out.with_name(f".{out.stem}.importing.safetensors")
    try:
        save_face_model(tmp, G, D=D, name=name, source=source, license="", training=training)
        load_face_model(tmp)
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, FileFormatError):
            raise FileFormatError(exc.reason) from None
        if isinstance(exc, OSError):
            raise StudioError(f"cannot write {out}: {exc.strerror or exc}") from None
        if isinstance(exc, Exception):  # e.g. settings save_face_model cannot store
            raise FileFormatError(f"{type(exc).__name__}: {exc}") from None
        raise
    return out


def import_checkpoint_job(ctx: JobContext, path: Path,
                          models_dir: Path) -> Generator[Progress, None, Path]:
    """:func:`import_checkpoint` into ``models_dir`` as a job (kind ``import``): what File →
    Import Model runs."""
    yield Progress(None, f"Reading {Path(path).name} (nothing in it is executed)")
    ctx.check()
    return import_checkpoint(path, models_dir=models_dir)

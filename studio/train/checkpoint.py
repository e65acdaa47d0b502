"""Resumable training checkpoints: ``torch.save`` of plain state dicts, written atomically.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only (network and
optimiser ``state_dict()``\\ s, the augmentation state, images seen, RNG states), so it
loads with ``torch.load(weights_only=True)`` (rule 5). Writing goes to a temporary file in
the run folder, is fsynced, and replaces ``checkpoint.pt``; the previous checkpoint is kept
as ``checkpoint.pt.bak`` so a crash while writing never loses both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from studio.core.atomic import atomic_write
from studio.core.errors import StudioError

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``run_dir/checkpoint.pt`` (atomic, previous one kept as .bak)."""
    path = Path(run_dir) / CHECKPOINT
    return atomic_write(path, lambda f: torch.save({"version": CHECKPOINT_VERSION, **state}, f),
                        backup=True)


def _load(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise StudioError(f"cannot read the checkpoint ({type(exc).__name__}: {exc})", path) from None
    if not isinstance(state, dict) or "images_seen" not in state:
        raise StudioError("not a training checkpoint", path)
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise StudioError("this checkpoint was written by a newer studio; update it", path)
    return state


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """The newest readable checkpoint of a run (``checkpoint.pt``, else its ``.bak``)."""
    folder = Path(run_dir)
    path = folder / CHECKPOINT
    first_error: StudioError | None = None
    for candidate in (path, folder / (CHECKPOINT + ".bak")):
        try:
            return _load(candidate)
        except FileNotFoundError:
            continue
        except StudioError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    raise StudioError("no checkpoint in this run folder", folder)


def has_checkpoint(run_dir: str | Path) -> bool:
    folder = Path(run_dir)
    return (folder / CHECKPOINT).exists() or (folder / (CHECKPOINT + ".bak")).exists()

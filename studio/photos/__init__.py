"""Photo-set ingestion: decode, detect, align (FFHQ-style), check, dedupe, report.

Public API (imported lazily so ``import studio.photos`` stays cheap)::

    ingest_job(ctx, photos_dir, out_dir, size, options) -> IngestReport   # a Job function
    ingest_photos(photos_dir, out_dir, size, options) -> IngestReport     # run it here
    IngestOptions, IngestReport, FileResult, FaceResult, Reason
    remove_from_dataset(dataset_dir, names) -> dict; load_dataset(dataset_dir) -> dict
    FaceFinder, align_face, ffhq_quad, sharpness, phash, load_photo
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ingest_job": "studio.photos.ingest",
    "ingest_photos": "studio.photos.ingest",
    "IngestOptions": "studio.photos.ingest",
    "IngestReport": "studio.photos.report",
    "FileResult": "studio.photos.report",
    "FaceResult": "studio.photos.report",
    "Reason": "studio.photos.report",
    "remove_from_dataset": "studio.photos.dataset",
    "load_dataset": "studio.photos.dataset",
    "FaceFinder": "studio.photos.faces",
    "align_face": "studio.photos.align",
    "ffhq_quad": "studio.photos.align",
    "sharpness": "studio.photos.quality",
    "phash": "studio.photos.quality",
    "load_photo": "studio.photos.decode",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'studio.photos' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

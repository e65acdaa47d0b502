"""The aligned data set on disk: PNG crops, ``dataset.json`` and ``report.json``.

Layout of a data set folder::

    DATASET_DIR/
        <name>.png ...     aligned crops, size x size RGB
        dataset.json       size, count, source, per-image landmarks (see DATASET_FORMAT)
        report.json        the fate of every input file (see studio.photos.report)

``dataset.json`` carries ``"labels": null`` so tools that read the StyleGAN folder
convention treat the folder as an unlabelled image set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import atomic_write_bytes
from studio.core.errors import StudioError
from studio.core.locks import output_lock
from studio.photos.report import REPORT_FILE, IngestReport, Reason

DATASET_FILE = "dataset.json"
DATASET_FORMAT = "studio.photos.dataset"
DATASET_VERSION = 1


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def encode_png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:  # pragma: no cover
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(rgb))


def load_dataset(dataset_dir: str | Path) -> dict[str, Any]:
    """Read ``dataset.json``; StudioError if the folder is not a data set."""
    path = Path(dataset_dir) / DATASET_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudioError("not a photo data set (no dataset.json)", Path(dataset_dir)) from None
    except (OSError, ValueError) as exc:
        raise StudioError(f"cannot read the data set description ({exc})", path) from None
    if not isinstance(data, dict) or data.get("format") != DATASET_FORMAT:
        raise StudioError("not a photo data set description written by the studio", path)
    return data


def dataset_document(
    size: int, source: str, images: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "size": size,
        "count": len(images),
        "source": source,
        "alignment": "ffhq",
        "landmarks": "dlib 68-point (iBUG 300-W), crop pixel coordinates",
        **extra,
        "labels": None,
        "images": images,
    }


def remove_from_dataset(dataset_dir: str | Path, names: Iterable[str]) -> dict[str, Any]:
    """Drop crops (file names such as ``"grace_hopper.png"``) from a data set.

    Deletes the PNG files, rewrites ``dataset.json`` and marks the faces as removed in
    ``report.json``. Unknown names raise StudioError before anything changes. Returns the
    updated ``dataset.json`` document. Refused (``OutputInUse``) while an ingest writes it.
    """
    dataset_dir = Path(dataset_dir)
    load_dataset(dataset_dir)  # not a data set: a clear error before anything else
    with output_lock(dataset_dir, "data set folder"):
        return _remove(dataset_dir, names)


def _remove(dataset_dir: Path, names: Iterable[str]) -> dict[str, Any]:
    data = load_dataset(dataset_dir)
    wanted = {Path(n).name for n in names}
    present = {img.get("file") for img in data.get("images", [])}
    unknown = sorted(wanted - present)
    if unknown:
        raise StudioError("not in the data set: " + ", ".join(unknown), dataset_dir / DATASET_FILE)
    if not wanted:
        return data
    data["images"] = [img for img in data["images"] if img.get("file") not in wanted]
    data["count"] = len(data["images"])
    atomic_write_json(dataset_dir / DATASET_FILE, data)

    report_path = dataset_dir / REPORT_FILE
    if report_path.is_file():
        try:
            report = IngestReport.load(report_path)
        except (OSError, ValueError, TypeError, KeyError):
            report = None  # a damaged report is not a reason to keep bad crops
        if report is not None:
            for fr in report.files:
                touched = False
                for face in fr.faces:
                    if face.output in wanted:
                        face.reject(Reason.REMOVED, "removed from the data set by the user")
                        touched = True
                if touched:
                    fr.finalize()
            atomic_write_json(report_path, report.to_dict())

    for name in wanted:
        (dataset_dir / name).unlink(missing_ok=True)
    return data

"""Write a folder of procedural faces with labels, as a resumable job.

Layout of the folder::

    00000000.png, 00000001.png, ...   the faces (RGB, size x size)
    synth.json                        what made them (size, seed, overrides, version)
    labels.npz                        "labels": (N, P) float32 in PARAM_NAMES order,
                                      "files": the file names, "param_names"
    labels.json                       {"param_names": [...], "vocabularies": {...},
                                       "labels": {"00000000.png": [...], ...}, ...}

Face ``i``'s parameters depend only on (seed, i, overrides), never on ``n`` or on the
batch it was rendered in, so a run can be resumed or extended: images already on disk are
skipped and the label files are rewritten (atomically) to cover every image.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import atomic_write_bytes, atomic_write_text
from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.synthetic.params import (
    PARAM_NAMES,
    SPECS,
    VOCABULARIES,
    Uniform,
    params_to_vector,
    sample_params,
)

FORMAT_VERSION = 1
CHUNK = 1024  # parameters are sampled per chunk of this many faces, seeded by (seed, chunk)
MANIFEST = "synth.json"
LABELS_EVERY_S = 30.0


def file_name(index: int) -> str:
    return f"{index:08d}.png"


def dataset_params(n: int, seed: int, overrides: Mapping[str, Any] | None = None,
                   start: int = 0) -> dict[str, np.ndarray]:
    """Parameters of faces ``start .. start + n - 1`` of the dataset with this seed."""
    overrides = dict(overrides or {})
    parts: list[dict[str, np.ndarray]] = []
    first, last = start // CHUNK, (start + n - 1) // CHUNK if n > 0 else start // CHUNK - 1
    for chunk in range(first, last + 1):
        p = sample_params(CHUNK, np.random.default_rng([int(seed), chunk]), **overrides)
        lo = max(start - chunk * CHUNK, 0)
        hi = min(start + n - chunk * CHUNK, CHUNK)
        parts.append({k: v[lo:hi] for k, v in p.items()})
    if not parts:
        return {k: np.zeros(0, dtype=np.int64 if SPECS[k].categorical else np.float64) for k in PARAM_NAMES}
    return {k: np.concatenate([q[k] for q in parts]) for k in PARAM_NAMES}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Uniform):
        return {"uniform": [value.low, value.high]}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    path = out / MANIFEST
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StudioError(f"cannot read the dataset manifest: {exc}", path) from exc
    keys = ("size", "seed", "overrides", "format_version", "param_names")
    diff = [k for k in keys if old.get(k) != manifest.get(k)]
    if diff:
        raise StudioError(
            "this folder holds faces made with other settings "
            f"({', '.join(f'{k}: {old.get(k)!r}' for k in diff)}); choose an empty folder",
            out,
        )


def _encode_png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def _write_png(path: Path, img: np.ndarray) -> None:
    """Write next to the target, then rename: a crash never leaves a half image behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(_encode_png(img))
    os.replace(tmp, path)


def write_labels(out: Path, params: Mapping[str, np.ndarray], indices: np.ndarray,
                 manifest: dict[str, Any]) -> None:
    """Write labels.npz and labels.json (atomically) for the faces ``indices``."""
    vec = params_to_vector({k: np.asarray(v)[indices] for k, v in params.items()})
    files = [file_name(int(i)) for i in indices]
    buf = io.BytesIO()
    np.savez(buf, labels=vec, files=np.asarray(files), param_names=np.asarray(PARAM_NAMES))
    atomic_write_bytes(out / "labels.npz", buf.getvalue())
    doc = {
        **manifest,
        "count": len(files),
        "vocabularies": VOCABULARIES,
        "labels": {f: [round(float(x), 6) for x in row] for f, row in zip(files, vec, strict=True)},
    }
    atomic_write_text(out / "labels.json", json.dumps(doc, separators=(",", ":")))


def synth_dataset_job(
    ctx: JobContext,
    out_dir: str | os.PathLike[str],
    n: int,
    size: int = 256,
    seed: int = 0,
    batch: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    device: str = "cpu",
    workers: int | None = None,
) -> Generator[Progress, None, Path]:
    """Job: render ``n`` labelled faces into ``out_dir`` (skipping those already there).

    ``workers``: renderer processes, each single-threaded (None: one per CPU core for CPU
    rendering of more than a few batches; 0: render in this process). Processes scale
    better than torch threads here, and keep their pace on a busy machine.
    """
    if n < 0:
        raise StudioError(f"the number of faces must be 0 or more, got {n}")
    if not 16 <= int(size) <= 2048:
        raise StudioError(f"the image size must be between 16 and 2048 pixels, got {size}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StudioError("is not a folder", out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        params = dataset_params(n, seed, overrides)
    except ValueError as exc:
        raise StudioError(str(exc)) from exc
    manifest = {
        "format_version": FORMAT_VERSION,
        "generator": "studio.synthetic",
        "size": int(size),
        "seed": int(seed),
        "overrides": {k: _jsonable(v) for k, v in sorted((overrides or {}).items())},
        "param_names": list(PARAM_NAMES),
    }
    _check_manifest(out, manifest)
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))

    todo = np.array([i for i in range(n) if not _done(out / file_name(i))], dtype=np.int64)
    done_before = n - len(todo)
    if workers is None:  # worker processes pay off once there are a few batches to share
        workers = (os.cpu_count() or 1) if device == "cpu" and len(todo) * size * size > 2**21 else 0
    if batch is None:
        # in this process a batch should take well under a second, so a cancel lands fast;
        # workers take larger ones (the job itself stays responsive while they render)
        pixels = 1 << (20 if workers > 1 else 18)
        batch = max(2, min(64, pixels // (int(size) ** 2)))
    yield Progress(done_before / n if n else 1.0, f"{done_before} of {n} faces already there")
    chunks = [todo[i : i + batch] for i in range(0, len(todo), batch)]
    workers = min(workers, len(chunks))
    written = 0
    last_labels = time.monotonic()
    try:
        for idx, imgs in _render_chunks(ctx, params, chunks, int(size), device, workers):
            for i, img in zip(idx, imgs, strict=True):
                _write_png(out / file_name(int(i)), img)
            written += len(idx)
            total = done_before + written
            if time.monotonic() - last_labels > LABELS_EVERY_S:  # labels keep up with a long run
                _write_present_labels(out, n, params, manifest)
                last_labels = time.monotonic()
            yield Progress(total / n, f"{total} of {n} faces", preview=imgs[0])
    finally:  # also when cancelled or failed: label what is on disk
        _write_present_labels(out, n, params, manifest)
    return out


def _render_worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _render_chunk(params: dict[str, np.ndarray], size: int, device: str) -> np.ndarray:
    from studio.synthetic.renderer import render_faces

    return render_faces(params, size, device=device)


def _render_chunks(ctx: JobContext, params, chunks, size: int, device: str, workers: int):
    """Yield (indices, images) per chunk, in order; in worker processes when ``workers``."""
    if workers <= 1:
        for idx in chunks:
            ctx.check()
            yield idx, _render_chunk({k: v[idx] for k, v in params.items()}, size, device)
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                  initializer=_render_worker_init)
    try:
        pending: list[tuple[np.ndarray, cf.Future]] = []
        queue = iter(chunks)
        while True:
            while len(pending) < 2 * workers:
                idx = next(queue, None)
                if idx is None:
                    break
                sub = {k: v[idx] for k, v in params.items()}
                pending.append((idx, pool.submit(_render_chunk, sub, size, device)))
            if not pending:
                return
            idx, fut = pending.pop(0)
            while not fut.done():  # stay responsive to cancel and pause
                ctx.check()
                cf.wait([fut], timeout=0.1)
            yield idx, fut.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _write_present_labels(out: Path, n: int, params, manifest) -> None:
    present = np.array([i for i in range(n) if _done(out / file_name(i))], dtype=np.int64)
    write_labels(out, params, present, manifest)


def _done(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def write_dataset(out_dir: str | os.PathLike[str], n: int, size: int = 256, seed: int = 0,
                  batch: int | None = None, overrides: Mapping[str, Any] | None = None,
                  device: str = "cpu", workers: int | None = None) -> Path:
    """Run :func:`synth_dataset_job` to the end in this thread; returns the folder."""
    gen = synth_dataset_job(JobContext(), out_dir, n, size, seed, batch, overrides, device, workers)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value

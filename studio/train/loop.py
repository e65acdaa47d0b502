"""The face-GAN training job: a run folder, the loop, checkpoints, previews and the model.

A run lives in its own folder (``runs/<timestamp>-<name>/`` or the one given)::

    config.json        the full, resolved TrainConfig
    checkpoint.pt      the latest resumable state (+ checkpoint.pt.bak, the one before)
    log.jsonl          one line of metrics per preview interval
    samples/<images>.png  preview grids at fixed seeds (latest.png: the newest)
    <name>.safetensors the model when no output path was given

Cancelling writes a checkpoint and stops; running the job again with the same run folder
(``--resume RUN_DIR``) continues with the same images-seen count and settings. A killed
process loses at most one checkpoint interval.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.atomic import atomic_write_text
from studio.core.devices import select_device
from studio.core.errors import StudioError
from studio.core.jobs import JobCancelled, JobContext, JobError, Progress
from studio.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from studio.train.config import TrainConfig
from studio.train.data import ImageFolder
from studio.train.distributed import init_distributed
from studio.train.networks import Networks, build_networks, model_resolution
from studio.train.report import image_grid, write_model_card, write_png
from studio.train.trainer import FaceTrainer

# Settings that may change when a run is resumed; everything else must match.
RESUMABLE_CHANGES = frozenset({
    "kimg", "output", "threads", "checkpoint_every", "checkpoint_minutes", "preview_every",
    "preview_minutes", "fd_every", "fd_samples", "device", "precision", "run_dir", "runs_root",
    "description", "license", "name",
})
# Settings where None means "choose automatically": a None asks for whatever the run chose.
AUTO_FIELDS = frozenset({"resolution", "channel_base", "batch_gpu", "r1_gamma", "ema_kimg",
                         "conv_clamp"})
MAX_BAD_STEPS = 20  # consecutive non-finite losses before giving up


@dataclass
class TrainResult:
    model: Path
    run_dir: Path
    images_seen: int
    metrics: dict[str, float]


# --------------------------------------------------------------------------- run folders


def new_run_dir(cfg: TrainConfig) -> Path:
    root = Path(cfg.runs_root)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", cfg.name).strip("-")[:40] or "face"
    path = root / f"{stamp}-{slug}"
    n = 2
    while path.exists():
        path = root / f"{stamp}-{slug}-{n}"
        n += 1
    return path


def resume_config(run_dir: str | Path, **changes: Any) -> TrainConfig:
    """The settings of an existing run, with ``changes`` to the fields that may change."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StudioError("no such run folder", run_dir)
    cfg = TrainConfig.load(run_dir / "config.json")
    if not has_checkpoint(run_dir):
        raise StudioError("this run has no checkpoint to resume from", run_dir)
    bad = sorted(k for k, v in changes.items() if v is not None and k not in RESUMABLE_CHANGES)
    if bad:
        raise StudioError(f"cannot change {', '.join(bad)} when resuming a run")
    values = {k: v for k, v in changes.items() if v is not None and k != "run_dir"}
    return dataclasses.replace(cfg, **values, run_dir=str(run_dir))


def _check_same_run(saved: TrainConfig, wanted: TrainConfig, run_dir: Path) -> None:
    a, b = saved.to_dict(), wanted.to_dict()
    diff = sorted(k for k in a if k not in RESUMABLE_CHANGES and a[k] != b.get(k)
                  and not (k in AUTO_FIELDS and b.get(k) is None))
    if diff:
        raise StudioError(
            "this folder holds a run with other settings (" + ", ".join(
                f"{k}: {a[k]!r} there, {b.get(k)!r} now" for k in diff[:4]
            ) + "); resume it with its own settings or choose another folder", run_dir)


# --------------------------------------------------------------------------- helpers


@torch.no_grad()
def preview_grid(G: Any, cols: int, rows: int, seed: int, max_side: int = 1024) -> np.ndarray:
    """Images of fixed seeds from ``G`` as one grid (scaled down to ``max_side``)."""
    from studio.train.metrics import sample_images

    imgs = sample_images(G, cols * rows, seed=seed, batch=cols * rows)
    grid = image_grid(imgs, cols, rows)
    scale = max(grid.shape[:2]) / max_side
    if scale > 1:
        from PIL import Image

        h, w = grid.shape[:2]
        im = Image.fromarray(grid).resize((int(w / scale), int(h / scale)), Image.Resampling.LANCZOS)
        grid = np.asarray(im)
    return grid


class _FD:
    """Fréchet distance against a fixed sample of the training images (random features)."""

    def __init__(self, folder: ImageFolder, n: int, seed: int) -> None:
        from studio.train.metrics import RandomFeatures, compute_features, real_images

        self.n = min(n, len(folder))
        self.seed = seed
        self.extractor = RandomFeatures()
        self.real = compute_features(real_images(folder, self.n, seed), self.extractor)

    def __call__(self, G: Any, with_pr: bool = False) -> dict[str, float]:
        from studio.train.metrics import (
            compute_features,
            fd_from_features,
            precision_recall,
            sample_images,
        )

        fake = compute_features(sample_images(G, self.n, seed=self.seed + 1), self.extractor)
        out = {"fd": fd_from_features(self.real, fake)}
        if with_pr and self.n > 3:
            out["precision"], out["recall"] = precision_recall(self.real, fake)
        return out


def _base_info(nets: Networks, cfg: TrainConfig) -> dict[str, Any] | None:
    if not cfg.base or nets.base_meta is None:
        return None
    meta = nets.base_meta
    return {"file": str(cfg.base), "name": meta.get("name", ""), "license": meta.get("license", ""),
            "source": meta.get("source", "")}


def _inherited_controls(nets: Networks) -> dict[str, Any]:
    out = {}
    infos = (nets.base_meta or {}).get("controls", {}) or {}
    for name, direction in nets.base_controls.items():
        info = dict(infos.get(name, {}))
        info["inherited_from"] = (nets.base_meta or {}).get("name", "base model")
        out[name] = {**info, "direction": direction}
    return out


# --------------------------------------------------------------------------- the job


def train_face_job(ctx: JobContext, config: TrainConfig) -> Generator[Progress, None, TrainResult]:
    """Job: train or fine-tune a face model (see the module docstring for the run folder).
    Resumes when ``config.run_dir`` holds a checkpoint of the same run."""
    cfg = config.validated()
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    try:
        return (yield from _train(ctx, cfg))
    finally:
        torch.set_num_threads(old_threads)


def _train(ctx: JobContext, cfg: TrainConfig) -> Generator[Progress, None, TrainResult]:
    dist = init_distributed()
    yield Progress(0.0, "reading the training images")
    resuming = bool(cfg.run_dir) and has_checkpoint(cfg.run_dir or "")
    run_dir = Path(cfg.run_dir) if cfg.run_dir else new_run_dir(cfg)
    state: dict[str, Any] | None = None
    if resuming:
        saved = TrainConfig.load(run_dir / "config.json")
        _check_same_run(saved, cfg, run_dir)
        cfg = dataclasses.replace(saved, **{k: getattr(cfg, k) for k in RESUMABLE_CHANGES})
        state = load_checkpoint(run_dir)

    folder = ImageFolder(cfg.data)
    if resuming:
        folder.resolution = int(cfg.resolution or folder.source_resolution)
    else:
        folder.resolution = model_resolution(cfg, folder.source_resolution)
    choice = select_device(cfg.device, cfg.precision)
    if cfg.conv_clamp is None and choice.precision == "fp16" and not resuming:
        cfg = dataclasses.replace(cfg, conv_clamp=256.0)
    if cfg.batch_gpu is None and dist.world > 1:  # each process takes its share of a batch
        if cfg.batch % dist.world:
            raise StudioError(f"the batch ({cfg.batch}) must be a multiple of the number of "
                              f"processes ({dist.world})")
        cfg = dataclasses.replace(cfg, batch_gpu=cfg.batch // dist.world)
    cfg = cfg.resolved(folder.resolution)
    cfg.run_dir = str(run_dir)

    nets = _networks_for(cfg, state)
    freeze_d = cfg.freeze_d
    if freeze_d and nets.new_D:
        freeze_d = 0
        note = ("the discriminator starts from scratch, so none of its blocks were frozen "
                "(freeze_d needs a trained discriminator)")
        if note not in nets.notes:
            nets.notes.append(note)
    trainer = FaceTrainer(cfg, nets, folder, choice, dist, freeze_d=freeze_d)
    if state is not None:
        trainer.load_state_dict(state["trainer"])
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", cfg.to_json())

    def checkpoint() -> None:
        if dist.main:
            save_checkpoint(run_dir, {
                "trainer": trainer.state_dict(),
                "images_seen": trainer.images_seen,
                "G_kwargs": trainer.G.init_kwargs, "D_kwargs": trainer.D.init_kwargs,
                "base_meta": json.dumps(nets.base_meta) if nets.base_meta is not None else "",
                "base_controls": {k: torch.from_numpy(np.asarray(v, np.float32))
                                  for k, v in nets.base_controls.items()},
                "notes": list(nets.notes), "new_D": nets.new_D,
            })

    total = int(round(cfg.kimg * 1000))
    cols, rows = cfg.preview_grid
    fd = _FD(folder, cfg.fd_samples, cfg.seed) if cfg.fd_samples > 1 and dist.main else None
    notes = list(nets.notes)
    if folder.skipped:
        notes.append(f"{len(folder.skipped)} file(s) in the data folder could not be used, "
                     f"e.g. {folder.skipped[0].file}: {folder.skipped[0].reason}")
    if folder.resized:
        notes.append(f"training images resized from {folder.source_resolution} px to "
                     f"{folder.resolution} px")
    what = "resuming" if resuming else ("fine-tuning" if cfg.base else "training from scratch")
    grid = preview_grid(trainer.G_ema, cols, rows, cfg.preview_seed) if dist.main else None
    yield Progress(trainer.images_seen / total, f"{what} at {cfg.resolution} px on {len(folder)} "
                   f"images ({choice.device} {choice.precision}); run folder {run_dir}",
                   preview=grid, step=trainer.images_seen)

    last_ckpt = last_preview = last_fd = trainer.images_seen
    ckpt_time = preview_time = time.monotonic()
    window: dict[str, list[float]] = {}
    metrics: dict[str, float] = {}
    bad_steps = 0
    t0, n0 = time.monotonic(), trainer.images_seen
    try:
        while trainer.images_seen < total:
            trainer.train_step(ctx.check)
            stats = trainer.take_stats()
            finite = all(math.isfinite(stats.get(k, 0.0)) for k in ("loss_G", "loss_D"))
            bad_steps = 0 if finite else bad_steps + 1
            if bad_steps >= MAX_BAD_STEPS:
                raise JobError("training diverged (the losses are not finite); resume from the "
                               "last checkpoint with a lower learning rate or a larger R1 gamma")
            for k, v in stats.items():
                window.setdefault(k, []).append(v)
            seen = trainer.images_seen
            grid = None
            now = time.monotonic()
            keep = seen - last_preview >= cfg.preview_every or seen >= total
            if dist.main and (keep or now - preview_time >= 60 * cfg.preview_minutes):
                preview_time = now
                grid = preview_grid(trainer.G_ema, cols, rows, cfg.preview_seed)
                write_png(run_dir / "samples" / "latest.png", grid)
                if keep:  # one kept grid per preview_every images; timed ones only update latest
                    last_preview = seen
                    write_png(run_dir / "samples" / f"{seen:09d}.png", grid)
                line = {"images_seen": seen, **{k: float(np.mean(v)) for k, v in window.items()}}
                window.clear()
                if fd is not None and cfg.fd_every and seen - last_fd >= cfg.fd_every:
                    last_fd = seen
                    line.update(fd(trainer.G_ema))
                    stats["fd"] = line["fd"]
                with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
                    log.write(json.dumps(line) + "\n")
            if (seen - last_ckpt >= cfg.checkpoint_every
                    or now - ckpt_time >= 60 * cfg.checkpoint_minutes):
                last_ckpt = seen
                checkpoint()
                ckpt_time = time.monotonic()
            rate = (seen - n0) / max(time.monotonic() - t0, 1e-6)
            msg = (f"{seen / 1000:.2f}/{total / 1000:g} kimg  G {stats.get('loss_G', math.nan):.3f}"
                   f"  D {stats.get('loss_D', math.nan):.3f}  p {trainer.ada.p:.2f}  {rate:.1f} img/s")
            yield Progress(min(seen / total, 1.0), msg, preview=grid, step=seen,
                           metrics={k: float(v) for k, v in stats.items() if k != "real_sign"})
    except (JobCancelled, GeneratorExit):
        checkpoint()  # stop where we are; resume continues from here
        raise

    checkpoint()
    if not dist.main:
        dist.barrier()
        return TrainResult(Path(cfg.output or ""), run_dir, trainer.images_seen, {})
    if fd is not None:
        yield Progress(1.0, "measuring the model (Fréchet distance, precision, recall)")
        metrics = fd(trainer.G_ema, with_pr=True)
    out = _write_outputs(cfg, trainer, nets, folder, run_dir, metrics, notes, choice)
    dist.barrier()
    yield Progress(1.0, f"wrote {out}", step=trainer.images_seen, metrics=metrics)
    return TrainResult(out, run_dir, trainer.images_seen, metrics)


def _networks_for(cfg: TrainConfig, state: dict[str, Any] | None) -> Networks:
    if state is None:
        return build_networks(cfg, cfg.seed)
    import copy

    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

    try:  # resume without needing the base file: the architecture is in the checkpoint
        G = Generator.from_kwargs(state["G_kwargs"])
        D = Discriminator.from_kwargs(state["D_kwargs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StudioError(f"the checkpoint's network description is invalid ({exc})") from None
    meta = json.loads(state["base_meta"]) if state.get("base_meta") else None
    controls = {k: v.numpy() for k, v in state.get("base_controls", {}).items()}
    return Networks(G, D, copy.deepcopy(G).eval().requires_grad_(False), meta, controls,
                    list(state.get("notes", [])), bool(state.get("new_D", False)))


def _write_outputs(cfg: TrainConfig, trainer: FaceTrainer, nets: Networks, folder: ImageFolder,
                   run_dir: Path, metrics: dict[str, float], notes: list[str],
                   choice: Any) -> Path:
    from studio.face.model_file import save_face_model

    out = Path(cfg.output) if cfg.output else run_dir / f"{Path(cfg.name).name or 'face'}.safetensors"
    base = _base_info(nets, cfg)
    license = cfg.license or (base or {}).get("license", "")
    training = {
        "trainer": "studio.train (StyleGAN2-ADA objective)",
        "data": {"folder": str(folder.folder), "count": len(folder),
                 "source_resolution": folder.source_resolution, "resized": folder.resized,
                 "skipped": len(folder.skipped)},
        "images_seen": trainer.images_seen,
        "kimg": trainer.images_seen / 1000,
        "base_model": base,
        "resolution": cfg.resolution,
        "metrics": metrics,
        "aug_p": trainer.ada.p,
        "precision": choice.precision,
        "device": choice.device,
        "run_dir": str(run_dir),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.to_dict(),
    }
    save_face_model(out, trainer.G_ema, D=trainer.D, name=cfg.name,
                    source="trained with Digital Human Studio" + (
                        f", fine-tuned from {base['name'] or base['file']}" if base else ""),
                    license=license, training=training, controls=_inherited_controls(nets))
    cols, rows = cfg.preview_grid
    grid = preview_grid(trainer.G_ema, max(cols, 4), max(rows, 4), cfg.preview_seed)
    grid_path = out.with_name(out.stem + ".samples.png")
    write_png(grid_path, grid)
    if nets.base_controls:
        notes = [*notes, "named controls were copied from the base model; check that they "
                 "still do what their names say"]
    write_model_card(out.with_suffix(".md"), name=cfg.name, model_file=out.name,
                     training=training, config=cfg.to_dict(), license=license, notes=notes,
                     grid_file=grid_path.name)
    atomic_write_text(run_dir / "metrics.json", json.dumps(
        {"images_seen": trainer.images_seen, **metrics}, indent=2))
    return out

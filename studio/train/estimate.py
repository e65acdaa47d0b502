"""Estimates for a training run, before it starts: memory and time.

Memory: counts the parameters of G, D and the EMA copy (built on the meta device: no
memory, no time) and adds optimiser state and the activations of one micro-batch.

Time: :func:`measure_speed` builds the networks the run would use (the base model, or new
ones at the run's resolution) and times a few real training iterations of the run's own
trainer on random images, on the configured device and precision. It is a measurement of
this machine, not a guess from a table: :func:`estimate_time` turns it into seconds for a
run length and :func:`format_duration` into words. Results are cached in the process.
:func:`measure_speed_job` is the same measurement as a job (kind ``estimate``): it reports
each iteration and stops within a network block when cancelled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, cast

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress

BYTES_PER_TRAINED_PARAM = 4 + 4 + 8  # fp32 weight, gradient, Adam's two moments
DEFAULT_KWARGS = {"resolution": 256, "channel_base": 16384, "channel_max": 512}


def _kwargs_for(base: str | Path | None) -> tuple[dict, dict | None]:
    if base is None:
        r = DEFAULT_KWARGS["resolution"]
        return ({"z_dim": 512, "w_dim": 512, "img_resolution": r, "img_channels": 3,
                 "mapping_kwargs": {"num_layers": 2},
                 "synthesis_kwargs": {"channel_base": DEFAULT_KWARGS["channel_base"],
                                      "channel_max": DEFAULT_KWARGS["channel_max"]}}, None)
    from studio.face.model_file import read_face_model_meta

    meta = read_face_model_meta(base)
    return meta["G_kwargs"], meta.get("D_kwargs")


def estimate_memory(base: str | Path | None, batch: int) -> dict[str, float]:
    import torch

    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

    g_kwargs, d_kwargs = _kwargs_for(base)
    try:
        with torch.device("meta"):
            G = Generator.from_kwargs(g_kwargs)
            d_kwargs = d_kwargs or {"c_dim": G.c_dim, "img_resolution": G.img_resolution,
                                    "img_channels": g_kwargs.get("img_channels", 3)}
            D = Discriminator.from_kwargs(d_kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise StudioError(f"cannot size this model ({exc})", base) from None
    n_g = sum(p.numel() for p in G.parameters())
    n_d = sum(p.numel() for p in D.parameters())
    res = G.img_resolution
    # activations: each block keeps a few tensors of res^2 x channels for the backward pass
    act = 0
    r = 4
    syn = g_kwargs.get("synthesis_kwargs", {})
    base_ch, max_ch = syn.get("channel_base", 32768), syn.get("channel_max", 512)
    while r <= res:
        act += r * r * min(base_ch // r, max_ch) * 4 * 12  # G and D, forward + backward
        r *= 2
    total = (n_g + n_d) * BYTES_PER_TRAINED_PARAM + n_g * 4 + act * batch
    return {"params_m": (n_g + n_d) / 1e6, "total_gb": total / 2**30,
            "resolution": float(res)}


# --------------------------------------------------------------------------- time

DEFAULT_SCRATCH_RESOLUTION = DEFAULT_KWARGS["resolution"]
SYNTHETIC_DATA = "<random images>"
# Settings that do not change how long one training iteration takes.
_NOT_SPEED = frozenset({
    "data", "output", "name", "base", "preset", "kimg", "run_dir", "runs_root", "seed",
    "checkpoint_every", "checkpoint_minutes", "preview_every", "preview_minutes",
    "preview_grid", "preview_seed", "fd_every", "fd_samples", "license", "description",
})
_speed_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_cache_lock = threading.Lock()


class _RandomImages:
    """Stands in for the ImageFolder of a run: a few random images at the model resolution,
    already in memory (the run's folder keeps decoded images in memory too)."""

    def __init__(self, count: int, resolution: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._images = rng.integers(0, 256, (count, resolution, resolution, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._images)

    def images(self, indices: Any) -> np.ndarray:
        return self._images[np.asarray(indices, dtype=np.int64)]  # a copy: callers flip it


def _run_resolution(cfg: Any) -> int:
    """The resolution the run would train at, as the training job decides it; from scratch
    without a readable data folder, the default resolution."""
    from studio.train.data import ImageFolder
    from studio.train.networks import model_resolution

    if cfg.base or cfg.resolution is not None:
        return model_resolution(cfg, 0)
    if cfg.data and cfg.data != SYNTHETIC_DATA and Path(cfg.data).is_dir():
        try:
            return model_resolution(cfg, ImageFolder(cfg.data).source_resolution)
        except StudioError:
            pass
    return DEFAULT_SCRATCH_RESOLUTION


def _cache_key(cfg: Any, device: str, precision: str, steps: int) -> tuple[Any, ...]:
    base = None
    if cfg.base:
        path = Path(cfg.base)
        try:
            base = (str(path.resolve()), path.stat().st_mtime_ns)
        except OSError as exc:
            raise StudioError(f"cannot read this model file ({exc.strerror or exc})", path) from None
    speed = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_SPEED}
    return (base, json.dumps(speed, sort_keys=True), device, precision, steps)


def clear_speed_cache() -> None:
    with _cache_lock:
        _speed_cache.clear()


def measure_speed(config: Any, steps: int = 2,
                  check: Callable[[], None] | None = None) -> dict[str, Any]:
    """Time real training iterations of the run ``config`` describes, on this machine.

    Builds the run's networks and trainer (the same code the training job uses), feeds it
    random images at the model resolution and times ``steps`` iterations after one
    warm-up iteration that is not counted. The lazy regularisation (R1, path length) runs
    only every few iterations, so one measured iteration includes it and the others do
    not, and its cost is spread over its interval. ``check`` is called often (before each
    network block) and may raise (e.g. :class:`~studio.core.jobs.JobCancelled`) to stop.

    Returns ``images_per_s``, ``s_per_kimg``, ``resolution``, ``device``, ``precision``,
    ``batch``, ``steps`` and ``cached`` (True when the answer came from an earlier
    measurement of the same model file, settings and device in this process).
    Raises StudioError for settings or a base model that cannot be used.
    """
    gen = _measure(config, steps, check or (lambda: None))
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()


def measure_speed_job(ctx: JobContext, config: Any,
                      steps: int = 2) -> Generator[Progress, None, dict[str, Any]]:
    """:func:`measure_speed` as a job: one progress event per timed iteration; a cancel
    lands before the next network block."""
    return (yield from _measure(config, steps, ctx.check))


def _measure(config: Any, steps: int,
             check: Callable[[], None]) -> Generator[Progress, None, dict[str, Any]]:
    import torch

    from studio.core.devices import select_device

    if steps < 1:
        raise ValueError("steps must be 1 or more")
    yield Progress(0.0, "Reading the settings and the base model")
    cfg = dataclasses.replace(config, data=config.data or SYNTHETIC_DATA).validated()
    choice = select_device(cfg.device, cfg.precision)
    if cfg.conv_clamp is None and choice.precision == "fp16":  # as the training job does
        cfg = dataclasses.replace(cfg, conv_clamp=256.0)
    cfg = cfg.resolved(_run_resolution(cfg))
    key = _cache_key(cfg, choice.device, choice.precision, steps)
    with _cache_lock:
        hit = _speed_cache.get(key)
    if hit is not None:
        return {**hit, "cached": True}

    cuda = choice.torch_device.type == "cuda"
    devices = [choice.torch_device.index or 0] if cuda else []
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    try:
        # Building the networks seeds torch's global generator: put it back afterwards.
        with torch.random.fork_rng(devices=devices):
            seconds = yield from _time_iterations(cfg, choice, steps, check)
    finally:
        torch.set_num_threads(old_threads)
        if cuda:
            torch.cuda.empty_cache()
    images_per_s = cfg.batch / seconds
    result = {"images_per_s": images_per_s, "s_per_kimg": 1000.0 / images_per_s,
              "resolution": int(cfg.resolution), "device": choice.device,
              "precision": choice.precision, "batch": cfg.batch, "steps": steps}
    with _cache_lock:
        _speed_cache[key] = result
    return {**result, "cached": False}


def _time_iterations(cfg: Any, choice: Any, steps: int,
                     check: Callable[[], None]) -> Generator[Progress, None, float]:
    """Seconds per training iteration (regularisation spread over its interval)."""
    import torch

    from studio.train.data import ImageFolder
    from studio.train.networks import build_networks
    from studio.train.trainer import FaceTrainer

    yield Progress(0.02, f"Building the networks ({int(cfg.resolution)} px)")
    nets = build_networks(cfg, cfg.seed)
    freeze_d = 0 if nets.new_D else cfg.freeze_d  # as the training job does
    images = _RandomImages(min(cfg.batch, 8), int(cfg.resolution), cfg.seed)
    trainer = FaceTrainer(cfg, nets, cast(ImageFolder, images), choice, freeze_d=freeze_d)
    if cfg.augment == "ada":  # p grows during a run; count the augmentation's cost too
        trainer.ada.p = max(cfg.aug_p, 0.5)
    sync = torch.cuda.synchronize if choice.torch_device.type == "cuda" else (lambda: None)

    def timed(iteration: int) -> float:
        trainer.iteration, trainer.next_phase = iteration, 0
        sync()
        t0 = time.perf_counter()
        trainer.train_step(check)
        sync()
        return time.perf_counter() - t0

    intervals = {"Greg": cfg.pl_interval, "Dreg": cfg.r1_interval}
    reg = [p for p in trainer.phases(0) if p in intervals]
    plain = next((i for i in range(1, max(intervals.values()) + 1)
                  if not any(p in intervals for p in trainer.phases(i))), None)
    simple = not reg or plain is None  # no regularisation, or regularisation every time
    # warm-up (every phase once: kernels, allocator; not counted), then the timed ones
    plan = [0] + ([plain or 0] * steps if simple else [0] + [plain] * max(1, steps - 1))
    times: list[float] = []
    for i, iteration in enumerate(plan):
        what = "warm-up iteration" if i == 0 else f"iteration {i} of {len(plan) - 1}"
        yield Progress(0.05 + 0.95 * i / len(plan), f"Timing a training {what}")
        times.append(timed(iteration))
    yield Progress(1.0, "Measured")
    if simple:
        return float(np.mean(times[1:]))
    with_reg, without = times[1], float(np.mean(times[2:]))
    every = min(intervals[p] for p in reg)  # both on: spread over the shorter (an upper bound)
    return without + max(0.0, with_reg - without) / every


def estimate_time(images_per_s: float, kimg: float) -> float:
    """Seconds to show ``kimg`` thousand images at ``images_per_s`` (inf if unknown)."""
    if not (math.isfinite(images_per_s) and images_per_s > 0):
        return math.inf
    return max(0.0, kimg) * 1000.0 / images_per_s


def format_duration(seconds: float) -> str:
    """``"about 2 h 10 min"``: a rounded duration in words."""
    if not (math.isfinite(seconds) and seconds >= 0):
        return "an unknown time"
    if round(seconds) < 60:
        return f"about {max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"about {days} d {hours} h" if hours else f"about {days} d"

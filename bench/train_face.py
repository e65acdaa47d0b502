"""Benchmark one face-GAN training step (G and D, batch 8); prints JSON.

For the scratch networks at 128 px and 256 px (channel_base 16384, channel_max 512, random
weights; ``--quick``: channel_base 4096, channel_max 128 and fewer repeats) it times ``FaceTrainer.train_step`` (Gmain + Dmain with adaptive augmentation at
p = 0.2; the lazy R1 every 16 steps is left out of the timed steps, as is path length) in:

* ``fp32``: plain fp32, contiguous tensors;
* ``fast``: what a user gets on this CPU: bf16 autocast (with AMX) and channels-last.

and reports images/s for each and their ratio. Variants run interleaved and the best of the
repeats counts, so noise from other processes hurts both alike. On a shared machine the
wall-clock numbers still swing with the load (reported as ``loadavg``), so the process CPU
time per step is reported too, and the ratio is given from both; the CPU-time ratio is the
steadier one. By default torch runs one thread: on a shared machine, every parallel op waits
at a thread barrier for a core another process holds, which made 2-thread timings 10x
slower and meaningless here; ``--threads 0`` keeps torch's default.

    python bench/train_face.py [--quick] [--device cuda] [--out result.json]

With ``--device cuda`` both variants run on the GPU (``fast``: bf16 autocast +
channels-last) and each timing waits for the GPU to finish (CPU time is then not meaningful).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.core.devices import DeviceChoice, cpu_has_fast_bf16  # noqa: E402
from studio.train.config import TrainConfig  # noqa: E402
from studio.train.data import ImageFolder  # noqa: E402
from studio.train.networks import build_networks  # noqa: E402
from studio.train.trainer import FaceTrainer  # noqa: E402

BATCH = 8


def _folder(root: Path, res: int) -> ImageFolder:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = root / f"data{res}"
    folder.mkdir()
    for i in range(BATCH):
        Image.fromarray(rng.integers(0, 255, (res, res, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return ImageFolder(folder)


def _trainer(folder: ImageFolder, res: int, precision: str, channels_last: bool,
             channels: tuple[int, int], device: str = "cpu") -> FaceTrainer:
    cfg = TrainConfig(data=str(folder.folder), resolution=res, batch=BATCH, r1_interval=16,
                      aug_p=0.2, precision=precision, channels_last=channels_last,
                      channel_base=channels[0], channel_max=channels[1],
                      device=device).resolved(res)
    nets = build_networks(cfg, seed=0)
    choice = DeviceChoice(device, precision, "benchmark")
    trainer = FaceTrainer(cfg, nets, folder, choice)
    trainer.train_step()  # iteration 0 has the R1 phase (and warms up the kernels)
    return trainer


def _time(trainer: FaceTrainer) -> tuple[float, float]:
    """(wall, process CPU) seconds for one step that has no regularisation phase."""
    while trainer.phases(trainer.iteration) != ["Gmain", "Dmain"]:
        trainer.train_step()
    _sync(trainer)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train_step()
    _sync(trainer)
    return time.perf_counter() - t0, time.process_time() - c0


def _sync(trainer: FaceTrainer) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)


def run(quick: bool, threads: int = 1, device: str = "cpu") -> dict[str, Any]:
    if threads > 0:
        torch.set_num_threads(threads)
    if device == "cpu":
        fast_precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    else:
        fast_precision = "bf16"
    resolutions = (128, 256)
    repeats = 2 if quick else 3
    channels = (4096, 128) if quick else (16384, 512)
    out: dict[str, Any] = {
        "benchmark": "face GAN training step (G+D)",
        "batch": BATCH,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "fast_path": f"{fast_precision} autocast + channels_last",
        "quick": quick,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "channel_base": channels[0],
        "channel_max": channels[1],
        "loadavg_before": [round(v, 2) for v in os.getloadavg()],
        "results": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for res in resolutions:
            folder = _folder(Path(tmp), res)
            variants = {"fp32": _trainer(folder, res, "fp32", False, channels, device),
                        "fast": _trainer(folder, res, fast_precision, True, channels, device)}
            wall = dict.fromkeys(variants, float("inf"))
            cpu = dict.fromkeys(variants, float("inf"))
            for _ in range(repeats):
                for name, trainer in variants.items():
                    w, c = _time(trainer)
                    wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
            row: dict[str, float] = {}
            for k in variants:
                row[f"{k}_images_per_s"] = round(BATCH / wall[k], 3)
                row[f"{k}_s_per_step"] = round(wall[k], 3)
                row[f"{k}_cpu_s_per_step"] = round(cpu[k], 3)
            row["ratio_fast_vs_fp32"] = round(wall["fp32"] / wall["fast"], 2)
            row["ratio_fast_vs_fp32_cpu_time"] = round(cpu["fp32"] / cpu["fast"], 2)
            out["results"][f"{res}px"] = row
            del variants
    out["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="narrower networks, fewer repeats")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; 0 = torch's default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where both variants train (default cpu)")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    text = json.dumps(run(args.quick, args.threads, args.device), indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""Refiner benchmarks; print JSON.

  python bench/refine.py train-speed [--seconds 10] [--batch 32] [--patch 64]
      training patches/s of the default refiner's UNet at several sizes (bf16 and fp32 side by
      side for the middle size), the numbers that size the default model to the CPU budget
  python bench/refine.py frame [--model M] [--frames 6] [--strength 0.5] [--steps 10]
      seconds per 256 px frame and the flicker ratio over a short clip (mean |frame t+1 -
      frame t| of the refined clip over that of the upsampled input clip): per-frame seeds
      vs one fixed seed vs fixed seed + temporal 0.5, side by side
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

SIZES = {
    "xs 16-32-64-128": (16, 32, 64, 128),
    "s 32-64-128-256": (32, 64, 128, 256),
    "m 64-128-256-256": (64, 128, 256, 256),
}


def train_speed(args: argparse.Namespace) -> dict:
    from studio.refine.base import make_scheduler
    from studio.refine.pixel import PixelRefinerSpec, build_unet, noise_pair, scheduler_config

    sched = make_scheduler("ddim", scheduler_config())
    gen = torch.Generator().manual_seed(0)
    rows = []
    runs = [(name, ch, True) for name, ch in SIZES.items()]
    runs.insert(2, ("s 32-64-128-256", SIZES["s 32-64-128-256"], False))
    for name, ch, bf16 in runs:
        unet = build_unet(PixelRefinerSpec(channels=ch)).train()
        unet = unet.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
        target = torch.rand(args.batch, 3, args.patch, args.patch) * 2 - 1
        cond = target + 0.1 * torch.randn(target.shape)
        n = 0
        t0 = None
        while True:
            inp, t, v = noise_pair(target, cond, 4.0, sched, gen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                pred = unet(inp.contiguous(memory_format=torch.channels_last), t).sample
            loss = torch.nn.functional.mse_loss(pred.float(), v)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if t0 is None:
                t0 = time.perf_counter()  # the first step warms up
                continue
            n += 1
            if time.perf_counter() - t0 >= args.seconds:
                break
        dt = time.perf_counter() - t0
        rows.append({"unet": name, "bf16": bf16,
                     "params_M": round(sum(p.numel() for p in unet.parameters()) / 1e6, 2),
                     "patches_per_s": round(n * args.batch / dt, 1), "steps": n})
    return {"bench": "refiner train-speed", "batch": args.batch, "patch": args.patch,
            "threads": torch.get_num_threads(), "rows": rows}


def _clip(frames: int) -> list[np.ndarray]:
    """A short head turn rendered by the procedural renderer at 64 px (the GAN's size)."""
    from studio.synthetic.params import sample_params
    from studio.synthetic.renderer import render_faces

    p = sample_params(1, np.random.default_rng(5))
    params = {k: np.repeat(np.asarray(v), frames, axis=0) for k, v in p.items()}
    params["head_yaw"] = np.linspace(-6, 6, frames).astype(np.asarray(p["head_yaw"]).dtype)
    return list(render_faces(params, 64))


def frame(args: argparse.Namespace) -> dict:
    from studio.core.devices import select_device
    from studio.refine.base import RefineParams
    from studio.refine.images import resize_image
    from studio.refine.locate import default_refiner_dir, load_refiner, resolve_refiner
    from studio.refine.pixel import PixelRefinerSpec, build_unet, save_pixel_refiner

    note = ""
    if args.model == "default" and default_refiner_dir() is None:
        path = Path("runs/bench-refiner-random")
        save_pixel_refiner(path, build_unet(PixelRefinerSpec()), PixelRefinerSpec())
        note = "no default refiner installed: an untrained UNet of the default size (speed only)"
    else:
        path = resolve_refiner(args.model)
    r = load_refiner(path, select_device("cpu", args.precision))
    clip = _clip(args.frames)

    def flicker(frames: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(b.astype(np.float32) - a).mean()
                              for a, b in zip(frames, frames[1:], strict=False)]))

    size = r.output_size(64, 64, RefineParams())
    base = flicker([resize_image(f, size) for f in clip])
    out = {"bench": "refiner frame", "model": str(path), "note": note,
           "precision": r.device_choice.precision, "strength": args.strength,
           "steps": args.steps, "size": list(size)}
    variants = {}
    for name, seeds, temporal in (("per-frame seeds", True, 0.0), ("fixed seed", False, 0.0),
                                  ("fixed seed + temporal 0.5", False, 0.5)):
        refined, prev, t0 = [], None, time.perf_counter()
        for i, f in enumerate(clip):
            p = RefineParams(args.strength, args.steps, seed=i if seeds else 0)
            img = r.refine(f, p)
            if temporal:
                b = resize_image(f, img.shape[:2]).astype(np.float32)
                d = img - b
                d = d if prev is None else (1 - temporal) * d + temporal * prev
                prev = d
                img = np.clip(np.round(b + d), 0, 255).astype(np.uint8)
            refined.append(img)
        variants[name] = {"s_per_frame": round((time.perf_counter() - t0) / len(clip), 3),
                          "flicker_ratio": round(flicker(refined) / max(base, 1e-9), 3)}
    out["variants"] = variants
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("train-speed")
    a.add_argument("--seconds", type=float, default=10)
    a.add_argument("--batch", type=int, default=32)
    a.add_argument("--patch", type=int, default=64)
    b = sub.add_parser("frame")
    b.add_argument("--model", default="default")
    b.add_argument("--frames", type=int, default=6)
    b.add_argument("--strength", type=float, default=0.5)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--precision", default="auto")
    args = ap.parse_args()
    print(json.dumps(train_speed(args) if args.what == "train-speed" else frame(args), indent=1))


if __name__ == "__main__":
    main()

"""Inversion benchmark: PSNR, SSIM, identity distance, attribute agreement and seconds per
image, W+ only and with pivotal tuning, side by side; plus the projection step time with
and without bf16 autocast (a ratio from the same run).

    python bench/invert.py [--steps N] [--pt-steps N] [--quick] [--threads T]

Images: held-out procedural renders (parameters from a seed no training run used),
grace_hopper.jpg (matplotlib sample data), skimage.data.astronaut() and a few
skimage.data.lfw_subset() faces. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.core.jobs import JobCancelled  # noqa: E402
from studio.core.model_registry import default_face_model  # noqa: E402
from studio.face.invert import InvertSettings, project, to_tensor  # noqa: E402
from studio.face.model_file import load_face_model  # noqa: E402
from studio.train.invert_job import (  # noqa: E402
    align_photo,
    invert_image,
    load_regressor,
)

HELD_OUT_SEED = 20_240_611  # the renderer's parameter sampler; never used for training


def photos(folder: Path, lfw: int) -> dict[str, Path]:
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    out = {"grace_hopper": Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))}
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    out["astronaut"] = folder / "astronaut.png"
    faces = data.lfw_subset()[:lfw]  # 25x25 grey crops: enlarge so the detector sees them
    for i, f in enumerate(faces):
        img = (np.clip(f, 0, 1) * 255).astype(np.uint8)
        img = np.array(Image.fromarray(img).resize((200, 200), Image.BICUBIC).convert("RGB"))
        Image.fromarray(img).save(folder / f"lfw_{i}.png")
        out[f"lfw_{i}"] = folder / f"lfw_{i}.png"
    return out


def step_time(model, target: np.ndarray, bf16: bool, steps: int) -> float:
    s = InvertSettings(steps=steps, start_seeds=0, bf16=bf16, feature_weight=0.5)
    gen = project(model.G, to_tensor(target), s, None)
    next(gen)  # the start
    next(gen)  # warm-up step
    t0 = time.perf_counter()
    n = 0
    for _ in gen:
        n += 1
    return (time.perf_counter() - t0) / max(n, 1)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    from studio.photos.identity import shared_identity_meter
    from studio.synthetic.params import sample_params
    from studio.synthetic.renderer import render_faces

    model = load_face_model(default_face_model())
    R = model.resolution
    regressor = load_regressor()
    identity = shared_identity_meter()
    settings = InvertSettings(steps=args.steps, pivotal_steps=args.pt_steps, bf16=args.bf16,
                              start_seeds=args.seeds)
    targets: dict[str, np.ndarray] = {}
    renders = render_faces(sample_params(args.renders, np.random.default_rng(HELD_OUT_SEED)), R)
    for i, img in enumerate(renders):
        targets[f"procedural_{i}"] = img
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in photos(Path(tmp), args.lfw).items():
            try:
                targets[name] = align_photo(path, R)
            except Exception as exc:  # noqa: BLE001 - reported, the bench goes on
                errors[name] = str(exc)
    result: dict = {"model": str(default_face_model()), "resolution": R,
                    "settings": {"steps": settings.steps, "pt_steps": settings.pivotal_steps,
                                 "start_seeds": settings.start_seeds, "bf16": settings.bf16},
                    "threads": args.threads, "images": {}, "not_inverted": errors}
    first = next(iter(targets.values()))
    t32 = step_time(model, first, False, args.timing_steps)
    t16 = step_time(model, first, True, args.timing_steps)
    result["step_seconds"] = {"fp32": round(t32, 4), "bf16_autocast": round(t16, 4),
                              "fp32_over_bf16": round(t32 / t16, 3)}
    for name, target in targets.items():
        gen = invert_image(None, target, model, settings, regressor, identity)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            out = stop.value
        except JobCancelled:  # pragma: no cover
            break
        result["images"][name] = out.metrics
        print(name, json.dumps({k: {m: v for m, v in d.items() if m != "attributes"}
                                for k, d in out.metrics.items()}), file=sys.stderr)
        if args.save:
            from PIL import Image

            row = [out.target, out.recon_w] + ([out.recon_tuned] if out.recon_tuned is not None
                                               else [])
            Image.fromarray(np.concatenate(row, 1)).save(Path(args.save) / f"{name}.png")
    result["summary"] = summary(result["images"])
    return result


def summary(images: dict) -> dict:
    out = {}
    for phase in ("w_plus", "pivotal"):
        rows = [m[phase] for m in images.values() if phase in m]
        if not rows:
            continue
        agg = {}
        for key in ("psnr", "ssim", "identity_distance", "seconds"):
            vals = [r[key] for r in rows if key in r]
            if vals:
                agg[key] = round(float(np.mean(vals)), 4)
        agg["attribute_agreement"] = round(float(np.mean(
            [r["attributes"]["agree"] for r in rows if "attributes" in r])), 3)
        if phase == "pivotal":
            agg["edit_consistency"] = round(float(np.mean([r["edit_consistency"]
                                                            for r in rows])), 4)
        procedural = [m[phase] for n, m in images.items()
                      if n.startswith("procedural") and phase in m]
        if procedural:
            agg["procedural_attribute_agreement"] = round(float(np.mean(
                [r["attributes"]["agree"] for r in procedural])), 3)
        out[phase] = agg
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--pt-steps", type=int, default=100)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--renders", type=int, default=3)
    p.add_argument("--lfw", type=int, default=3)
    p.add_argument("--timing-steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the inversions")
    p.add_argument("--save", help="folder for target | W+ | tuned strips")
    p.add_argument("--quick", action="store_true", help="60 + 30 steps, 2 renders, 1 lfw face")
    args = p.parse_args()
    if args.quick:
        args.steps, args.pt_steps, args.renders, args.lfw, args.seeds = 60, 30, 2, 1, 4
        args.timing_steps = 4
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()

"""``studio refine`` (refine an image with the default refiner or your Stable Diffusion 1.x)
and ``studio train refiner`` (train or fine-tune the default pixel-space refiner).

Both run the same jobs as the GUI (:func:`studio.refine.job.refine_job`,
:func:`studio.train.refiner_train.train_refiner_job`) under the progress bar; Ctrl-C cancels
(a training run writes its checkpoint first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

REFINE_EPILOG = """\
MODEL is "default" (the studio's own 4x refiner, when installed), a refiner or Stable
Diffusion 1.x diffusers folder, or a single SD 1.x .safetensors file (loaded offline with the
configs in resources/sd15/). Strength 0 returns the input resized; 1 starts from pure noise.

examples:
  studio refine face.png -o face_256.png --strength 0.5 --steps 10
  studio refine face.png -o out.png --model ~/sd/v1-5.safetensors --prompt "a portrait photo" \\
      --strength 0.35 --steps 30 --mask eyes.png
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "refine", help="refine an image with a diffusion model (default refiner or your SD 1.x)",
        description="Refine IN.png into OUT.png: the studio's pixel-space refiner (4x) or "
                    "Stable Diffusion 1.x img2img. Offline; nothing is downloaded.",
        epilog=REFINE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, metavar="IN.png")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png")
    p.add_argument("--model", default="default", metavar="M")
    p.add_argument("--strength", type=float, default=0.5, metavar="S", help="0..1 (default 0.5)")
    p.add_argument("--steps", type=int, default=20, metavar="N",
                   help="schedule length; int(N x S) steps run (default 20)")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--prompt", default="", metavar="TEXT", help="Stable Diffusion only")
    p.add_argument("--negative-prompt", default="", metavar="TEXT", help="Stable Diffusion only")
    p.add_argument("--guidance", type=float, default=5.0, metavar="G",
                   help="classifier-free guidance, Stable Diffusion only (default 5)")
    p.add_argument("--scheduler", choices=("ddim", "dpm++"), default="ddim")
    p.add_argument("--size", type=int, metavar="S",
                   help="output side in px (default: 4x the input for the default refiner, "
                        "the input's size for SD)")
    p.add_argument("--mask", type=Path, metavar="MASK.png",
                   help="refine only where the mask is white (edge feathered)")
    p.add_argument("--feather", type=float, default=8.0, metavar="PX")
    p.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]",
                   help="a LoRA .safetensors for Stable Diffusion, merged with WEIGHT "
                        "(default 1); repeatable")
    p.add_argument("--sd-config", type=Path, metavar="DIR",
                   help="configs + tokenizer for single-file SD (default resources/sd15)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="default: Preferences")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None)
    p.set_defaults(func=cmd_refine)


def register_train(tsub: Any) -> None:
    """``studio train refiner`` (called from train_cmds' ``train`` group)."""
    p = tsub.add_parser(
        "refiner", help="train or fine-tune the default pixel-space refiner",
        description="Train the default refiner on pairs the studio makes itself (the face "
                    "GAN's rendering of the parameter encoder's w for renderer parameters p "
                    "-> the renderer's crisp render of p at 4x), or fine-tune a refiner on a "
                    "folder of your images (--data). Resumable: checkpoints in the run folder; "
                    "Ctrl-C stops at a checkpoint.")
    p.add_argument("-o", "--out", default="models/refiner/default", metavar="DIR",
                   help="the refiner folder to write (default models/refiner/default)")
    p.add_argument("--run-dir", default="runs/refiner", metavar="DIR")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir (its checkpoint's settings)")
    p.add_argument("--data", metavar="DIR", help="fine-tune on a folder of images instead")
    p.add_argument("--base", metavar="DIR", help="refiner folder to start from (fine-tune)")
    p.add_argument("--face-model", default="models/face/default.safetensors")
    p.add_argument("--encoder", default="runs/encoder-fit/encoder.safetensors",
                   help="parameter encoder (encoder.safetensors or a fit's checkpoint.pt)")
    p.add_argument("--channels", default="32,64,128,256", help="UNet widths per level")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--pool-size", type=int, default=1024)
    p.add_argument("--sample-every", type=int, default=1000)
    p.add_argument("--no-bf16", action="store_true")
    p.set_defaults(func=cmd_train_refiner)


def _settings() -> Any:
    from studio.core.settings import load_settings

    settings, warning = load_settings()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return settings


def cmd_refine(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.devices import select_device
    from studio.core.jobs import Job, JobKind
    from studio.refine.base import RefineParams
    from studio.refine.images import read_image, read_mask
    from studio.refine.job import RefineRequest, refine_job

    settings = _settings()
    device = select_device(args.device or settings.device, args.precision or settings.precision)
    params = RefineParams(strength=args.strength, steps=args.steps, seed=args.seed,
                          prompt=args.prompt, negative_prompt=args.negative_prompt,
                          guidance=args.guidance, scheduler=args.scheduler, size=args.size,
                          feather=args.feather)
    image = read_image(args.input)
    mask = read_mask(args.mask, image.shape[:2]) if args.mask is not None else None
    if args.output.suffix.lower() != ".png":
        raise StudioError("the output must be a .png file", args.output)
    from studio.refine.locate import refiner_kind, resolve_refiner

    model_dirs = tuple(settings.all_model_dirs())
    if (args.prompt or args.negative_prompt) and refiner_kind(
            resolve_refiner(args.model, None, model_dirs)) != "sd":
        print("warning: this refiner takes no text; --prompt/--negative-prompt are ignored",
              file=sys.stderr)
    loras = []
    for item in args.lora:
        name, sep, weight = item.rpartition(":")
        try:
            loras.append((Path(name), float(weight)) if sep and name else (Path(item), 1.0))
        except ValueError:  # no weight; the ':' belongs to the path
            loras.append((Path(item), 1.0))
    req = RefineRequest(model=args.model, loras=tuple(loras), params=params, images=[image], mask=mask,
                        out_paths=[args.output], model_dirs=model_dirs,
                        device=device, config_dir=args.sd_config)
    out = run_job(Job(f"Refine {args.input.name}", refine_job, req, kind=JobKind.RENDER))[0]
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]}, strength {params.strength}, "
          f"{params.active_steps} steps)")
    return 0


def cmd_train_refiner(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job, JobKind
    from studio.train.checkpoint import has_checkpoint, load_checkpoint
    from studio.train.refiner_train import RefinerTrainConfig, train_refiner_job

    if args.resume:
        if not has_checkpoint(args.run_dir):
            raise StudioError("nothing to resume: no checkpoint in the run folder", args.run_dir)
        saved = load_checkpoint(args.run_dir)["config"]
        saved["channels"] = tuple(saved["channels"])
        cfg = RefinerTrainConfig(**saved)
        cfg.minutes = args.minutes if args.minutes != 60.0 else cfg.minutes
        cfg.max_steps = args.max_steps if args.max_steps is not None else cfg.max_steps
    else:
        if Path(args.run_dir, "checkpoint.pt").exists():
            raise StudioError("this run folder has a checkpoint: add --resume to continue it "
                              "or choose another --run-dir", args.run_dir)
        try:
            channels = tuple(int(c) for c in args.channels.split(","))
        except ValueError:
            raise StudioError(f"--channels {args.channels!r}: expected numbers like "
                              "32,64,128,256") from None
        cfg = RefinerTrainConfig(
            run_dir=args.run_dir, out=args.out, source="folder" if args.data else "renderer",
            data=args.data, base=args.base, face_model=args.face_model, encoder=args.encoder,
            channels=channels, minutes=args.minutes, max_steps=args.max_steps,
            batch=args.batch, patch=args.patch, lr=args.lr, pool_size=args.pool_size,
            sample_every=args.sample_every, bf16=not args.no_bf16)
    result = run_job(Job("Train refiner", train_refiner_job, cfg, kind=JobKind.TRAIN))
    for problem in result.get("problems", []):
        print(f"warning: skipped {problem}", file=sys.stderr)
    print(f"wrote {result['refiner']} ({result['steps']} steps, {result['patches_seen']} "
          f"patches, {result['minutes']} min)")
    return 0

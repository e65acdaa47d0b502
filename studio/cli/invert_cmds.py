"""``studio invert PHOTO -o PROJECT.dhproj``: an avatar from a photo (GAN inversion).

Runs the same job as File → New avatar from photo (:func:`studio.train.invert_job.
invert_photo_job`) with a progress bar; Ctrl-C cancels. Writes ``STEM_latent.npy`` (and,
with ``--pivotal-tuning``, ``STEM_face.safetensors``) next to the project, then the project.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

PROJECT_SUFFIX = ".dhproj"


def _count(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {lo} to {hi}, not {value}")
        return value
    return parse


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "invert",
        help="make an avatar from a photo (GAN inversion)",
        description="Find the face in PHOTO, align it, project it into the face model's "
                    "w+ space and write a project whose avatar is that face. With "
                    "--pivotal-tuning the model is also fine-tuned around the face and "
                    "saved as a new model file next to the project (the original is "
                    "never changed).",
    )
    p.add_argument("photo", type=Path, metavar="PHOTO")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="PROJECT.dhproj",
                   help="project to write (an existing one keeps everything but its avatar)")
    p.add_argument("--model", type=Path, help="face model (.safetensors); default: the "
                   "installed one")
    p.add_argument("--steps", type=_count(1, 100_000), default=200,
                   help="projection steps (default 200)")
    p.add_argument("--pivotal-tuning", action="store_true",
                   help="also fine-tune the generator around the found latent")
    p.add_argument("--pt-steps", type=_count(1, 100_000), default=100,
                   help="pivotal-tuning steps (default 100)")
    p.add_argument("--seeds", type=_count(0, 256), default=8,
                   help="start from the best of w_avg and this many random faces (0: w_avg)")
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast on the CPU (auto: where the CPU has fast bf16)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_invert)


def cmd_invert(args: argparse.Namespace) -> int:
    out: Path = args.output
    if out.suffix != PROJECT_SUFFIX:
        raise StudioError(f"the project must be a {PROJECT_SUFFIX} file", out)
    if not args.photo.is_file():
        raise StudioError("photo not found", args.photo)

    from studio.cli.face_cmds import _model_path
    from studio.cli.progress import run_job
    from studio.core.jobs import Job, JobKind
    from studio.face.invert import InvertSettings
    from studio.train.invert_job import bf16_default, invert_photo_job, model_reference

    model_path = _model_path(args.model)
    ref = model_reference(model_path, out)
    bf16 = bf16_default(args.device) if args.bf16 == "auto" else args.bf16 == "on"
    settings = InvertSettings(steps=args.steps, start_seeds=args.seeds, bf16=bf16,
                              pivotal_steps=args.pt_steps if args.pivotal_tuning else 0)
    job = Job(f"Invert {args.photo.name}", invert_photo_job, args.photo,
              model_path=model_path, folder=out.resolve().parent, stem=out.stem,
              model_ref=ref, settings=settings, project_path=out, device=args.device,
              kind=JobKind.INVERT)
    result = run_job(job)
    result.pop("preview", None)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"wrote {result['project']} (latent {result['latent']}, model {result['model']})")
    for phase, m in result["metrics"].items():
        line = ", ".join(f"{k} {v}" for k, v in m.items() if k != "attributes")
        agree = m.get("attributes", {}).get("agree")
        print(f"  {phase}: {line}" + (f", attributes agree {agree}" if agree is not None else ""))
    return 0

"""``studio generate``: render a face from a seed, a z vector or a w+ latent to a PNG.

It builds a :class:`~studio.face.request.FaceRequest` and renders it with the same function
as the Face panel's preview and the renderer, so a seed gives the same pixels everywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.project import DEFAULT_TRUNCATION, MAX_SEED

NOISE_MODES = ("const", "random", "none")


def _mix_layers(text: str) -> tuple[int, int]:
    try:
        a, b = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected A:B with two whole numbers (e.g. 8:14), not {text!r}"
        ) from None
    return a, b


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seeds go from 0 to {MAX_SEED}, not {value}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    return value  # the range is checked with the rest of the request


def _control(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE (e.g. smile=0.8), not {text!r}") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "generate",
        help="render a face image from a seed or a z vector",
        description="Render one face with a face model. Same arguments give the same PNG.",
    )
    p.add_argument("--model", type=Path, help="face model (.safetensors); default: the installed one")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=_seed, help=f"random seed for z (0 to {MAX_SEED})")
    src.add_argument("--z", type=Path, metavar="FILE.npy", help="z vector, shape (z_dim,) or (1, z_dim)")
    src.add_argument("--latent", type=Path, metavar="FILE.npy",
                     help="w+ latent (num_ws, w_dim) or w (w_dim,), e.g. from inversion")
    p.add_argument("--truncation", type=_finite, default=DEFAULT_TRUNCATION, metavar="PSI",
                   help="truncation psi from -1 to 2: 1 = none, 0 = the average face "
                        f"(default {DEFAULT_TRUNCATION}, as in the GUI)")
    p.add_argument("--mix-seed", type=_seed, help="style mixing: take some layers from this seed")
    p.add_argument("--mix-layers", type=_mix_layers, metavar="A:B",
                   help="w+ layers A up to B, B not included, come from --mix-seed "
                        "(default: the upper half)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    p.add_argument("--control", type=_control, action="append", default=[], metavar="NAME=V",
                   help="set a face control (repeatable), e.g. --control smile=0.8 "
                        "--control head_yaw=-0.3; `studio controls list` names them")
    p.add_argument("--size", type=int, help="output size in pixels (default: the model's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="arithmetic precision (default: bf16 where the hardware is fast at it)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png")
    p.set_defaults(func=cmd_generate)


def _load_array(path: Path) -> Any:
    from studio.face.request import load_latent

    return load_latent(path)


def _model_path(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    from studio.core.model_registry import default_face_model, default_model_path

    path = default_face_model()
    if path is None:
        raise StudioError(
            f"no default face model is installed yet ({default_model_path()} is missing); "
            "pass --model PATH.safetensors"
        )
    return path


def cmd_generate(args: argparse.Namespace) -> int:
    out: Path = args.output
    if out.suffix.lower() != ".png":
        raise StudioError("the output must be a .png file", out)
    if args.mix_layers is not None and args.mix_seed is None:
        raise StudioError("--mix-layers needs --mix-seed")

    import io

    from PIL import Image

    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import atomic_write_bytes, load_face_model
    from studio.face.request import FaceRequest, RequestError, check_request, render_request

    req = FaceRequest(
        seed=args.seed if args.seed is not None else 0,
        truncation=args.truncation, mix_seed=args.mix_seed, mix_layers=args.mix_layers,
        noise_mode=args.noise_mode, size=args.size,
        z=_load_array(args.z) if args.z is not None else None,
        latent=_load_array(args.latent) if args.latent is not None else None,
        controls=dict(args.control),
    )
    try:
        check_request(req)  # before loading the model: bad numbers fail fast
        model_path = _model_path(args.model)
        choice = select_device(args.device, args.precision)
        model = load_face_model(model_path, device=choice.torch_device)
        engine = FaceEngine(model, choice)
        model.control_set.check_values(req.controls)  # a typo or a value off the slider
        check_request(req, engine.num_ws)  # the mixing range against this model
        frame = render_request(engine, req)
    except RequestError as exc:
        if exc.field in ("z", "latent"):  # the file does not fit this model
            raise StudioError(exc.reason, args.latent or args.z) from None
        raise StudioError(f"--{exc.field.replace('_', '-')}: {exc.reason}") from None
    buf = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buf, format="PNG")
    try:
        atomic_write_bytes(out, buf.getvalue())
    except OSError as exc:
        raise StudioError(f"cannot write: {exc.strerror or exc}", out) from None
    what = (f"seed {args.seed}" if args.seed is not None
            else f"z from {args.z.name}" if args.z is not None else f"latent {args.latent.name}")
    print(f"wrote {out} ({frame.shape[1]}x{frame.shape[0]}, {what}, psi {args.truncation:g}, "
          f"{choice.device} {choice.precision})")
    return 0

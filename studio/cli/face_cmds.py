"""``studio generate``: render a face from a seed or a z vector to a PNG."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

NOISE_MODES = ("const", "random", "none")


def _mix_layers(text: str) -> tuple[int, int]:
    try:
        a, b = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected A:B with two whole numbers (e.g. 8:14), not {text!r}"
        ) from None
    return a, b


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "generate",
        help="render a face image from a seed or a z vector",
        description="Render one face with a face model. Same arguments give the same PNG.",
    )
    p.add_argument("--model", type=Path, help="face model (.safetensors); default: the installed one")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=int, help="random seed for z")
    src.add_argument("--z", type=Path, metavar="FILE.npy", help="z vector, shape (z_dim,) or (1, z_dim)")
    p.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                   help="truncation psi: 1 = none, 0 = the average face (default 1)")
    p.add_argument("--mix-seed", type=int, help="style mixing: take some layers from this seed")
    p.add_argument("--mix-layers", type=_mix_layers, metavar="A:B",
                   help="w+ layers A..B-1 come from --mix-seed (default: the upper half)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    p.add_argument("--size", type=int, help="output size in pixels (default: the model's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png")
    p.set_defaults(func=cmd_generate)


def _load_z(path: Path, z_dim: int) -> Any:
    import numpy as np

    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise StudioError("file not found", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise StudioError(f"not a NumPy .npy array ({exc})", path) from None
    if not isinstance(z, np.ndarray) or z.dtype.kind not in "fiu":
        raise StudioError("z must be a numeric array", path)
    if z.shape not in ((z_dim,), (1, z_dim)):
        raise StudioError(f"z has shape {z.shape}; this model needs ({z_dim},) or (1, {z_dim})", path)
    z = z.reshape(z_dim).astype(np.float64)
    if not np.isfinite(z).all():
        raise StudioError("z contains NaN or infinity", path)
    return z


def _model_path(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    from studio.face.registry import default_face_model, default_model_path

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
    if args.size is not None and not 8 <= args.size <= 8192:
        raise StudioError(f"--size must be between 8 and 8192, not {args.size}")
    if not math.isfinite(args.truncation):
        raise StudioError("--truncation must be a finite number")
    if args.mix_layers is not None and args.mix_seed is None:
        raise StudioError("--mix-layers needs --mix-seed")

    import io

    from PIL import Image

    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import atomic_write_bytes, load_face_model

    model_path = _model_path(args.model)
    choice = select_device(args.device)
    model = load_face_model(model_path, device=choice.torch_device)
    engine = FaceEngine(model, choice)
    src = args.seed if args.seed is not None else _load_z(args.z, engine.z_dim)
    if args.mix_layers is not None:
        a, b = args.mix_layers
        if not 0 <= a < b <= engine.num_ws:
            raise StudioError(f"--mix-layers must satisfy 0 <= A < B <= {engine.num_ws}, not {a}:{b}")
    ws = engine.ws_for(src, args.truncation, mix_seed=args.mix_seed, mix_layers=args.mix_layers)
    frame = engine.render(ws, noise_mode=args.noise_mode, size=args.size)
    buf = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buf, format="PNG")
    try:
        atomic_write_bytes(out, buf.getvalue())
    except OSError as exc:
        raise StudioError(f"cannot write: {exc.strerror or exc}", out) from None
    what = f"seed {args.seed}" if args.seed is not None else f"z from {args.z.name}"
    print(f"wrote {out} ({frame.shape[1]}x{frame.shape[0]}, {what}, psi {args.truncation:g}, "
          f"{choice.device} {choice.precision})")
    return 0

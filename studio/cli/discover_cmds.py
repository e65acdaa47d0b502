"""``studio controls discover``: find controls in any face model (registered by
:mod:`studio.cli.controls_cmds`, the ``studio controls`` command).

Expression and pose controls are fitted to labels measured from dlib's 68 landmarks on
generated faces (InterFaceGAN-style, expressions conditioned on pose so they do not turn the
head); principal directions of W (GANSpace-style ``pc1``, ``pc2``...) are added for the
artist to preview, name and keep in the Face panel. It runs the same job as the GUI
(:func:`studio.face.discover.discover_job`) and writes the controls into the model file (or
a copy with ``-o``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _layers(text: str) -> tuple[int, int]:
    try:
        a, b = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected A:B with two whole numbers (e.g. 0:4), not {text!r}") from None
    return a, b


def _count(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, not {value}")
        return value
    return parse


def register_discover(sub: Any) -> None:
    from studio.face.discover import LABELS

    d = sub.add_parser(
        "discover", help="find expression, pose and PCA controls in a face model",
        description="Measure mouth, eyes, brows and head pose with dlib's landmarks on "
                    "generated faces, fit a direction in W for each (InterFaceGAN-style, "
                    "expressions conditioned on pose), add principal directions of W "
                    "(GANSpace-style), and write them into the model file.")
    d.add_argument("--model", type=Path, help="face model (default: the installed one)")
    d.add_argument("-o", "--output", type=Path,
                   help="write the model with its controls here (default: over --model)")
    d.add_argument("--samples", type=_count(20, 100_000), default=200,
                   help="faces rendered and measured (default 200)")
    d.add_argument("--labels", default=",".join(LABELS),
                   help=f"labels to fit, comma-separated, or 'none' (default: {','.join(LABELS)})")
    d.add_argument("--pca", type=_count(0, 64), default=8, metavar="K",
                   help="principal directions to add (default 8; 0: none)")
    d.add_argument("--pca-layers", type=_layers, metavar="A:B",
                   help="apply the principal directions to w layers A up to B, B not "
                        "included (default: all)")
    d.add_argument("--min-quality", type=float, default=0.3, metavar="R",
                   help="keep a fitted control when its held-out correlation is at least R "
                        "(default 0.3)")
    d.add_argument("--seed", type=_count(0, 2**32 - 1), default=0)
    d.add_argument("--replace", action="store_true",
                   help="replace controls the model already has with the same names")
    d.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    d.set_defaults(func=cmd_discover)


def cmd_discover(args: argparse.Namespace) -> int:
    import math

    from studio.cli.face_cmds import _model_path
    from studio.cli.progress import run_job
    from studio.core.devices import select_device
    from studio.core.errors import StudioError
    from studio.core.jobs import Job, JobKind
    from studio.core.locks import output_lock
    from studio.face.controls import save_controls
    from studio.face.discover import LABELS, DiscoverOptions, discover_job, merged_controls
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model

    labels = () if args.labels.strip().lower() == "none" else tuple(
        n.strip() for n in args.labels.split(",") if n.strip())
    unknown = [n for n in labels if n not in LABELS]
    if unknown:
        raise StudioError(f"--labels: unknown label {unknown[0]!r}; known: {', '.join(LABELS)}")
    if not math.isfinite(args.min_quality) or not -1 <= args.min_quality <= 1:
        raise StudioError(f"--min-quality must be from -1 to 1, not {args.min_quality}")
    path = _model_path(args.model)
    out = args.output or path
    if out.suffix.lower() != ".safetensors":
        raise StudioError("the output must be a .safetensors file", out)
    choice = select_device(args.device, "fp32")
    model = load_face_model(path, device=choice.torch_device)
    engine = FaceEngine(model, choice)
    if args.pca_layers is not None:
        a, b = args.pca_layers
        if not 0 <= a < b <= engine.num_ws:
            raise StudioError(f"--pca-layers {a}:{b} do not fit this model: it has "
                              f"{engine.num_ws} w layers (0 <= A < B <= {engine.num_ws})")
    opts = DiscoverOptions(samples=args.samples, pca_components=args.pca,
                           pca_layers=args.pca_layers, labels=labels, seed=args.seed,
                           min_quality=args.min_quality)
    measurer = None
    if labels:
        from studio.train.face_labels import LandmarkMeasurer

        measurer = LandmarkMeasurer()  # loads dlib's landmark model (about a second)
    job = Job(f"discover controls in {path.name}", discover_job, engine, opts, measurer,
              kind=JobKind.MEASURE)
    result = run_job(job)
    controls, added, kept = merged_controls(model.control_set, result.controls, args.replace)
    with output_lock(out, "face model"):
        save_controls(model, controls, out)
    if result.measured:
        print(f"measured {result.measured} faces ({result.detected} found by the detector, "
              "the rest measured in the aligned-face box)")
    by_name = {c.name: c for c in result.controls}
    for name in added:
        c = by_name[name]
        quality = f", held-out correlation {c.quality:.2f}" if math.isfinite(c.quality) else ""
        print(f"  + {name:<12} {c.group:<10} {c.description}{quality}")
    for name in kept:
        print(f"  = {name:<12} already in the model (kept; --replace replaces it)")
    for name, why in result.skipped.items():
        print(f"  - {name:<12} not added: {why}")
    print(f"wrote {len(added)} controls to {out} ({len(controls)} in all)")
    return 0

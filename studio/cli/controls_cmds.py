"""``studio controls``: list, measure and build a face model's controls.

* ``studio controls list [--model M]``: the controls, by group, with kind and range.
* ``studio controls evaluate [--model M] [--control NAME]...``: sweep each control over its
  range on a dozen faces and print how strongly its measured attribute follows the slider
  (correlation), how much the other attributes drift (entanglement), how much identity
  drifts, and how even the sweep is (``--json`` for the figures).
* ``studio controls build-default --encoder FILE``: ship the parameter encoder in the
  default model, define its controls, measure both kinds, keep the better one and write the
  table into the model card (re-run it after every encoder fit).
* ``studio controls discover [--model M]``: find controls in any model's W space
  (landmark-measured supervised fits, PCA; :mod:`studio.face.discover`) and store them in
  the model file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from studio.cli.discover_cmds import register_discover
from studio.cli.face_cmds import _model_path


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("controls", help="list, measure and build face controls",
                              description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = p.add_subparsers(dest="controls_command", metavar="ACTION", required=True)

    a = sub.add_parser("list", help="the face model's controls by group")
    a.add_argument("--model", type=Path, help="face model (default: the installed one)")
    a.set_defaults(func=cmd_list)

    e = sub.add_parser("evaluate", help="measure how well each control does its job")
    e.add_argument("--model", type=Path, help="face model (default: the installed one)")
    e.add_argument("--control", action="append", default=[], metavar="NAME",
                   help="measure only this control (repeatable)")
    e.add_argument("--meter", type=Path, help="control meter (default: the shipped one)")
    e.add_argument("--faces", type=int, default=12, help="faces per sweep (default 12)")
    e.add_argument("--steps", type=int, default=13, help="slider steps per sweep (default 13)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.add_argument("--threads", type=int, help="CPU threads for torch (on a busy CPU, 1 is "
                   "often fastest; the last digit of a figure may differ)")
    e.set_defaults(func=cmd_evaluate)

    register_discover(sub)  # studio/cli/discover_cmds.py

    b = sub.add_parser("build-default",
                       help="put the encoder and the measured controls into the default model")
    b.add_argument("--encoder", type=Path, required=True,
                   help="encoder.safetensors (or a fit's checkpoint.pt)")
    b.add_argument("--model", type=Path, default=Path("models/face/default.safetensors"))
    b.add_argument("-o", "--output", type=Path, help="write here (default: over --model)")
    b.add_argument("--card", type=Path, default=Path("models/face/default.md"),
                   help="model card whose controls table is rewritten")
    b.add_argument("--meter", type=Path, help="control meter (default: the shipped one)")
    b.add_argument("--faces", type=int, default=12)
    b.add_argument("--steps", type=int, default=13)
    b.add_argument("--threads", type=int, help="CPU threads for torch")
    b.set_defaults(func=cmd_build_default)


def _check_counts(args: argparse.Namespace) -> None:
    from studio.core.errors import StudioError

    if not 2 <= args.faces <= 1000:
        raise StudioError(f"--faces must be from 2 to 1000, not {args.faces}")
    if not 3 <= args.steps <= 200:
        raise StudioError(f"--steps must be from 3 to 200, not {args.steps}")
    if args.threads is not None:
        if not 1 <= args.threads <= 256:
            raise StudioError(f"--threads must be from 1 to 256, not {args.threads}")
        import torch

        torch.set_num_threads(args.threads)


def cmd_list(args: argparse.Namespace) -> int:
    from studio.face.model_file import load_face_model

    model = load_face_model(_model_path(args.model))
    if not len(model.control_set):
        print("this model has no controls")
        return 0
    for group, items in model.control_set.by_group().items():
        if not items:
            continue
        print(group)
        for c in items:
            corr = c.measured.get("correlation")
            fig = f"  correlation {corr:+.2f}" if isinstance(corr, int | float) else ""
            print(f"  {c.name:<14} {c.kind:<10} {c.low:g}..{c.high:g} (neutral {c.neutral:g})"
                  f"  {c.title}{fig}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job, JobKind
    from studio.train.controls_eval import evaluate_job, table_markdown

    _check_counts(args)
    model = _model_path(args.model)
    result = run_job(Job("evaluate controls", evaluate_job, str(model),
                         str(args.meter) if args.meter else None, args.control or None,
                         args.faces, args.steps, kind=JobKind.MEASURE))
    if result is None:
        return 130
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        from studio.face.model_file import load_face_model

        print(table_markdown(result, load_face_model(model).control_set))
    return 0


def cmd_build_default(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.train.controls_fit import build_default_job

    _check_counts(args)
    result = run_job(Job("build default controls", build_default_job, str(args.encoder),
                         str(args.model), str(args.output) if args.output else None,
                         str(args.card) if args.card else None,
                         str(args.meter) if args.meter else None, args.faces, args.steps))
    if result is None:
        return 130
    print(result["markdown"])
    print(f"wrote {result['model']}" + (f" and {args.card}" if args.card else ""))
    return 0

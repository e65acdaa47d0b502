"""``studio synth-faces``: render a folder of labelled procedural faces (the default GAN data)."""

from __future__ import annotations

import argparse
from typing import Any

from studio.core.errors import StudioError

EPILOG = """\
--set NAME=VALUE fixes a parameter for every face; repeat it for several. VALUE is a number,
a category name or index (hair_color=red, glasses=1), a comma list to pick from per face
(glasses=round,square) or a range LOW:HIGH sampled uniformly (head_yaw=-10:10).
--list-params prints the parameters and their categories.

example: studio synth-faces -n 5000 --size 256 -o data/faces --set hair_color=red --set glasses=1
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "synth-faces",
        help="render labelled procedural faces (training data for the face GAN)",
        description="Render stylised, labelled procedural faces into a folder of PNGs plus "
        "labels.json / labels.npz. Resumable: images already in the folder are skipped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-n", "--count", type=int, help="number of faces")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("-o", "--out", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="fix or restrict a parameter (repeatable)")
    p.add_argument("--batch", type=int, default=None, help="faces rendered at once")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--workers", type=int, default=None,
                   help="renderer processes (default: one per CPU core; 0: none)")
    p.add_argument("--list-params", action="store_true", help="list the parameters and exit")
    p.set_defaults(func=run_synth_faces)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["hair_color=red", "glasses=round,square", "head_yaw=-10:10"]`` -> overrides."""
    from studio.synthetic.params import SPECS, Uniform

    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise StudioError(f"--set {item!r}: expected NAME=VALUE")
        if name not in SPECS:
            raise StudioError(f"--set {item!r}: unknown parameter {name!r} (see --list-params)")
        spec = SPECS[name]
        try:
            if "," in value:
                parts = [v.strip() for v in value.split(",") if v.strip()]
                out[name] = parts if spec.categorical else [float(v) for v in parts]
            elif ":" in value[1:]:
                cut = value.index(":", 1)
                lo, hi = value[:cut], value[cut + 1 :]
                out[name] = Uniform(lo, hi) if spec.categorical else Uniform(float(lo), float(hi))
            else:
                out[name] = value if spec.categorical else float(value)
        except ValueError:
            raise StudioError(f"--set {item!r}: {value!r} is not a number") from None
    # validate now, so a typo fails before any work starts
    import numpy as np

    from studio.synthetic.params import sample_params

    try:
        sample_params(1, np.random.default_rng(0), **out)
    except ValueError as exc:
        raise StudioError(f"--set: {exc}") from None
    return out


def _list_params() -> None:
    from studio.synthetic.params import PARAM_SPECS

    for s in PARAM_SPECS:
        if s.categorical:
            values = ", ".join(f"{i}={c}" for i, c in enumerate(s.choices))
            print(f"{s.name:16s} {s.group:10s} {values}")
        else:
            print(f"{s.name:16s} {s.group:10s} {s.low:g} .. {s.high:g}  {s.doc}")


def run_synth_faces(args: argparse.Namespace) -> int:
    if args.list_params:
        _list_params()
        return 0
    if args.count is None or args.out is None:
        raise StudioError("synth-faces needs -n COUNT and -o FOLDER")
    overrides = parse_sets(args.sets)

    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.synthetic.dataset import synth_dataset_job

    job = Job("synth-faces", synth_dataset_job, args.out, args.count, args.size, args.seed,
              args.batch, overrides, args.device, args.workers)
    out = run_job(job)
    print(f"wrote {args.count} faces to {out}")
    return 0

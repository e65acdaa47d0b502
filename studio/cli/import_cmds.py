"""`studio import`: turn a StyleGAN2 checkpoint (NVIDIA .pkl, rosinality .pt) into a face
model; `--inspect` only describes what the file holds."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import a StyleGAN2 checkpoint (NVIDIA .pkl or rosinality .pt) as a face model",
        description=(
            "Convert a StyleGAN2 checkpoint into a studio face model (.safetensors). NVIDIA "
            "pickles are read without running any code from them. By default the model goes "
            "to the face folder of your models directory, named after the file."
        ),
    )
    p.add_argument("file", help="the checkpoint: an NVIDIA .pkl or a rosinality .pt")
    p.add_argument("-o", "--output", metavar="OUT.safetensors", help="where to write the model")
    p.add_argument("--name", help="the model's display name (default: the file's name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument(
        "--inspect", action="store_true", help="only describe the checkpoint; write nothing"
    )
    p.add_argument("--json", action="store_true", help="with --inspect: print JSON")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from studio.face.importers import import_checkpoint, inspect_checkpoint

    if args.inspect:
        report = inspect_checkpoint(args.file)
        if args.json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            print(format_report(report))
        return 0 if report["supported"] else 1
    from pathlib import Path

    from studio.core.errors import StudioError
    from studio.face.importers import default_output_path

    target = Path(args.output) if args.output else default_output_path(args.file)
    if target.exists() and not args.force:
        raise StudioError(f"{target} already exists; pass --force to replace it or -o to choose another file")
    out = import_checkpoint(args.file, target, args.name, overwrite=args.force)
    print(f"imported {args.file} -> {out}")
    return 0


def format_report(report: dict) -> str:
    lines = [f"{report['path']}: {report['format_name']}"]
    if report["networks"]:
        lines.append(f"  networks: {', '.join(report['networks'])}")
    g = report.get("generator") or {}
    if "img_resolution" in g:
        lines.append(
            f"  generator: {g['img_resolution']}x{g['img_resolution']}, z {g['z_dim']}, "
            f"w {g['w_dim']}, labels {g['c_dim']}, {g['mapping_layers']} mapping layers, "
            f"{g['num_params']:,} parameters"
        )
    lines.append(
        "  discriminator: " + ("present" if report["discriminator"]["present"] else "none")
    )
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    if report["supported"]:
        lines.append("  can be imported")
    else:
        lines.append(f"  cannot be imported: {report['problem']}")
    return "\n".join(lines)

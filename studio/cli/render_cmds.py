"""``studio render`` (frames and sound to MP4 / PNG sequence / WAV) and ``studio
export-curves`` (the animation as CSV or JSON).

``studio render`` runs the same job as File → Render (:func:`studio.render.job.render_job`)
under the progress bar; Ctrl-C cancels it and leaves nothing under the output names.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError


def _range(text: str) -> tuple[float, float]:
    try:
        a, b = (float(part) if part else math.nan for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected A:B in seconds (e.g. 1.5:4), not {text!r}") from None
    return a, b


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "render", help="render a project to MP4 (H.264 + AAC), PNG frames and/or WAV",
        description="Render the project's timeline: frames in batches on the device, the "
                    "speech and audio clips mixed in sync. Writes to temp names and renames "
                    "at the end; Ctrl-C cancels and leaves no partial file.")
    p.add_argument("project", type=Path, metavar="PROJECT.dhproj")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.mp4", help="the video")
    p.add_argument("--range", type=_range, metavar="A:B",
                   help="render from A to B seconds (default: the whole timeline)")
    p.add_argument("--fps", type=int, metavar="F", help="frame rate (default: the timeline's)")
    p.add_argument("--size", type=int, metavar="S",
                   help="frame size in pixels (default: the face model's)")
    p.add_argument("--png-dir", type=Path, metavar="DIR", help="also write frame_000001.png...")
    p.add_argument("--wav", type=Path, metavar="OUT.wav", help="also write the mixed audio")
    p.add_argument("--batch", type=int, metavar="N", help="frames per engine call")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    p.set_defaults(func=cmd_render)

    e = subparsers.add_parser(
        "export-curves", help="export the timeline's animation curves as CSV or JSON",
        description="Sample every playing channel at the frame rate and write CSV (one "
                    "column per channel, ARKit blendshape names where a channel maps to "
                    "them) or JSON (per channel: values, ARKit names, keys).")
    e.add_argument("project", type=Path, metavar="PROJECT.dhproj")
    e.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.csv|OUT.json")
    e.add_argument("--range", type=_range, metavar="A:B")
    e.add_argument("--fps", type=int, metavar="F")
    e.set_defaults(func=cmd_export_curves)


def _settings_dirs() -> list[Path]:
    from studio.core.settings import load_settings

    settings, warning = load_settings()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return list(settings.all_model_dirs())


def cmd_render(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.devices import select_device
    from studio.core.jobs import Job, JobKind
    from studio.core.project import load_project
    from studio.render.audio import missing_audio
    from studio.render.job import RenderSpec, frame_times, render_job

    if args.output is None and args.png_dir is None and args.wav is None:
        raise StudioError("say what to write: -o OUT.mp4, --png-dir DIR and/or --wav OUT.wav")
    if args.size is not None and not 8 <= args.size <= 8192:
        raise StudioError(f"--size must be 8 to 8192 pixels, not {args.size}")
    if args.batch is not None and not 1 <= args.batch <= 256:
        raise StudioError(f"--batch must be 1 to 256, not {args.batch}")
    project = load_project(args.project)
    for warning in missing_audio(project, args.project):
        print(f"warning: {warning}", file=sys.stderr)
    spec = RenderSpec(project, args.project, output=args.output, png_dir=args.png_dir,
                      wav=args.wav, range=args.range, fps=args.fps, size=args.size,
                      batch=args.batch, model_dirs=_settings_dirs(),
                      device=select_device(args.device, args.precision))
    frame_times(spec)  # a bad range or fps fails before the model loads
    result = run_job(Job(f"Render {args.project.name}", render_job, spec,
                         kind=JobKind.RENDER))
    for warning in result.warnings:
        if "not found" not in warning:  # missing files were reported above
            print(f"warning: {warning}", file=sys.stderr)
    written = ", ".join(str(p) for p in result.outputs)
    print(f"wrote {written} ({result.frames} frames, {result.size}x{result.size}, "
          f"{result.fps} fps, {result.seconds:.2f} s, in {result.elapsed:.1f} s)")
    return 0


def cmd_export_curves(args: argparse.Namespace) -> int:
    from studio.core.project import load_project
    from studio.render.export import export_curves

    project = load_project(args.project)
    out = export_curves(project, args.output, args.range, args.fps)
    print(f"wrote {out}")
    return 0

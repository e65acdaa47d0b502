"""``studio ingest``: turn a folder of photos into an aligned face data set."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="align a folder of photos into a face data set for training",
        description=(
            "Read every photo in PHOTOS_DIR (JPEG, PNG, WebP, BMP, TIFF; EXIF orientation "
            "applied), find faces, align and crop them FFHQ-style to SIZE x SIZE PNGs in "
            "DATASET_DIR with dataset.json, and write report.json listing the fate of every "
            "file. Photos that cannot be used are skipped with a reason."
        ),
    )
    p.add_argument(
        "photos_dir", metavar="PHOTOS_DIR", type=Path, help="folder of photos (read recursively)"
    )
    p.add_argument(
        "-o",
        "--output",
        dest="dataset_dir",
        metavar="DATASET_DIR",
        type=Path,
        required=True,
        help="data set folder to create (a previous data set there is replaced)",
    )
    p.add_argument(
        "--size",
        type=int,
        required=True,
        metavar="S",
        help="crop size in pixels: the face model's resolution (power of two, e.g. 256)",
    )
    p.add_argument(
        "--all-faces",
        action="store_true",
        help="keep every face in a photo (default: only the largest)",
    )
    p.add_argument(
        "--min-face",
        type=int,
        default=None,
        metavar="PX",
        help="smallest usable face: side of the face's crop square in the photo, in "
        "pixels (default: half of S, i.e. at most 2x enlargement)",
    )
    p.add_argument(
        "--blur-threshold",
        type=float,
        default=None,
        metavar="T",
        help="reject faces whose sharpness (variance of the Laplacian of the face "
        "centre, in 256 px units) is below T (default 30; 0 keeps all)",
    )
    p.add_argument(
        "--keep-duplicates", action="store_true", help="do not drop near-duplicate photos"
    )
    p.add_argument("--no-recursive", action="store_true", help="do not read sub-folders")
    p.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of a summary"
    )
    p.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.errors import StudioError
    from studio.core.jobs import Job
    from studio.photos.ingest import DEFAULT_BLUR_THRESHOLD, IngestOptions, ingest_job

    if not args.photos_dir.is_dir():
        what = "does not exist" if not args.photos_dir.exists() else "is not a folder"
        raise StudioError(f"the photos folder {what}", args.photos_dir)
    # The decoder enforces its own pixel cap and reports oversized photos as rejections;
    # Pillow's warning about them would only clutter the terminal.
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    # Pillow's notes about damaged EXIF/TIFF tags: the report says what matters per file.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    options = IngestOptions(
        all_faces=args.all_faces,
        min_face=args.min_face,
        blur_threshold=DEFAULT_BLUR_THRESHOLD
        if args.blur_threshold is None
        else args.blur_threshold,
        dedupe=not args.keep_duplicates,
        recursive=not args.no_recursive,
    )
    report = run_job(
        Job("ingest", ingest_job, args.photos_dir, args.dataset_dir, args.size, options)
    )
    if args.json:
        print(report.to_json())
    else:
        print(report.summary())
        print(f"Report: {Path(report.dataset_dir) / 'report.json'}")
    return 0 if report.outputs else 1

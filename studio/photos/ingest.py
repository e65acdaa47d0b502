"""Photo-set ingestion as a job: decode, detect, align, check, dedupe, write, report.

``ingest_job(ctx, photos_dir, out_dir, size, options)`` is a generator for
:class:`studio.core.jobs.Job`: it yields :class:`Progress` per photo (with the last crop as
preview), honours cancellation between photos, and returns an :class:`IngestReport`. A bad
photo never stops the job: it is listed in the report with a reason code and a message.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.jobs import JobCancelled, JobContext, JobError, Progress
from studio.core.locks import output_lock
from studio.photos.align import AlignedFace, align_face, ffhq_quad
from studio.photos.dataset import (
    DATASET_FILE,
    atomic_write_json,
    dataset_document,
    load_dataset,
    write_png,
)
from studio.photos.decode import DEFAULT_MAX_PIXELS, Photo, load_photo
from studio.photos.faces import FaceFinder, shared_finder
from studio.photos.quality import hamming, phash, sharpness
from studio.photos.report import (
    REPORT_FILE,
    FaceResult,
    FileResult,
    IngestReport,
    Reason,
    Rejected,
)

MIN_SIZE, MAX_SIZE = 16, 4096
DEFAULT_BLUR_THRESHOLD = 30.0
# A later duplicate replaces the kept copy only when clearly better: a face region this much
# larger (and not clearly blurrier), or this much sharper. Re-encoding alone raises the
# sharpness measure a little (compression artefacts), so a small margin would pick noise.
LARGER_BY = 1.1
SHARPER_BY = 1.5


@dataclass
class IngestOptions:
    all_faces: bool = False  # keep every face, not only the largest
    min_face: int | None = None  # smallest face region (crop side in the photo); None: size/2
    blur_threshold: float = DEFAULT_BLUR_THRESHOLD  # see studio.photos.quality.sharpness
    dedupe: bool = True
    duplicate_distance: int = 6  # whole-photo hash: bits of 64 that may differ
    crop_duplicate_distance: int = 4  # aligned-crop hash: bits of 64 that may differ
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard
    recursive: bool = True  # also read sub-folders

    def resolved_min_face(self, size: int) -> int:
        return int(self.min_face) if self.min_face is not None else max(size // 2, 1)


@dataclass
class _Candidate:
    """A face that passed the per-photo checks and waits for the duplicate check."""

    file: FileResult
    face: FaceResult
    aligned: AlignedFace
    landmarks: np.ndarray  # source coordinates
    sharpness: float
    photo_hash: int
    crop_hash: int
    centre: tuple[float, float]  # face centre relative to the photo size
    rel_size: float  # face size relative to the photo's long side
    entry: dict[str, Any] = field(default_factory=dict)


def validate_size(size: int) -> int:
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise JobError(f"invalid size {size!r}: give the model resolution, e.g. 256") from None
    if size < MIN_SIZE or size > MAX_SIZE or size & (size - 1):
        raise JobError(
            f"invalid size {size}: the data set size must be a power of two from "
            f"{MIN_SIZE} to {MAX_SIZE} (the face model's resolution, e.g. 256 or 1024)"
        )
    return size


def list_photos(
    photos_dir: Path, *, recursive: bool = True, exclude: Path | None = None
) -> list[Path]:
    """Every visible regular file under ``photos_dir``, sorted; hidden files are skipped."""
    found: list[Path] = []
    pending = [photos_dir]
    seen: set[Path] = set()
    while pending:
        folder = pending.pop()
        try:
            real = folder.resolve()
            if real in seen:  # a symlink loop or a folder linked twice
                continue
            seen.add(real)
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    if recursive and (exclude is None or entry.resolve() != exclude):
                        pending.append(entry)
                elif entry.is_file():
                    found.append(entry)
            except OSError:
                continue
    return sorted(found, key=lambda p: p.relative_to(photos_dir).as_posix().lower())


def _create_output(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise JobError("the output path exists and is not a folder", out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(
            f"cannot create the output folder ({exc.strerror or exc})", out_dir
        ) from None


def _prepare_output(out_dir: Path) -> None:
    """Clear a previous data set in ``out_dir`` (held locked); refuse other folders."""
    if any(out_dir.iterdir()):
        if not (out_dir / DATASET_FILE).is_file():
            raise JobError(
                "the output folder is not empty and is not a photo data set; "
                "choose a new or empty folder",
                out_dir,
            )
        load_dataset(out_dir)  # raises StudioError when it is not ours
        # A previous data set: ingest replaces it (its crops, reports and temp files).
        for entry in out_dir.iterdir():
            if entry.is_file() and (
                entry.suffix.lower() == ".png"
                or entry.name in (DATASET_FILE, REPORT_FILE)
                or entry.name.endswith(".tmp")
            ):
                entry.unlink(missing_ok=True)


def _safe_stem(rel: str) -> str:
    stem = rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel
    stem = stem.replace("/", "-")
    stem = re.sub(r"[^\w.-]+", "_", stem).strip("._-") or "photo"
    return stem[:100]


class _Ingest:
    """The state of one ingest run."""

    def __init__(
        self, photos_dir: Path, out_dir: Path, size: int, options: IngestOptions, finder: FaceFinder
    ) -> None:
        self.photos_dir = photos_dir
        self.out_dir = out_dir
        self.size = size
        self.opts = options
        self.min_face = options.resolved_min_face(size)
        self.finder = finder
        self.kept: list[_Candidate] = []
        self.used_names: set[str] = set()

    # -- one photo --
    def analyse(self, path: Path, rel: str) -> tuple[FileResult, list[_Candidate]]:
        fr = FileResult(source=rel)
        try:
            photo = load_photo(path, self.opts.max_pixels)
        except Rejected as rej:
            fr.reject(rej.reason, rej.message)
            return fr, []
        fr.width, fr.height = photo.width, photo.height
        fr.notes.extend(photo.notes)
        return fr, self._faces(photo, fr)

    def _faces(self, photo: Photo, fr: FileResult) -> list[_Candidate]:
        rgb = photo.rgb
        w, h = photo.width, photo.height
        found = []
        for face in self.finder.find(rgb, self.min_face):
            try:
                found.append((face, ffhq_quad(face.landmarks)))
            except ValueError:
                continue  # degenerate landmarks: not a usable face
        if not found:
            if max(w, h) < self.min_face:
                fr.reject(
                    Reason.IMAGE_TOO_SMALL,
                    f"no face found, and the image ({w}x{h}) is smaller than the smallest "
                    f"usable face ({self.min_face} px for {self.size} px crops)",
                )
            else:
                fr.reject(Reason.NO_FACE, "no face found (faces must be upright and frontal)")
            return []
        found.sort(key=lambda fq: fq[1].size, reverse=True)
        photo_hash = phash(rgb, 8)
        candidates = []
        for idx, (face, quad) in enumerate(found):
            fres = FaceResult(
                index=idx,
                box=[round(float(v), 1) for v in face.box],
                score=round(face.score, 3),
                face_size=round(quad.size, 1),
            )
            fr.faces.append(fres)
            if idx > 0 and not self.opts.all_faces:
                fres.reject(
                    Reason.EXTRA_FACE,
                    f"a smaller face ({quad.size:.0f} px); only the largest is kept "
                    "(use --all-faces to keep every face)",
                )
                continue
            if quad.size < self.min_face:
                fres.reject(
                    Reason.FACE_TOO_SMALL,
                    f"the face is {quad.size:.0f} px across in the photo; {self.size} px crops "
                    f"need at least {self.min_face} px (it would be enlarged "
                    f"{self.size / quad.size:.1f}x)",
                )
                continue
            aligned = align_face(rgb, face.landmarks, self.size)
            sharp = sharpness(aligned.image)
            fres.sharpness = round(sharp, 2)
            if sharp < self.opts.blur_threshold:
                fres.reject(
                    Reason.TOO_BLURRY,
                    f"the face is too blurry (sharpness {sharp:.1f}, the threshold is "
                    f"{self.opts.blur_threshold:g})",
                )
                continue
            cx, cy = quad.center
            candidates.append(
                _Candidate(
                    file=fr,
                    face=fres,
                    aligned=aligned,
                    landmarks=face.landmarks,
                    sharpness=sharp,
                    photo_hash=photo_hash,
                    crop_hash=phash(aligned.image, 8),
                    centre=(float(cx) / w, float(cy) / h),
                    rel_size=float(quad.size) / max(w, h),
                )
            )
        if len(found) > 1 and not self.opts.all_faces:
            fr.notes.append(f"{len(found)} faces found; only the largest is used")
        return candidates

    # -- duplicates --
    def _is_duplicate(self, a: _Candidate, b: _Candidate) -> bool:
        if hamming(a.crop_hash, b.crop_hash) <= self.opts.crop_duplicate_distance:
            return True
        if hamming(a.photo_hash, b.photo_hash) > self.opts.duplicate_distance:
            return False
        # The same photo: the same face if it sits at the same place at the same size.
        return (
            abs(a.centre[0] - b.centre[0]) < 0.05
            and abs(a.centre[1] - b.centre[1]) < 0.05
            and 0.8 < a.rel_size / max(b.rel_size, 1e-9) < 1.25
        )

    def _find_duplicate(self, cand: _Candidate) -> _Candidate | None:
        if not self.opts.dedupe:
            return None
        for other in self.kept:
            if other.file is not cand.file and self._is_duplicate(cand, other):
                return other
        return None

    # -- output --
    def _output_name(self, cand: _Candidate) -> str:
        stem = _safe_stem(cand.file.source)
        if self.opts.all_faces:
            stem += f"_face{cand.face.index + 1}"
        name, n = f"{stem}.png", 1
        while name.lower() in self.used_names:
            n += 1
            name = f"{stem}-{n}.png"
        self.used_names.add(name.lower())
        return name

    def _write(self, cand: _Candidate) -> None:
        name = self._output_name(cand)
        try:
            write_png(self.out_dir / name, cand.aligned.image)
        except OSError as exc:
            raise JobError(
                f"cannot write a crop ({exc.strerror or exc})", self.out_dir / name
            ) from None
        scale = cand.aligned.scale
        message = f"enlarged {scale:.2f}x" if scale > 1.05 else ""
        cand.face.keep(name, message)
        cand.entry = {
            "file": name,
            "source": cand.file.source,
            "face": cand.face.index,
            "box": cand.face.box,
            "score": cand.face.score,
            "face_size": cand.face.face_size,
            "scale": round(scale, 4),
            "sharpness": cand.face.sharpness,
            "quad": np.round(cand.aligned.quad.corners, 2).tolist(),
            "landmarks": np.round(cand.aligned.landmarks, 2).tolist(),
            "source_landmarks": np.round(cand.landmarks, 2).tolist(),
            "photo_hash": f"{cand.photo_hash:016x}",
            "crop_hash": f"{cand.crop_hash:016x}",
        }
        self.kept.append(cand)

    def accept(self, cand: _Candidate) -> bool:
        """Dedupe and write one candidate; True when it was kept."""
        dup = self._find_duplicate(cand)
        if dup is not None:
            if _clearly_better(cand, dup):
                # The new copy is sharper: it replaces the one kept earlier.
                if dup.face.output:
                    (self.out_dir / dup.face.output).unlink(missing_ok=True)
                    self.used_names.discard(dup.face.output.lower())
                dup.face.reject(
                    Reason.DUPLICATE,
                    f"near-duplicate of {cand.file.source}, which is larger or sharper",
                )
                dup.face.duplicate_of = cand.file.source
                dup.file.finalize()
                self.kept.remove(dup)
            else:
                cand.face.reject(
                    Reason.DUPLICATE,
                    f"near-duplicate of {dup.file.source} (that copy is kept)",
                )
                cand.face.duplicate_of = dup.file.source
                return False
        self._write(cand)
        return True

    def dataset(self, source: str, extra: dict[str, Any]) -> dict[str, Any]:
        return dataset_document(self.size, source, [c.entry for c in self.kept], **extra)


def _clearly_better(new: _Candidate, old: _Candidate) -> bool:
    if (
        new.face.face_size >= old.face.face_size * LARGER_BY
        and new.sharpness >= old.sharpness * 0.8
    ):
        return True
    return new.sharpness >= old.sharpness * SHARPER_BY


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ingest_job(
    ctx: JobContext,
    photos_dir: str | Path,
    out_dir: str | Path,
    size: int,
    options: IngestOptions | None = None,
    *,
    finder: FaceFinder | None = None,
) -> Generator[Progress, None, IngestReport]:
    """Turn a folder of photos into an aligned data set. See the module docstring."""
    opts = options or IngestOptions()
    size = validate_size(size)
    photos = Path(photos_dir).expanduser()
    out = Path(out_dir).expanduser()
    if not photos.is_dir():
        raise JobError(
            "the photos folder does not exist" if not photos.exists() else "not a folder", photos
        )
    photos_abs, out_abs = photos.resolve(), out.resolve()
    if photos_abs == out_abs or photos_abs.is_relative_to(out_abs):
        raise JobError("the data set folder must not be the photos folder or contain it", out)
    if opts.blur_threshold < 0 or (opts.min_face is not None and opts.min_face < 1):
        raise JobError("the blur threshold must be >= 0 and the minimum face size >= 1 px")

    yield Progress(None, "listing photos")
    files = list_photos(photos, recursive=opts.recursive, exclude=out_abs)
    if not files:
        raise JobError("the photos folder holds no files", photos)
    yield Progress(0.0, "loading the face models")
    finder = finder or shared_finder()
    _create_output(out)
    # One ingest per data set folder: a second one into the same folder (another terminal,
    # the GUI) is refused at once instead of mixing its crops with ours.
    with output_lock(out, "data set folder"):
        return (yield from _run_ingest(ctx, photos, photos_abs, out, out_abs, files, size,
                                       opts, finder))


def _run_ingest(
    ctx: JobContext,
    photos: Path,
    photos_abs: Path,
    out: Path,
    out_abs: Path,
    files: list[Path],
    size: int,
    opts: IngestOptions,
    finder: FaceFinder,
) -> Generator[Progress, None, IngestReport]:
    _prepare_output(out)
    run = _Ingest(photos, out, size, opts, finder)
    options_doc = asdict(opts) | {"min_face": run.min_face}
    report = IngestReport(
        source_dir=str(photos_abs),
        dataset_dir=str(out_abs),
        size=size,
        options=options_doc,
        started=_now(),
    )
    extra = {"created": report.started, "options": options_doc, "complete": False}
    atomic_write_json(out / DATASET_FILE, run.dataset(str(photos_abs), extra))

    preview: np.ndarray | None = None
    done = 0
    try:
        for i, path in enumerate(files):
            ctx.check()
            rel = path.relative_to(photos).as_posix()
            try:
                fr, candidates = run.analyse(path, rel)
            except MemoryError:
                fr, candidates = FileResult(source=rel), []
                fr.reject(Reason.TOO_LARGE, "not enough memory to process this image")
            except (JobCancelled, JobError):
                raise
            except Exception as exc:  # noqa: BLE001 - one bad photo never stops the ingest
                fr, candidates = FileResult(source=rel), []
                fr.reject(
                    Reason.ERROR, f"unexpected error while processing: {type(exc).__name__}: {exc}"
                )
                fr.notes.append(traceback.format_exc(limit=3).strip().splitlines()[-1])
            report.files.append(fr)
            for cand in candidates:
                if run.accept(cand):
                    preview = cand.aligned.image
            fr.finalize()
            done = i + 1
            status = "kept" if fr.status == "kept" else Reason(fr.reason or "error").title
            yield Progress(done / len(files), f"{rel}: {status}", preview=preview)
    except (JobCancelled, GeneratorExit):
        # JobCancelled: ctx.check() here; GeneratorExit: the runner saw the cancel between
        # events and closed this generator. Either way, record what was not processed.
        report.cancelled = True
        for path in files[done:]:
            fr = FileResult(source=path.relative_to(photos).as_posix())
            fr.reject(Reason.CANCELLED, "not processed: the ingest was cancelled")
            report.files.append(fr)
        raise
    finally:
        report.finished = _now()
        extra = {
            "created": report.started,
            "options": options_doc,
            "complete": not report.cancelled and done == len(files),
        }
        try:
            atomic_write_json(out / DATASET_FILE, run.dataset(str(photos_abs), extra))
            atomic_write_json(out / REPORT_FILE, report.to_dict())
        except OSError as exc:
            raise JobError(
                f"cannot write the data set description ({exc.strerror or exc})", out
            ) from None
    return report


def ingest_photos(
    photos_dir: str | Path,
    out_dir: str | Path,
    size: int,
    options: IngestOptions | None = None,
    **kwargs: Any,
) -> IngestReport:
    """Run :func:`ingest_job` to the end in this thread (scripts and tests)."""
    gen = ingest_job(JobContext(), photos_dir, out_dir, size, options, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value

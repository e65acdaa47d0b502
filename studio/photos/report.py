"""What happened to every photo of an ingest: the report (``report.json``) and its summary."""

from __future__ import annotations

import enum
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORT_FILE = "report.json"
REPORT_FORMAT = "studio.photos.report"
REPORT_VERSION = 1

KEPT = "kept"
REJECTED = "rejected"


class Reason(enum.StrEnum):
    """Why a photo (or one face in it) was not used. The value is the stable code."""

    UNREADABLE = "unreadable"  # the file could not be read from disk
    UNSUPPORTED = "unsupported"  # not an image in a supported format
    CORRUPT = "corrupt"  # a supported format, but the data is invalid
    TRUNCATED = "truncated"  # the file ends early
    TOO_LARGE = "too_large"  # more pixels than the decoder allows (decompression bomb guard)
    EXTREME_ASPECT = "extreme_aspect"  # far too long and thin to hold a face (e.g. 3x50000)
    IMAGE_TOO_SMALL = "image_too_small"  # no face found and the image is smaller than a face
    NO_FACE = "no_face"
    FACE_TOO_SMALL = "face_too_small"
    TOO_BLURRY = "too_blurry"
    DUPLICATE = "duplicate"
    EXTRA_FACE = "extra_face"  # not the largest face, and --all-faces is off
    REMOVED = "removed"  # dropped by the user after the ingest
    CANCELLED = "cancelled"  # the ingest was cancelled before this photo
    ERROR = "error"  # an unexpected failure while processing this photo

    @property
    def title(self) -> str:
        return _TITLES[self]


_TITLES = {
    Reason.UNREADABLE: "unreadable",
    Reason.UNSUPPORTED: "not a supported image",
    Reason.CORRUPT: "corrupt image",
    Reason.TRUNCATED: "truncated image",
    Reason.TOO_LARGE: "image too large",
    Reason.EXTREME_ASPECT: "extreme aspect ratio",
    Reason.IMAGE_TOO_SMALL: "image too small",
    Reason.NO_FACE: "no face found",
    Reason.FACE_TOO_SMALL: "face too small",
    Reason.TOO_BLURRY: "too blurry",
    Reason.DUPLICATE: "near-duplicate",
    Reason.EXTRA_FACE: "extra face",
    Reason.REMOVED: "removed",
    Reason.CANCELLED: "not processed (cancelled)",
    Reason.ERROR: "error",
}


class Rejected(Exception):
    """Raised while processing a photo: this photo is not used, for ``reason``."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class FaceResult:
    """One detected face: kept (with its crop file) or rejected with a reason."""

    index: int  # 0 = the largest face in the photo
    box: list[float]  # detector box: left, top, right, bottom (source pixels)
    score: float  # detector confidence
    face_size: float  # side of the FFHQ crop square in source pixels
    status: str = REJECTED
    reason: str | None = None
    message: str = ""
    output: str | None = None  # crop file name in the data set folder
    sharpness: float | None = None
    duplicate_of: str | None = None  # the source file this face duplicates

    def keep(self, output: str, message: str = "") -> None:
        self.status, self.reason, self.output, self.message = KEPT, None, output, message

    def reject(self, reason: Reason, message: str) -> None:
        self.status, self.reason, self.output, self.message = REJECTED, reason.value, None, message


@dataclass
class FileResult:
    """The fate of one input file."""

    source: str  # path relative to the photos folder, with '/' separators
    status: str = REJECTED
    reason: str | None = None
    message: str = ""
    outputs: list[str] = field(default_factory=list)
    faces: list[FaceResult] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    notes: list[str] = field(default_factory=list)

    def reject(self, reason: Reason, message: str) -> None:
        self.status, self.reason, self.message = REJECTED, reason.value, message
        self.outputs = []

    def finalize(self) -> None:
        """Derive the file's status from its faces (after dedupe or removals)."""
        if not self.faces:
            if self.status == KEPT:  # faces were all dropped: should not happen
                self.reject(Reason.NO_FACE, "no face found")
            return
        kept = [f for f in self.faces if f.status == KEPT]
        if kept:
            self.status, self.reason = KEPT, None
            self.outputs = [f.output for f in kept if f.output]
            n = len(self.faces)
            if len(kept) == 1:
                self.message = f"kept the face as {kept[0].output}"
                if n > 1:
                    self.message += f" ({n} faces found)"
            else:
                self.message = f"kept {len(kept)} of {n} faces"
            if kept[0].message:
                self.message += f"; {kept[0].message}"
            return
        main = self.faces[0]
        self.status, self.outputs = REJECTED, []
        self.reason = main.reason or Reason.ERROR.value
        self.message = main.message
        if len(self.faces) > 1:
            self.message += f" ({len(self.faces)} faces found, none usable)"


@dataclass
class IngestReport:
    source_dir: str
    dataset_dir: str
    size: int
    options: dict[str, Any] = field(default_factory=dict)
    files: list[FileResult] = field(default_factory=list)
    cancelled: bool = False
    started: str = ""
    finished: str = ""

    # -- queries --
    @property
    def kept_files(self) -> list[FileResult]:
        return [f for f in self.files if f.status == KEPT]

    @property
    def rejected_files(self) -> list[FileResult]:
        return [f for f in self.files if f.status != KEPT]

    @property
    def outputs(self) -> list[str]:
        return [o for f in self.files for o in f.outputs]

    def file(self, source: str) -> FileResult:
        for f in self.files:
            if f.source == source:
                return f
        raise KeyError(source)

    def reason_counts(self) -> dict[str, int]:
        return dict(Counter(f.reason for f in self.rejected_files if f.reason))

    # -- serialisation --
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "source_dir": self.source_dir,
            "dataset_dir": self.dataset_dir,
            "size": self.size,
            "options": self.options,
            "cancelled": self.cancelled,
            "started": self.started,
            "finished": self.finished,
            "summary": {
                "files": len(self.files),
                "kept_files": len(self.kept_files),
                "rejected_files": len(self.rejected_files),
                "images": len(self.outputs),
                "reasons": self.reason_counts(),
            },
            "files": [asdict(f) for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestReport:
        files = []
        for fd in data.get("files", []):
            fd = dict(fd)
            faces = [FaceResult(**face) for face in fd.pop("faces", [])]
            files.append(FileResult(**fd, faces=faces))
        return cls(
            source_dir=data.get("source_dir", ""),
            dataset_dir=data.get("dataset_dir", ""),
            size=int(data.get("size", 0)),
            options=dict(data.get("options", {})),
            files=files,
            cancelled=bool(data.get("cancelled", False)),
            started=data.get("started", ""),
            finished=data.get("finished", ""),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def load(cls, path: str | Path) -> IngestReport:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    # -- for people --
    def summary(self) -> str:
        lines = []
        n_img = len(self.outputs)
        head = (
            f"Ingested {len(self.files)} file(s) from {self.source_dir} into "
            f"{self.dataset_dir} ({self.size}x{self.size} crops): "
            f"{n_img} image(s) from {len(self.kept_files)} photo(s) kept, "
            f"{len(self.rejected_files)} file(s) rejected."
        )
        if self.cancelled:
            head += " CANCELLED before the end."
        lines.append(head)
        width = min(max((len(f.source) for f in self.files), default=10), 40)
        if self.kept_files:
            lines.append("Kept:")
            for f in self.kept_files:
                extra = "; ".join(
                    face.message for face in f.faces if face.status == KEPT and face.message
                )
                line = f"  {f.source:<{width}}  -> {', '.join(f.outputs)}"
                lines.append(f"{line} ({extra})" if extra else line)
                for note in f.notes:
                    lines.append(f"  {'':<{width}}     note: {note}")
        if self.rejected_files:
            lines.append("Rejected:")
            for f in self.rejected_files:
                title = (
                    Reason(f.reason).title if f.reason in Reason._value2member_map_ else f.reason
                )
                lines.append(f"  {f.source:<{width}}  {title} [{f.reason}]: {f.message}")
        counts = self.reason_counts()
        if counts:
            lines.append(
                "Rejections by reason: "
                + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
            )
        return "\n".join(lines)

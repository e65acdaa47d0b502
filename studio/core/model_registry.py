"""Find the models on disk without loading them: face GANs, voices, refiners.

Reads only file headers (safetensors JSON header, Piper ``.onnx.json``), so listing is fast
and never executes anything. Broken files are reported, not fatal.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import FileFormatError

MAX_HEADER = 100 * 1024 * 1024


@dataclass
class ModelEntry:
    kind: str  # "face", "voice", "refiner"
    name: str
    path: Path
    details: dict = field(default_factory=dict)


def read_safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file (tensor table and ``__metadata__``)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise FileFormatError("too short to be a safetensors file", path)
            (n,) = struct.unpack("<Q", raw)
            size = path.stat().st_size
            if n < 2 or n > MAX_HEADER or n + 8 > size:
                raise FileFormatError("not a safetensors file (bad header length)", path)
            header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FileFormatError("not a safetensors file (header is not JSON)", path) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read ({exc.strerror})", path) from None
    if not isinstance(header, dict):
        raise FileFormatError("not a safetensors file (header is not an object)", path)
    return header


def studio_metadata(path: Path) -> dict | None:
    """Our JSON metadata stored under ``__metadata__['studio']``, or None."""
    meta = read_safetensors_header(path).get("__metadata__") or {}
    text = meta.get("studio") if isinstance(meta, dict) else None
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise FileFormatError("studio metadata is not valid JSON", path) from None
    return value if isinstance(value, dict) else None


def _scan_face(folder: Path, found: list[ModelEntry], problems: list[str]) -> None:
    for f in sorted(folder.glob("*.safetensors")):
        try:
            meta = studio_metadata(f)
        except FileFormatError as exc:
            problems.append(str(exc))
            continue
        if not meta or meta.get("format") != "dhs-face":
            problems.append(f"{f}: not a face model (no studio face metadata)")
            continue
        found.append(ModelEntry("face", str(meta.get("name") or f.stem), f, {
            "resolution": meta.get("resolution"),
            "source": meta.get("source", ""),
            "license": meta.get("license", ""),
        }))


def _scan_voice(folder: Path, found: list[ModelEntry], problems: list[str]) -> None:
    for f in sorted(folder.glob("*.onnx")):
        cfg = f.with_name(f.name + ".json")
        if not cfg.exists():
            problems.append(f"{f}: Piper voice without its {cfg.name}")
            continue
        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
            details = {
                "sample_rate": data["audio"]["sample_rate"],
                "language": (data.get("language") or {}).get("code")
                or (data.get("espeak") or {}).get("voice"),
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{cfg}: not a Piper voice config ({exc})")
            continue
        found.append(ModelEntry("voice", f.name.removesuffix(".onnx"), f, details))


def _scan_refiner(folder: Path, found: list[ModelEntry], problems: list[str]) -> None:
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (d / "model_index.json").exists():
            found.append(ModelEntry("refiner", d.name, d, {"format": "diffusers"}))
    for f in sorted(folder.glob("*.safetensors")):
        try:
            read_safetensors_header(f)
        except FileFormatError as exc:
            problems.append(str(exc))
            continue
        found.append(ModelEntry("refiner", f.stem, f, {"format": "single file"}))


SCANNERS = {"face": _scan_face, "voice": _scan_voice, "refiner": _scan_refiner}


def scan_models(dirs: list[Path]) -> tuple[list[ModelEntry], list[str]]:
    """Models in ``<dir>/face``, ``<dir>/voice``, ``<dir>/refiner`` for each dir."""
    found: list[ModelEntry] = []
    problems: list[str] = []
    for base in dirs:
        for kind, scan in SCANNERS.items():
            folder = Path(base) / kind
            if folder.is_dir():
                scan(folder, found, problems)
    return found, problems

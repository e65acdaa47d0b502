"""Find and load refiner models: the shipped default, the user's library, a path."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from studio.core.devices import DeviceChoice, select_device
from studio.core.errors import StudioError
from studio.refine.base import Refiner
from studio.refine.pixel import is_pixel_refiner

NO_DEFAULT = ("no default refiner model is installed yet (models/refiner/default): train one "
              "with `studio train refiner`, or choose your own Stable Diffusion 1.x checkpoint "
              "(a diffusers folder or a .safetensors file)")


def default_refiner_dir() -> Path | None:
    """The shipped default refiner (or one the user trained into their model folder)."""
    from studio.core.paths import shipped_models_dir, user_models_dir

    for base in (shipped_models_dir(), user_models_dir()):
        d = base / "refiner" / "default"
        if is_pixel_refiner(d):
            return d
    return None


def resolve_refiner(ref: str, project_path: Path | None = None,
                    model_dirs: Iterable[Path] = ()) -> Path:
    """``"default"``, ``"library:NAME"`` (in a model folder's refiner/) or a path."""
    if ref == "default":
        path = default_refiner_dir()
        if path is None:
            raise StudioError(NO_DEFAULT)
        return path
    if ref.startswith("library:"):
        name = ref[len("library:"):]
        for base in model_dirs:
            candidate = Path(base) / "refiner" / name
            if candidate.exists():
                return candidate
        raise StudioError(f"refiner {name!r} is not in any model folder")
    if project_path is not None:
        from studio.core.project import resolve_asset

        path = resolve_asset(project_path, ref)
    else:
        path = Path(ref).expanduser()
    if not path.exists():
        raise StudioError("refiner model not found", path)
    return path


def refiner_kind(path: Path) -> str:
    """``"pixel"`` (the studio's own refiner) or ``"sd"`` (Stable Diffusion 1.x)."""
    return "pixel" if path.is_dir() and is_pixel_refiner(path) else "sd"


_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def load_refiner(path: Path, device: DeviceChoice | None = None,
                 config_dir: Path | None = None,
                 loras: tuple[tuple[Path, float], ...] = ()) -> Refiner:
    """Load (or reuse the last loaded) refiner at ``path``; ``loras`` (file, weight) are
    merged into a Stable Diffusion model's weights."""
    device = device or select_device()
    path = Path(path)
    stamp = path.stat().st_mtime_ns
    lora_key = [(str(Path(p).resolve()), Path(p).stat().st_mtime_ns, w) for p, w in loras]
    key = f"{path.resolve()}|{stamp}|{device.label}|{config_dir}|{lora_key}"
    with _cache_lock:
        if _cache.get("key") == key:
            return _cache["refiner"]
    if refiner_kind(path) == "pixel":
        from studio.refine.pixel import load_pixel_refiner

        if loras:
            raise StudioError("LoRA files apply to Stable Diffusion models, not to the "
                              "studio's own refiner")
        refiner: Refiner = load_pixel_refiner(path, device)
    else:
        from studio.refine.sd import SDRefiner, load_sd_pipeline

        pipe = load_sd_pipeline(path, device, config_dir)
        if loras:
            from studio.refine.lora import apply_loras

            apply_loras(pipe, loras)
        refiner = SDRefiner(pipe, path.stem, device)
    with _cache_lock:
        _cache.clear()  # one model at a time: SD weights are gigabytes
        _cache.update(key=key, refiner=refiner)
    return refiner


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def available_refiners(model_dirs: Iterable[Path] = ()) -> list[tuple[str, str]]:
    """(label, reference) for the model picker: the default when installed, then the
    refiners in the model folders (studio refiners, SD folders, single files)."""
    out: list[tuple[str, str]] = []
    if default_refiner_dir() is not None:
        out.append(("Default refiner (4x)", "default"))
    for base in model_dirs:
        folder = Path(base) / "refiner"
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.name == "default" or p.name.endswith((".tmp-save", ".old-save")):
                continue
            if p.is_dir() and (p / "model_index.json").is_file():
                kind = "studio" if is_pixel_refiner(p) else "Stable Diffusion"
                out.append((f"{p.name} ({kind})", f"library:{p.name}"))
            elif p.suffix == ".safetensors":
                out.append((f"{p.stem} (Stable Diffusion file)", f"library:{p.name}"))
    return out

"""User settings, stored as JSON in the platform's config folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.core import paths
from studio.core.atomic import atomic_write_text

MAX_RECENT = 10


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    device: Literal["auto", "cuda", "cpu"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    model_dirs: list[str] = Field(default_factory=list, max_length=64)
    autosave_interval_s: int = Field(30, ge=5, le=3600)
    recent_projects: list[str] = Field(default_factory=list, max_length=MAX_RECENT)
    window_geometry: str | None = None  # base64 of QMainWindow.saveGeometry()
    window_state: str | None = None  # base64 of QMainWindow.saveState()
    preview_low_res_first: bool = True

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        items = [p] + [r for r in self.recent_projects if r != p]
        self.recent_projects = items[:MAX_RECENT]

    def all_model_dirs(self) -> list[Path]:
        """Shipped models first, then the user's own folder, then extra folders."""
        dirs = [paths.shipped_models_dir(), paths.user_models_dir()]
        dirs += [Path(d).expanduser() for d in self.model_dirs]
        return dirs


def settings_path() -> Path:
    return paths.config_dir() / "settings.json"


def load_settings() -> tuple[Settings, str | None]:
    """Settings plus a warning when the file was unreadable (defaults are used then)."""
    path = settings_path()
    if not path.exists():
        return Settings(), None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Settings.model_validate(data), None
    except (OSError, ValueError, ValidationError) as exc:
        bad = path.with_name(f"settings.broken-{os.getpid()}.json")
        try:
            os.replace(path, bad)
        except OSError:
            bad = path
        first = str(exc).splitlines()[0]
        return Settings(), f"{path}: unreadable settings ({first}); using defaults, kept as {bad.name}"


def save_settings(settings: Settings) -> None:
    atomic_write_text(settings_path(), settings.model_dump_json(indent=1))

"""Where the studio keeps things: config, user models, recovery files, caches.

``STUDIO_HOME`` puts all of them under one folder (tests, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "digital-human-studio"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _home() -> Path | None:
    value = os.environ.get("STUDIO_HOME")
    return Path(value) if value else None


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP))


def state_dir() -> Path:
    home = _home()
    return home / "state" if home else Path(platformdirs.user_state_dir(APP))


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP))


def user_models_dir() -> Path:
    """Models the user imported or trained (face/, voice/, refiner/ inside)."""
    return data_dir() / "models"


def shipped_models_dir() -> Path:
    """Default models that ship with the app."""
    return REPO_ROOT / "models"


def recovery_dir() -> Path:
    return state_dir() / "recovery"


def log_dir() -> Path:
    """Logs, such as the full report of an unexpected error in a command (under the state
    folder, so ``STUDIO_HOME`` moves it too)."""
    return state_dir() / "logs"


def resources_dir() -> Path:
    return REPO_ROOT / "resources"

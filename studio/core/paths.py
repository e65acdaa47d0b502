"""Where the studio keeps things: config, user models, recovery files, caches.

``STUDIO_HOME`` puts all of them under one folder (tests, portable installs).
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from pathlib import Path

import platformdirs

APP = "digital-human-studio"
# Where the wheel installs models/ and resources/ (its data-files), under an install prefix:
# not APP itself, which under ~/.local/share is the user's data folder.
SHIPPED = f"{APP}-app"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _install_roots() -> list[Path]:
    """Folders that may hold ``models/`` and ``resources/`` shipped with the app, best first:
    a source checkout (the folder with pyproject.toml above ``studio/``), a PyInstaller
    bundle, then ``<prefix>/share/digital-human-studio-app`` where the wheel puts them (its
    data-files: the app's environment, ``pip install --user``, a system install)."""
    roots: list[Path] = []
    if (REPO_ROOT / "pyproject.toml").is_file():
        roots.append(REPO_ROOT)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.append(Path(bundle))
    prefixes = [sys.prefix, sysconfig.get_path("data"), getattr(site, "USER_BASE", None)]
    for prefix in prefixes:
        if prefix:
            root = Path(prefix) / "share" / SHIPPED
            if root not in roots:
                roots.append(root)
    return roots


def _shipped(name: str) -> Path:
    roots = _install_roots()
    for root in roots:
        if (root / name).is_dir():
            return root / name
    return roots[0] / name


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
    """Default models that ship with the app (``models/`` of the checkout, or the copy the
    wheel installs under ``<prefix>/share/digital-human-studio-app``)."""
    return _shipped("models")


def recovery_dir() -> Path:
    return state_dir() / "recovery"


def log_dir() -> Path:
    """Logs, such as the full report of an unexpected error in a command (under the state
    folder, so ``STUDIO_HOME`` moves it too)."""
    return state_dir() / "logs"


def resources_dir() -> Path:
    """Icons, the style sheet, presets (``resources/``, found like the shipped models)."""
    return _shipped("resources")

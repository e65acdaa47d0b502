"""The demo project: what the studio opens on its very first start.

The shipped demo (``resources/demo/``) is copied into the user's data folder first, so an
artist can play with it and save it without touching the installed copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from studio.core import paths

DEMO_FILE = "demo.dhproj"


def shipped_demo() -> Path:
    return paths.resources_dir() / "demo" / DEMO_FILE


def user_demo_copy() -> Path | None:
    """The user's copy of the demo project (made on first use); None if none ships."""
    src = shipped_demo()
    if not src.is_file():
        return None
    dst_dir = paths.data_dir() / "demo"
    dst = dst_dir / DEMO_FILE
    if not dst.is_file():
        tmp = dst_dir.with_name(".demo-copy")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src.parent, tmp, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        shutil.rmtree(dst_dir, ignore_errors=True)
        tmp.rename(dst_dir)  # whole or not at all
    return dst


def first_start_project(recent_projects: list[str]) -> Path | None:
    """The project to open when the studio starts with none given: the demo on the very
    first start (no recent projects yet), otherwise nothing (a new, empty project)."""
    if recent_projects:
        return None
    return user_demo_copy()

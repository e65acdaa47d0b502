"""Shared fixtures for the photo-ingestion tests: one face model, one acceptance run."""

from __future__ import annotations

from pathlib import Path

import pytest
from photo_fixtures import build_mixed_folder, run_cli


@pytest.fixture(scope="session")
def finder():
    from studio.photos.faces import shared_finder

    return shared_finder()


@pytest.fixture(scope="session")
def mixed_run(tmp_path_factory):
    """``studio ingest`` on the acceptance folder at 256 px, run once per session."""
    root = tmp_path_factory.mktemp("mixed")
    photos, dataset = root / "photos", root / "dataset"
    expected = build_mixed_folder(photos)
    code, out, err = run_cli(["ingest", str(photos), "-o", str(dataset), "--size", "256"])
    return {
        "photos": photos,
        "dataset": dataset,
        "expected": expected,
        "code": code,
        "stdout": out,
        "stderr": err,
    }


@pytest.fixture()
def photos_dir(tmp_path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    return d

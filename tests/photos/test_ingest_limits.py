"""Issue 9: a photo of absurd shape is skipped with a reason (from its header, before any
decoding), and two ingests into one folder never mix their outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from photo_fixtures import astronaut, run_cli, save
from PIL import Image, ImageFile

from studio.core.errors import StudioError
from studio.photos.dataset import remove_from_dataset
from studio.photos.decode import load_photo
from studio.photos.ingest import ingest_photos
from studio.photos.report import Reason, Rejected


def _strip(path, w, h):
    return save(path, np.full((h, w, 3), 128, np.uint8))


def test_extreme_aspect_ratio_rejected_from_the_header(tmp_path, monkeypatch):
    _strip(tmp_path / "tall.png", 3, 50000)
    _strip(tmp_path / "wide.png", 50000, 3)

    def no_decoding(self):
        raise AssertionError("decoded pixels of a photo that the header already rules out")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for name, shape in (("tall.png", "3x50000"), ("wide.png", "50000x3")):
        with pytest.raises(Rejected) as err:
            load_photo(tmp_path / name)
        assert err.value.reason is Reason.EXTREME_ASPECT
        assert f"extreme aspect ratio {shape}" in err.value.message


def test_too_many_pixels_says_so(tmp_path):
    _strip(tmp_path / "big.png", 2000, 1000)
    with pytest.raises(Rejected) as err:
        load_photo(tmp_path / "big.png", max_pixels=1_000_000)
    assert err.value.reason is Reason.TOO_LARGE
    assert "too many pixels" in err.value.message and "2000x1000" in err.value.message


def test_ordinary_shapes_still_load(tmp_path):
    _strip(tmp_path / "pano.png", 2400, 200)  # a 12:1 panorama
    assert load_photo(tmp_path / "pano.png").rgb.shape == (200, 2400, 3)


def test_detection_margin_is_bounded_by_the_short_side():
    from studio.photos.faces import detection_margin

    assert detection_margin(3000, 4000) == 400  # ordinary photos: unchanged
    assert detection_margin(15, 258_000) == 15  # a strip no longer grows into gigabytes
    assert detection_margin(4, 4) == 8


def test_ingest_skips_the_strip_and_keeps_the_rest(photos_dir, tmp_path):
    # At 16 px crops the old detector planned a 51615 x 309600 image for this strip (48 GB)
    # and the photo ended as an "unexpected error".
    _strip(photos_dir / "strip.png", 3, 50000)
    save(photos_dir / "astro.png", astronaut())
    report = ingest_photos(photos_dir, tmp_path / "ds", 16)
    by_name = {f.source: f for f in report.files}
    assert by_name["strip.png"].reason == Reason.EXTREME_ASPECT.value
    assert "extreme aspect ratio 3x50000" in by_name["strip.png"].message
    assert by_name["astro.png"].reason != Reason.ERROR.value
    saved = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert [f["reason"] for f in saved["files"] if f["source"] == "strip.png"] == ["extreme_aspect"]


HOLD = textwrap.dedent("""
    import sys
    from studio.core.locks import output_lock
    with output_lock(sys.argv[1], "data set folder"):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_two_ingests_into_one_folder(photos_dir, tmp_path):
    save(photos_dir / "astro.png", astronaut())
    ds = tmp_path / "ds"
    ingest_photos(photos_dir, ds, 64)
    before = sorted(p.name for p in ds.iterdir())
    save(photos_dir / "again.png", np.asarray(Image.fromarray(astronaut()).rotate(5)))
    # another `studio ingest` is writing this folder right now
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(ds)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(StudioError, match=f"in use by process {child.pid}"):
            ingest_photos(photos_dir, ds, 64)
        code, _, err = run_cli(["ingest", str(photos_dir), "-o", str(ds), "--size", "64"])
        assert code == 2 and f"in use by process {child.pid}" in err and "Traceback" not in err
        assert sorted(p.name for p in ds.iterdir() if p.name != ".studio.lock") == before
        with pytest.raises(StudioError, match="in use by process"):
            remove_from_dataset(ds, before[:1])  # the GUI's "remove" waits its turn too
        assert sorted(p.name for p in ds.iterdir() if p.name != ".studio.lock") == before
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    report = ingest_photos(photos_dir, ds, 64)  # free again
    assert len(report.files) == 2
    assert not (ds / ".studio.lock").exists()

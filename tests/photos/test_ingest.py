"""``studio ingest`` end to end on real face photos shipped with matplotlib and scikit-image."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from photo_fixtures import astronaut, exif_rotated_jpeg, grace_hopper, lfw_face, run_cli, save
from PIL import Image

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobState
from studio.photos.align import face_geometry, ffhq_quad
from studio.photos.dataset import load_dataset, remove_from_dataset
from studio.photos.ingest import IngestOptions, ingest_job, ingest_photos
from studio.photos.report import IngestReport, Reason

pytestmark = pytest.mark.slow


def eye_angle(landmarks) -> float:
    g = face_geometry(landmarks)
    d = g["eye_right"] - g["eye_left"]
    return float(np.degrees(np.arctan2(d[1], d[0])))


def assert_ffhq_aligned(finder, png, size):
    """Detect the face again on the crop: eyes level and at the FFHQ positions."""
    crop = np.asarray(Image.open(png).convert("RGB"))
    assert crop.shape == (size, size, 3)
    faces = finder.find(crop, size // 4)
    assert faces, f"no face found again in {png.name}"
    lm = faces[0].landmarks
    assert abs(eye_angle(lm)) < 3.0
    g = face_geometry(lm)
    for key, want in (("eye_left", (0.375, 0.48)), ("eye_right", (0.625, 0.48))):
        assert np.allclose((g[key] + 0.5) / size, want, atol=0.04), (png.name, key, g[key] / size)
    # The FFHQ square recomputed on the crop is (nearly) the crop itself.
    q = ffhq_quad(lm)
    assert 0.8 < q.size / size < 1.2
    assert np.allclose(q.center / size, 0.5, atol=0.06)
    return lm


# -- the acceptance folder ---------------------------------------------------------------


def test_every_file_gets_its_fate(mixed_run):
    assert mixed_run["code"] == 0, mixed_run["stderr"]
    report = IngestReport.load(mixed_run["dataset"] / "report.json")
    fates = {f.source: f.reason for f in report.files}
    assert fates == mixed_run["expected"]
    for f in report.files:
        assert f.message, f.source
        if f.status == "kept":
            assert f.outputs and all((mixed_run["dataset"] / o).is_file() for o in f.outputs)
        else:
            assert not f.outputs
    assert report.file("grace_hopper_copy.webp").faces[0].duplicate_of == "grace_hopper.jpg"
    # Rotated sideways on disk: the face is only found because EXIF orientation is applied.
    assert report.file("grace_rotated.jpg").faces[0].duplicate_of == "grace_hopper.jpg"


def test_summary_on_stdout(mixed_run):
    out = mixed_run["stdout"]
    for name in mixed_run["expected"]:
        assert name in out
    assert "2 image(s) from 2 photo(s) kept, 12 file(s) rejected" in out
    assert "report.json" in out
    assert "Traceback" not in out + mixed_run["stderr"]


def test_dataset_json_and_crops(mixed_run, finder):
    ds = mixed_run["dataset"]
    data = load_dataset(ds)
    assert data["size"] == 256 and data["count"] == 2 and data["complete"] is True
    assert data["labels"] is None
    assert sorted(p.name for p in ds.glob("*.png")) == ["astronaut.png", "grace_hopper.png"]
    assert not list(ds.glob("*.tmp"))
    by_file = {img["file"]: img for img in data["images"]}
    assert by_file["grace_hopper.png"]["source"] == "grace_hopper.jpg"
    for name, img in by_file.items():
        assert np.asarray(img["landmarks"]).shape == (68, 2)
        assert np.asarray(img["source_landmarks"]).shape == (68, 2)
        found = assert_ffhq_aligned(finder, ds / name, 256)
        # The stored landmarks agree with landmarks found again on the crop.
        stored = np.asarray(img["landmarks"])
        assert np.median(np.linalg.norm(stored - found, axis=1)) < 0.04 * 256


def test_lfw_thumbnails_are_too_small_or_too_blurry(photos_dir, tmp_path):
    for i in (0, 1):
        save(photos_dir / f"lfw{i}_native.png", lfw_face(i, 25))
        save(photos_dir / f"lfw{i}_big.png", lfw_face(i, 100))
    report = ingest_photos(photos_dir, tmp_path / "ds", 256)
    fates = {f.source: f.reason for f in report.files}
    assert fates["lfw0_native.png"] in ("face_too_small", "image_too_small")
    assert fates["lfw1_native.png"] in ("face_too_small", "image_too_small")
    assert fates["lfw0_big.png"] == fates["lfw1_big.png"] == "too_blurry"
    assert not report.outputs


# -- single behaviours ----------------------------------------------------------------------


def test_exif_rotated_photo_is_kept_upright(photos_dir, tmp_path, finder):
    exif_rotated_jpeg(photos_dir / "sideways.jpg", astronaut(), 8)
    report = ingest_photos(photos_dir, tmp_path / "ds", 128)
    assert report.file("sideways.jpg").status == "kept"
    assert_ffhq_aligned(finder, tmp_path / "ds" / "sideways.png", 128)


def test_tilted_face_is_levelled(photos_dir, tmp_path, finder):
    m = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
    save(
        photos_dir / "tilted.png",
        cv2.warpAffine(astronaut(), m, (512, 512), borderMode=cv2.BORDER_REFLECT),
    )
    report = ingest_photos(photos_dir, tmp_path / "ds", 128)
    assert report.file("tilted.png").status == "kept"
    assert_ffhq_aligned(finder, tmp_path / "ds" / "tilted.png", 128)


def test_duplicate_keeps_the_better_copy(photos_dir, tmp_path):
    g = grace_hopper()
    h, w = g.shape[:2]
    save(
        photos_dir / "a_small_copy.jpg",
        cv2.resize(g, (w * 2 // 3, h * 2 // 3), interpolation=cv2.INTER_AREA),
    )
    save(photos_dir / "b_original.jpg", g, quality=95)
    save(photos_dir / "c_reencoded.jpg", g, quality=70)
    report = ingest_photos(photos_dir, tmp_path / "ds", 256)
    assert report.file("b_original.jpg").status == "kept"
    first = report.file("a_small_copy.jpg")
    assert first.reason == "duplicate" and first.faces[0].duplicate_of == "b_original.jpg"
    assert report.file("c_reencoded.jpg").reason == "duplicate"
    assert sorted(p.name for p in (tmp_path / "ds").glob("*.png")) == ["b_original.png"]
    # Without dedupe all three are kept.
    report = ingest_photos(photos_dir, tmp_path / "ds2", 256, IngestOptions(dedupe=False))
    assert len(report.outputs) == 3


def group_photo() -> np.ndarray:
    a = astronaut()
    g = cv2.resize(grace_hopper(), (437, 512), interpolation=cv2.INTER_AREA)
    return np.concatenate([a, g], axis=1)


def test_largest_face_by_default_all_faces_on_request(photos_dir, tmp_path, finder):
    save(photos_dir / "group.png", group_photo())
    report = ingest_photos(photos_dir, tmp_path / "one", 128)
    fr = report.file("group.png")
    assert fr.status == "kept" and fr.outputs == ["group.png"]
    assert [f.reason for f in fr.faces] == [None, "extra_face"]
    assert "2 faces" in " ".join(fr.notes)

    code, out, _ = run_cli(
        ["ingest", str(photos_dir), "-o", str(tmp_path / "all"), "--size", "128", "--all-faces"]
    )
    assert code == 0
    data = load_dataset(tmp_path / "all")
    assert sorted(i["file"] for i in data["images"]) == ["group_face1.png", "group_face2.png"]
    for name in ("group_face1.png", "group_face2.png"):
        assert_ffhq_aligned(finder, tmp_path / "all" / name, 128)


def test_min_face_and_blur_threshold_options(photos_dir, tmp_path):
    save(photos_dir / "grace.jpg", grace_hopper(), quality=95)
    code, _, _ = run_cli(
        [
            "ingest",
            str(photos_dir),
            "-o",
            str(tmp_path / "a"),
            "--size",
            "256",
            "--min-face",
            "2000",
        ]
    )
    assert code == 1  # nothing kept
    assert IngestReport.load(tmp_path / "a" / "report.json").files[0].reason == "face_too_small"
    code, _, _ = run_cli(
        [
            "ingest",
            str(photos_dir),
            "-o",
            str(tmp_path / "b"),
            "--size",
            "256",
            "--blur-threshold",
            "1e6",
        ]
    )
    assert IngestReport.load(tmp_path / "b" / "report.json").files[0].reason == "too_blurry"
    # Small data set sizes use the same threshold scale: the photo is sharp at 64 px too.
    report = ingest_photos(photos_dir, tmp_path / "c", 64)
    assert report.file("grace.jpg").status == "kept"


# -- the data set after the ingest ------------------------------------------------------


def test_remove_from_dataset(mixed_run, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(mixed_run["dataset"], ds)
    with pytest.raises(StudioError, match="nope.png"):
        remove_from_dataset(ds, ["astronaut.png", "nope.png"])
    assert (ds / "astronaut.png").is_file()  # nothing changed
    data = remove_from_dataset(ds, ["astronaut.png"])
    assert data["count"] == 1 and [i["file"] for i in data["images"]] == ["grace_hopper.png"]
    assert load_dataset(ds)["count"] == 1
    assert not (ds / "astronaut.png").exists()
    fr = IngestReport.load(ds / "report.json").file("astronaut.png")
    assert fr.status == "rejected" and fr.reason == Reason.REMOVED
    with pytest.raises(StudioError):
        remove_from_dataset(tmp_path, ["x.png"])  # not a data set


def test_rerun_replaces_the_previous_dataset(photos_dir, tmp_path):
    save(photos_dir / "astro.png", astronaut())
    ds = tmp_path / "ds"
    ingest_photos(photos_dir, ds, 64)
    (photos_dir / "astro.png").rename(photos_dir / "renamed.png")
    ingest_photos(photos_dir, ds, 64)
    assert sorted(p.name for p in ds.glob("*.png")) == ["renamed.png"]


# -- user errors -------------------------------------------------------------------------


def test_cli_user_errors(photos_dir, tmp_path):
    code, _, err = run_cli(
        ["ingest", str(tmp_path / "missing"), "-o", str(tmp_path / "o"), "--size", "256"]
    )
    assert code == 2 and "does not exist" in err
    save(photos_dir / "astro.png", astronaut())
    code, _, err = run_cli(["ingest", str(photos_dir), "-o", str(tmp_path / "o"), "--size", "300"])
    assert code == 2 and "power of two" in err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    code, _, err = run_cli(["ingest", str(photos_dir), "-o", str(busy), "--size", "64"])
    assert code == 2 and "not empty" in err and (busy / "keep.txt").exists()
    code, _, err = run_cli(["ingest", str(photos_dir), "-o", str(photos_dir), "--size", "64"])
    assert code == 2 and "Traceback" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(["ingest", str(empty), "-o", str(tmp_path / "o2"), "--size", "64"])
    assert code == 2 and "no files" in err


def test_output_inside_the_photos_folder_is_skipped(photos_dir):
    save(photos_dir / "astro.png", astronaut())
    report = ingest_photos(photos_dir, photos_dir / "dataset", 64)
    ingest_photos(photos_dir, photos_dir / "dataset", 64)  # the crops are not read back
    assert [f.source for f in report.files] == ["astro.png"]
    assert [f.source for f in IngestReport.load(photos_dir / "dataset" / "report.json").files] == [
        "astro.png"
    ]


# -- as a job --------------------------------------------------------------------------


def test_job_progress_preview_and_result(photos_dir, tmp_path):
    save(photos_dir / "a.png", astronaut())
    (photos_dir / "b.txt").write_text("x")
    job = Job("ingest", ingest_job, photos_dir, tmp_path / "ds", 64, IngestOptions())
    events = []
    job.progressed.connect(events.append)
    job.run()
    assert job.state is JobState.DONE, job.error
    assert isinstance(job.result, IngestReport) and len(job.result.files) == 2
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    previews = [e.preview for e in events if e.preview is not None]
    assert previews and previews[-1].shape == (64, 64, 3)


def test_cancel_keeps_a_consistent_dataset(photos_dir, tmp_path):
    save(photos_dir / "a.png", astronaut())
    for i in range(3):
        (photos_dir / f"z{i}.txt").write_text("x")
    job = Job("ingest", ingest_job, photos_dir, tmp_path / "ds", 64)

    def on_progress(p):
        if p.message.startswith("a.png"):
            job.cancel()

    job.progressed.connect(on_progress)
    job.run()
    assert job.state is JobState.CANCELLED
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert report["cancelled"] is True
    assert [f["reason"] for f in report["files"]] == [None, "cancelled", "cancelled", "cancelled"]
    data = load_dataset(tmp_path / "ds")
    assert data["count"] == 1 and data["complete"] is False

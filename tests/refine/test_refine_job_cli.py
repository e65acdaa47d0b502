"""The refine job (progress, cancel, masks, clips) and `studio refine`."""

import numpy as np
import pytest
from PIL import Image
from refine_helpers import CPU32

from studio.cli import main
from studio.core.jobs import Job, JobState
from studio.refine.base import RefineParams
from studio.refine.images import resize_image
from studio.refine.job import RefineRequest, refine_job


def _png(path, img):
    Image.fromarray(img).save(path)
    return path


def test_job_reports_every_step_and_returns_the_frame(tiny_pixel_refiner, face16):
    req = RefineRequest(model=str(tiny_pixel_refiner), params=RefineParams(0.5, 6),
                        images=[face16], device=CPU32)
    job = Job("refine", refine_job, req)
    events = []
    job.progressed.connect(lambda p: events.append(p.message))
    job.run()
    assert job.state is JobState.DONE, job.error
    assert [m for m in events if "step" in m] == [f"refining: step {i}/3" for i in (1, 2, 3)]
    assert job.result[0].shape == (32, 32, 3)


def test_cancel_stops_within_a_step(tiny_pixel_refiner, face16):
    req = RefineRequest(model=str(tiny_pixel_refiner), params=RefineParams(1.0, 50),
                        images=[face16], device=CPU32)
    job = Job("refine", refine_job, req)
    seen = []

    def on_progress(p):
        seen.append(p.message)
        if "step 2/" in p.message:
            job.cancel()

    job.progressed.connect(on_progress)
    job.run()
    assert job.state is JobState.CANCELLED
    assert not any("step 10/" in m for m in seen)


def test_mask_keeps_the_unmasked_part_unchanged(tiny_pixel_refiner, face16):
    mask = np.zeros((16, 16), np.float32)
    mask[:, 8:] = 1.0
    req = RefineRequest(model=str(tiny_pixel_refiner),
                        params=RefineParams(1.0, 4, feather=2.0), images=[face16], mask=mask,
                        device=CPU32)
    job = Job("refine", refine_job, req)
    job.run()
    out = job.result[0]
    base = resize_image(face16, (32, 32))
    assert np.array_equal(out[:, :8], base[:, :8])  # far from the edge: the input
    assert not np.array_equal(out[:, 26:], base[:, 26:])  # inside: refined


def test_clip_uses_the_same_noise_for_every_frame_and_temporal_blends(tiny_pixel_refiner, face16):
    frames = [face16, face16]
    req = RefineRequest(model=str(tiny_pixel_refiner), params=RefineParams(0.5, 4),
                        images=frames, device=CPU32)
    job = Job("refine", refine_job, req)
    job.run()
    a, b = job.result
    assert np.array_equal(a, b)  # identical frames refine identically: no noise flicker
    other = np.clip(face16.astype(int) + 40, 0, 255).astype(np.uint8)
    plain = Job("r", refine_job, RefineRequest(model=str(tiny_pixel_refiner),
                params=RefineParams(0.5, 4), images=[face16, other], device=CPU32))
    smooth = Job("r", refine_job, RefineRequest(model=str(tiny_pixel_refiner),
                 params=RefineParams(0.5, 4), images=[face16, other], temporal=0.5,
                 device=CPU32))
    plain.run()
    smooth.run()
    assert np.array_equal(plain.result[0], smooth.result[0])
    assert not np.array_equal(plain.result[1], smooth.result[1])


def test_cli_strength_zero_returns_the_input_resized(tiny_pixel_refiner, face16, tmp_path):
    src = _png(tmp_path / "in.png", face16)
    out = tmp_path / "out.png"
    assert main(["refine", str(src), "-o", str(out), "--model", str(tiny_pixel_refiner),
                 "--strength", "0", "--device", "cpu", "--precision", "fp32"]) == 0
    got = np.asarray(Image.open(out))
    assert np.array_equal(got, resize_image(face16, (32, 32)))


def test_cli_refines_with_a_mask(tiny_pixel_refiner, face16, tmp_path, capsys):
    src = _png(tmp_path / "in.png", face16)
    m = np.zeros((16, 16), np.uint8)
    m[4:12, 4:12] = 255
    mask = _png(tmp_path / "mask.png", m)
    out = tmp_path / "out.png"
    assert main(["refine", str(src), "-o", str(out), "--model", str(tiny_pixel_refiner),
                 "--strength", "0.5", "--steps", "4", "--mask", str(mask), "--feather", "1",
                 "--device", "cpu", "--precision", "fp32", "--prompt", "sharper"]) == 0
    got = np.asarray(Image.open(out))
    base = resize_image(face16, (32, 32))
    assert np.array_equal(got[:2], base[:2]) and not np.array_equal(got[12:20, 12:20],
                                                                      base[12:20, 12:20])
    cap = capsys.readouterr()
    assert "wrote" in cap.out and "takes no text" in cap.err


def test_cli_without_a_default_refiner_says_so(face16, tmp_path, capsys, monkeypatch):
    import studio.refine.locate as locate

    monkeypatch.setattr(locate, "default_refiner_dir", lambda: None)
    src = _png(tmp_path / "in.png", face16)
    assert main(["refine", str(src), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "no default refiner model is installed" in err and "Stable Diffusion" in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("content, problem", [(b"not an image", "not a readable image")])
def test_cli_bad_input_names_the_file(tmp_path, capsys, content, problem, tiny_pixel_refiner):
    bad = tmp_path / "broken.png"
    bad.write_bytes(content)
    assert main(["refine", str(bad), "-o", str(tmp_path / "o.png"),
                 "--model", str(tiny_pixel_refiner)]) == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and problem in err


def test_cli_refuses_pickled_checkpoints(tmp_path, capsys, face16):
    ck = tmp_path / "model.ckpt"
    ck.write_bytes(b"\x80\x04junk")
    src = _png(tmp_path / "in.png", face16)
    assert main(["refine", str(src), "-o", str(tmp_path / "o.png"), "--model", str(ck),
                 "--strength", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "model.ckpt" in err and "safetensors" in err

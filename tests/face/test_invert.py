"""Inversion (studio/face/invert.py) and the inversion job (studio/train/invert_job.py) with
tiny generators built in code: the reconstruction improves, pivotal tuning adds fidelity
without breaking edits and writes a new model file, bad input is refused clearly, cancel
stops the job."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind, JobState, Progress
from studio.face.invert import (
    InvertSettings,
    edit_consistency,
    edit_directions,
    pivotal_tune,
    project,
    to_tensor,
    to_uint8,
)
from studio.face.invert_losses import noise_regularizer, psnr, ssim, ssim_uint8
from studio.face.model_file import FaceModel, load_face_model


def _drive(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return stop.value, events


@pytest.fixture
def tiny(kit):
    G = kit.make_G(3)
    with torch.no_grad():
        z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(11))
        w = G.mapping(z, None, truncation_psi=0.8)
        target = G.synthesis(w, noise_mode="const").clamp(-1, 1)
    return G, target


def test_ssim_and_psnr_measure_what_they_say():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == float("inf")
    assert ssim_uint8(a, a) == pytest.approx(1.0, abs=1e-5)
    noisy = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert 20 < psnr(a, noisy) < 30
    assert ssim_uint8(a, noisy) < 0.99
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.rand(2, 1, 3, 16, 16, generator=gen) * 2 - 1).unbind(0)
    assert abs(float(ssim(x, y)[0])) < 0.2  # unrelated images: no structure in common


def test_noise_regularizer_tells_white_noise_from_structure():
    gen = torch.Generator().manual_seed(0)
    white = torch.randn(32, 32, generator=gen)
    smooth = torch.nn.functional.avg_pool2d(white[None, None], 5, 1, 2)[0, 0]
    smooth = (smooth - smooth.mean()) / smooth.std()
    assert float(noise_regularizer([smooth])) > 20 * float(noise_regularizer([white]))


def test_projection_reconstructs_a_face_of_the_model(tiny):
    G, target = tiny
    s = InvertSettings(steps=60, start_seeds=4, lr=0.1, feature_weight=0.0, preview_every=20)
    before = to_uint8(G.synthesis(G.mapping.w_avg[None, None].repeat(1, G.num_ws, 1),
                                  noise_mode="const"))
    proj, events = _drive(project(G, target, s))
    t8 = to_uint8(target)
    assert proj.ws.shape == (G.num_ws, G.w_dim) and np.isfinite(proj.ws).all()
    assert psnr(t8, proj.image) > psnr(t8, before) + 5
    steps = [e for e in events if e.step]
    assert len(steps) == 60 and steps[-1].fraction == pytest.approx(1.0)
    assert all("loss" in e.metrics and "ssim" in e.metrics for e in steps)
    previews = [e.preview for e in steps if e.preview is not None]
    assert len(previews) == 3 + 1 and previews[0].shape == (32, 66, 3)
    assert steps[-1].metrics["loss"] < steps[0].metrics["loss"]
    # the model the caller gave is untouched, and the projection renders what it reports
    with torch.no_grad():
        again = to_uint8(G.synthesis(torch.from_numpy(proj.ws)[None], noise_mode="const"))
    assert np.array_equal(again, proj.image)


def test_feature_loss_and_noise_optimisation_run(tiny):
    G, target = tiny
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    s = InvertSettings(steps=5, start_seeds=0, optimize_noise=True, preview_every=100)
    proj, events = _drive(project(G, target, s, features=lambda x: [conv(x)]))
    assert proj.noises and all(torch.isfinite(n).all() for n in proj.noises.values())
    assert "feature" in events[-1].metrics and "noise_reg" in events[-1].metrics


def test_pivotal_tuning_adds_fidelity_and_keeps_edits(tiny):
    G, _ = tiny
    # a target the w+ space cannot quite reach: the face with a bright patch
    with torch.no_grad():
        base = G.synthesis(G.mapping.w_avg[None, None].repeat(1, G.num_ws, 1),
                           noise_mode="const")
    target = base.clone()
    target[:, :, 8:16, 8:16] = 0.9
    s = InvertSettings(steps=30, start_seeds=0, feature_weight=0.0, pivotal_steps=40,
                       pivotal_lr=2e-3, preview_every=100)
    proj, _ = _drive(project(G, target, s))
    state = {k: v.clone() for k, v in G.state_dict().items()}
    G_t, events = _drive(pivotal_tune(G, target, proj.ws, s))
    assert all(torch.equal(state[k], v) for k, v in G.state_dict().items())  # not modified
    with torch.no_grad():
        tuned = to_uint8(G_t.synthesis(torch.from_numpy(proj.ws)[None], noise_mode="const"))
    t8 = to_uint8(target)
    assert psnr(t8, tuned) > psnr(t8, proj.image) + 1.0
    assert "pt_locality" in events[-1].metrics
    dirs = edit_directions(G, None, count=3)
    assert len(dirs) == 3
    consist = edit_consistency(G, G_t, proj.ws, dirs)
    assert consist["mean"] > 0.8  # edits make (nearly) the same change after tuning
    same = edit_consistency(G, G, proj.ws, dirs)
    assert same["mean"] == pytest.approx(1.0, abs=1e-5)


def test_settings_and_target_are_checked(tiny):
    G, _ = tiny
    with pytest.raises(StudioError, match="steps"):
        InvertSettings(steps=0)
    with pytest.raises(StudioError, match="32x32"):
        next(project(G, torch.zeros(1, 3, 16, 16), InvertSettings(steps=1)))


# -- the job ---------------------------------------------------------------------------


@pytest.fixture
def tiny_model_file(tmp_path_factory, tiny):
    from studio.face.model_file import save_face_model

    G, _ = tiny
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_face_model(path, G, name="tiny", license="test")
    return path


def test_invert_image_and_files(tmp_path, tiny, tiny_model_file):
    from studio.train.invert_job import invert_image, write_avatar_files, write_project

    _, target = tiny
    model = load_face_model(tiny_model_file)
    original = tiny_model_file.read_bytes()
    s = InvertSettings(steps=8, start_seeds=0, pivotal_steps=4, preview_every=100)
    out, events = _drive(invert_image(None, to_uint8(target), model, s))
    fr = [e.fraction for e in events if e.step]
    assert fr == sorted(fr) and fr[-1] == pytest.approx(1.0)
    assert [e.step for e in events if e.step] == list(range(1, 13))  # one x axis
    assert set(out.metrics) == {"w_plus", "pivotal"}
    assert out.metrics["w_plus"]["psnr"] > 5 and 0 < out.metrics["pivotal"]["ssim"] <= 1
    latent, tuned = write_avatar_files(out, tmp_path, "me", model)
    assert np.allclose(np.load(latent), out.ws)
    assert tuned is not None and tuned.name == "me_face.safetensors"
    assert tiny_model_file.read_bytes() == original  # the original is never touched
    again = load_face_model(tuned)
    assert not torch.equal(again.G.synthesis.b4.conv1.weight, model.G.synthesis.b4.conv1.weight)
    latent2, tuned2 = write_avatar_files(out, tmp_path, "me", model)
    assert latent2.name == "me_latent-2.npy" and tuned2.name == "me_face-2.safetensors"
    # the project renders the tuned model with the latent, through the one frame path
    from studio.core.project import load_project
    from studio.face.engine import FaceEngine
    from studio.face.request import avatar_request, render_request

    proj_path = write_project(tmp_path / "me.dhproj", tuned.name, latent.name, "me")
    project_ = load_project(proj_path)
    assert project_.avatar.latent == latent.name and project_.avatar.model == tuned.name
    frame = render_request(FaceEngine(again), avatar_request(project_, proj_path))
    assert psnr(frame, out.recon_tuned) > 35


def test_a_photo_without_a_face_is_refused_by_name(tmp_path):
    from PIL import Image

    from studio.train.invert_job import align_photo

    path = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(path)
    with pytest.raises(StudioError, match="no face found") as err:
        align_photo(path, 32)
    assert "wall.png" in str(err.value)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(StudioError) as err:
        align_photo(broken, 32)
    assert "broken.jpg" in str(err.value)


def test_cancel_stops_the_job_within_a_step(tiny):
    from studio.train.invert_job import invert_image

    G, target = tiny
    model = FaceModel(G=G, D=None, meta={"name": "tiny"})
    s = InvertSettings(steps=100_000, start_seeds=0, preview_every=1000)

    def job_fn(ctx):
        return (yield from invert_image(ctx, to_uint8(target), model, s))

    job = Job("invert", job_fn, kind=JobKind.INVERT)
    seen = threading.Event()
    job.add_callbacks(on_progress=lambda p: seen.set() if (p.step or 0) >= 3 else None)
    t = threading.Thread(target=job.run)
    t.start()
    assert seen.wait(60)
    job.cancel()
    t.join(30)
    assert not t.is_alive() and job.state is JobState.CANCELLED
    assert isinstance(job.last, Progress) and job.last.step < 100_000


def test_attribute_features_come_from_the_regressor():
    from studio.train.attributes import AttributeNet
    from studio.train.invert_job import AttributeFeatures

    net = AttributeNet([{"name": "smile", "kind": "continuous"}], size=32, width=8)
    feats = AttributeFeatures(net)(to_tensor(np.zeros((64, 64, 3), np.uint8)))
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]


def test_cli_writes_a_project_and_refuses_bad_input(tmp_path, tiny, capsys):
    from matplotlib import cbook

    from studio.cli import main
    from studio.core.project import load_project
    from studio.face.model_file import save_face_model

    G, _ = tiny
    save_face_model(tmp_path / "tiny.safetensors", G, name="tiny")
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    out = tmp_path / "grace.dhproj"
    rc = main(["invert", str(photo), "-o", str(out), "--model", str(tmp_path / "tiny.safetensors"),
               "--steps", "3", "--seeds", "0", "--pivotal-tuning", "--pt-steps", "2", "--json"])
    assert rc == 0
    import json

    result = json.loads(capsys.readouterr().out)
    project_ = load_project(out)
    assert project_.avatar.model == "grace_face.safetensors" == result["model"]
    assert (tmp_path / project_.avatar.latent).is_file()
    assert set(result["metrics"]) == {"w_plus", "pivotal"}
    assert "identity_distance" in result["metrics"]["pivotal"]
    assert main(["invert", str(tmp_path / "nope.jpg"), "-o", str(out)]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    assert main(["invert", str(photo), "-o", str(tmp_path / "x.txt")]) == 2

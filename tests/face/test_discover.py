"""Control discovery: PCA of W, supervised fits with conditioning, landmark labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobState
from studio.face import discover as dv

torch = pytest.importorskip("torch")


def _engine(seed: int = 0, resolution: int = 32):
    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.generator import Generator
    from studio.face.model_file import FaceModel

    torch.manual_seed(seed)
    G = Generator(z_dim=16, w_dim=16, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 256, "channel_max": 16})
    return FaceEngine(FaceModel(G=G.eval().requires_grad_(False), D=None, meta={}),
                      select_device("cpu", "fp32"))


def _frontal_landmarks(mouth_gap: float = 0.0, turn: float = 0.0, tilt_deg: float = 0.0,
                       brow: float = 0.0) -> np.ndarray:
    """A plausible 68-point face: eyes 60 px apart, mouth below, nose between."""
    lm = np.zeros((68, 2))
    lm[0:17, 0] = np.linspace(-70, 70, 17)
    lm[0:17, 1] = 80 - 40 * np.abs(np.linspace(-1, 1, 17))  # jaw line
    lm[17:22] = np.c_[np.linspace(-55, -10, 5), np.full(5, -25 - brow)]
    lm[22:27] = np.c_[np.linspace(10, 55, 5), np.full(5, -25 - brow)]
    lm[27:31] = np.c_[np.zeros(4) + turn, np.linspace(0, 35, 4)]
    lm[31:36] = np.c_[np.linspace(-10, 10, 5) + turn, np.full(5, 40)]

    def eye(cx: float) -> np.ndarray:
        return np.array([[cx - 12, 0], [cx - 5, -5], [cx + 5, -5], [cx + 12, 0],
                         [cx + 5, 5], [cx - 5, 5]], float)

    lm[36:42], lm[42:48] = eye(-30), eye(30)
    outer = np.array([[-25, 65], [-15, 60], [-5, 59], [0, 60], [5, 59], [15, 60], [25, 65],
                      [15, 72], [5, 74], [0, 74], [-5, 74], [-15, 72]], float)
    lm[48:60] = outer
    inner = np.array([[-20, 65], [-8, 64], [0, 64], [8, 64], [20, 65], [8, 66 + mouth_gap],
                      [0, 66 + mouth_gap], [-8, 66 + mouth_gap]], float)
    lm[60:68] = inner
    a = math.radians(tilt_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return lm @ rot.T + 200


def test_measure_follows_the_landmarks():
    base = dv.measure(_frontal_landmarks())
    assert set(base) == set(dv.LABELS)
    assert base["roll"] == pytest.approx(0, abs=1e-9)
    assert abs(base["yaw"]) < 1e-6
    assert base["eye_open"] == pytest.approx(10 / 24)  # (10 + 10) / (2 * 24)
    assert base["lip_width"] == pytest.approx(50 / 60)
    assert dv.measure(_frontal_landmarks(mouth_gap=12))["mouth_open"] > base["mouth_open"] + 0.15
    assert dv.measure(_frontal_landmarks(brow=10))["brow_height"] == pytest.approx(
        base["brow_height"] + 10 / 60)
    assert dv.measure(_frontal_landmarks(tilt_deg=10))["roll"] == pytest.approx(10)
    assert dv.measure(_frontal_landmarks(turn=20))["yaw"] > 10
    degenerate = dv.measure(np.zeros((68, 2)))
    assert all(math.isnan(v) for v in degenerate.values())
    with pytest.raises(ValueError):
        dv.measure(np.zeros((5, 2)))


def test_fit_direction_recovers_a_planted_direction():
    rng = np.random.default_rng(0)
    ws = rng.normal(size=(400, 24))
    truth = dv._unit(rng.normal(size=24))
    y = ws @ truth + 0.05 * rng.normal(size=400)
    y[::37] = np.nan  # failed measurements are left out
    d, corr = dv.fit_direction(ws, y)
    assert abs(np.linalg.norm(d) - 1) < 1e-9
    assert d @ truth > 0.99 and corr > 0.95
    with pytest.raises(StudioError, match="too few"):
        dv.fit_direction(ws[:5], y[:5])


def test_conditioning_keeps_one_control_from_moving_another():
    rng = np.random.default_rng(1)
    ws = rng.normal(size=(600, 20))
    pose = dv._unit(rng.normal(size=20))
    smile_only = dv._unit(rng.normal(size=20))
    # "mouth" labels lean on the pose direction as well (correlated in the data)
    labels = {"yaw": ws @ pose, "mouth_open": ws @ (smile_only + 1.5 * pose)}
    free, _ = dv.fit_controls(ws, labels, condition={})
    cond, _ = dv.fit_controls(ws, labels, condition={"mouth_open": ["yaw"]})
    mouth_free = next(c for c in free if c.name == "mouth_open").direction
    mouth_cond = next(c for c in cond if c.name == "mouth_open").direction
    yaw = next(c for c in cond if c.name == "yaw").direction
    cos = lambda a, b: abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert cos(mouth_free, yaw) > 0.5  # unconditioned, moving the mouth turns the head
    assert cos(mouth_cond, yaw) < 1e-5  # conditioned: it does not
    mc = next(c for c in cond if c.name == "mouth_open")
    assert mc.info["conditioned_on"] == ["yaw"] and mc.group == "Expression"
    assert next(c for c in cond if c.name == "yaw").group == "Pose"
    # value 1 moves one standard deviation of the samples
    assert np.std(ws @ mouth_cond) / np.linalg.norm(mouth_cond) ** 2 == pytest.approx(1, rel=1e-6)


def test_weak_fits_are_skipped_with_a_reason():
    rng = np.random.default_rng(2)
    ws = rng.normal(size=(200, 10))
    found, skipped = dv.fit_controls(ws, {"eye_open": rng.normal(size=200),
                                          "roll": np.ones(200)}, min_quality=0.5)
    assert not found
    assert "too weak" in skipped["eye_open"] and "too few" in skipped["roll"]


def test_orthogonalise_and_layers():
    a = np.array([1.0, 1.0, 0.0])
    b = np.array([1.0, 0.0, 0.0])
    assert np.allclose(dv.orthogonalise(a, [b]), [0, 1, 0])
    assert np.allclose(dv.orthogonalise(a, [b, 2 * b]), [0, 1, 0])  # dependent others
    with pytest.raises(StudioError, match="zero"):
        dv.orthogonalise(b, [b])
    d = dv.layer_direction(np.ones(4), 6, (2, 4))
    assert d.shape == (6, 4) and d[2:4].all() and not d[:2].any() and not d[4:].any()
    with pytest.raises(StudioError, match="do not fit"):
        dv.layer_direction(np.ones(4), 6, (4, 9))


def test_pca_finds_the_main_axes_and_repeats():
    rng = np.random.default_rng(3)
    ws = rng.normal(size=(2000, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    comps, sig, mean = dv.pca_directions(ws, 2)
    assert abs(comps[0, 0]) > 0.99 and abs(comps[1, 1]) > 0.99
    assert sig[0] == pytest.approx(5, rel=0.1) and sig[1] == pytest.approx(3, rel=0.1)
    again, _, _ = dv.pca_directions(ws.copy(), 2)
    assert np.array_equal(comps, again)
    with pytest.raises(StudioError):
        dv.pca_directions(ws[:1], 2)


def test_pca_controls_change_the_face_on_any_model():
    engine = _engine()
    ws = dv.sample_ws(engine, 500, seed=4)
    assert ws.shape == (500, 16) and np.isfinite(ws).all()
    assert np.array_equal(ws, dv.sample_ws(engine, 500, seed=4))  # deterministic
    comps, sig, _ = dv.pca_directions(ws, 3)
    ctl = dv.pca_control(engine, comps, sig, 0, (0, 2))
    assert ctl.name == "pc1" and ctl.direction.shape == (engine.num_ws, 16)
    w = engine.ws_for(1, 0.7)
    base = engine.render(w)
    moved = engine.render(w, edits=2 * ctl.direction)
    assert np.abs(moved.astype(int) - base.astype(int)).mean() > 1


def test_discover_job_with_a_planted_measurer():
    """The job renders faces, measures them, fits the labels and adds PCA controls."""
    engine = _engine(1)
    truth = dv._unit(np.random.default_rng(5).normal(size=16))
    seen = []

    def measurer(img):
        seen.append(img.shape)
        return {}

    # a measurer whose label is a known function of the rendered face's w
    ws = dv.sample_ws(engine, 60, 0, 0.7)
    it = iter(ws @ truth)

    def planted(img):
        measurer(img)
        return {"mouth_open": float(next(it)), "yaw": float(np.sin(len(seen)))}

    opts = dv.DiscoverOptions(samples=60, pca_samples=300, pca_components=2,
                              labels=("mouth_open", "yaw"), min_quality=0.5)
    job = Job("discover", dv.discover_job, engine, opts, planted)
    job.run()
    assert job.state is JobState.DONE, job.error
    res = job.result
    assert len(seen) == 60 and seen[0] == (32, 32, 3)
    names = [c.name for c in res.controls]
    assert names == ["mouth_open", "pc1", "pc2"]
    assert "too weak" in res.skipped["yaw"]
    mouth = res.controls[0]
    assert mouth.direction @ truth / np.linalg.norm(mouth.direction) > 0.95


def test_discover_job_cancels_and_refuses_unknown_labels():
    engine = _engine()
    job = Job("d", dv.discover_job, engine, dv.DiscoverOptions(labels=("smile_width",)))
    job.run()
    assert job.state is JobState.FAILED and "smile_width" in job.error
    job = Job("d", dv.discover_job, engine, dv.DiscoverOptions(samples=50, labels=("yaw",)),
              lambda img: job.cancel() or {"yaw": 0.0})
    job.run()
    assert job.state is JobState.CANCELLED


def test_landmark_measurer_on_generated_faces():
    """dlib's predictor measures every generated face (the aligned box when no face is
    detected), so labels exist for any model."""
    pytest.importorskip("dlib")
    engine = _engine(2)
    from studio.train.face_labels import LandmarkMeasurer

    m = LandmarkMeasurer()
    img = engine.render(engine.ws_for(3, 0.7))
    pts = m.landmarks(img)
    assert pts.shape == (68, 2) and np.isfinite(pts).all()
    assert (pts > -16).all() and (pts < 48).all()  # on (or near) the 32 px face
    labels = m(img)
    assert set(labels) == set(dv.LABELS)
    assert m.detected + m.fallback == 2


def test_cli_discover_on_an_imported_nvidia_pickle(tmp_path, capsys):
    """`studio controls discover` finds, names and stores controls in a model imported
    from an NVIDIA pickle, end to end; the controls then move the face."""
    pytest.importorskip("dlib")
    from import_fixtures import tiny_generator, write_nvidia_pkl

    from studio.cli import main
    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model
    from studio.face.request import FaceRequest, render_request

    G, gk = tiny_generator(seed=4, img_resolution=32)
    pkl = write_nvidia_pkl(tmp_path / "ffhq-tiny.pkl", G.state_dict(), gk,
                           marker=tmp_path / "EXECUTED")
    model = tmp_path / "tiny.safetensors"
    assert main(["import", str(pkl), "-o", str(model)]) == 0
    args = ["controls", "discover", "--model", str(model), "--samples", "40", "--pca", "3",
            "--pca-layers", "0:2", "--min-quality", "-1", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "measured 40 faces" in out and "wrote" in out
    m = load_face_model(model)
    names = m.control_set.names()
    fitted = [n for n in names if n in dv.LABELS]
    assert len(fitted) >= 4, out
    assert names[-3:] == ["pc1", "pc2", "pc3"]
    for c in m.control_set:
        assert c.low == -c.high and c.neutral == 0 and c.kind == "direction"
        assert c.group == (dv.LABELS[c.name][0] if c.name in dv.LABELS else "Style")
    pc = m.control_set["pc1"].direction
    assert np.abs(pc[:2]).sum() > 0 and not pc[2:].any()  # on layers 0 and 1 only
    if "mouth_open" in names:
        assert m.control_set["mouth_open"].attribute == "mouth_open"
    engine = FaceEngine(m, select_device("cpu", "fp32"))
    base = render_request(engine, FaceRequest(seed=2))
    for name in (fitted[0], "pc1"):
        moved = render_request(engine, FaceRequest(seed=2, controls={name: 3.0}))
        assert np.abs(moved.astype(int) - base.astype(int)).mean() > 0.5, name
    # a second run keeps what the model has (the artist may have tuned it)
    assert main([*args[:-4], "--labels", "none", "--device", "cpu"]) == 0
    assert "already in the model" in capsys.readouterr().out
    assert load_face_model(model).control_set.names() == names
    # bad input: a clear error naming the problem
    assert main(["controls", "discover", "--model", str(model), "--pca-layers", "3:99",
                 "--labels", "none"]) == 2
    assert "do not fit this model" in capsys.readouterr().err
    assert main(["controls", "discover", "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err

"""Fréchet distance, precision/recall, the random feature network, Inception loading, and
the attribute regressor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.errors import StudioError
from studio.train.metrics import (
    RandomFeatures,
    compute_features,
    fd_from_features,
    feature_stats,
    frechet_distance,
    precision_recall,
)


def test_fd_formula_matches_closed_form_and_low_rank_path():
    rng = np.random.default_rng(0)
    # 1-D Gaussians: (m1 - m2)^2 + s1^2 + s2^2 - 2 s1 s2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]),
                            np.array([[1.0]])) == pytest.approx(4 + 4 + 1 - 4)
    a, b = rng.normal(size=(30, 100)), rng.normal(size=(40, 100)) * 1.2 + 0.1
    full = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fd_from_features(a, b) == pytest.approx(full, rel=1e-6)  # eigh of a low-rank S is the less exact one


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_a_shift(tk):
    imgs = tk.render(24, 32, seed=7)
    ext = RandomFeatures()
    f0 = compute_features(imgs, ext)
    assert f0.shape == (24, ext.dim) and np.isfinite(f0).all()
    assert fd_from_features(f0, f0) == pytest.approx(0.0, abs=1e-8)
    fds = []
    for shift in (10, 30, 60):
        shifted = np.clip(imgs.astype(int) + shift, 0, 255).astype(np.uint8)
        fds.append(fd_from_features(f0, compute_features(shifted, ext)))
    assert 0 < fds[0] < fds[1] < fds[2]
    # deterministic weights: a second extractor gives identical features
    assert np.array_equal(compute_features(imgs[:4], RandomFeatures()), f0[:4])


def test_precision_recall_of_same_disjoint_and_collapsed_sets():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 8))
    assert precision_recall(real, real) == (1.0, 1.0)
    p, r = precision_recall(real, real + 100)
    assert p == 0.0 and r == 0.0
    collapsed = real[:40] * 0.1  # all fakes near the centre: precise, but little recall
    p, r = precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.5


def test_inception_loads_pytorch_fid_layout_and_rejects_other_files(tmp_path):
    from studio.train.inception import FIDInception, load_fid_inception

    torch.manual_seed(0)
    state = FIDInception().state_dict()
    state["fc.weight"] = torch.zeros(1008, 2048)  # pytorch-fid files carry the classifier too
    path = tmp_path / "pt_inception-2015-12-05-test.pth"
    torch.save(state, path)
    net = load_fid_inception(path)
    feats = compute_features(np.zeros((1, 32, 32, 3), np.uint8), net)
    assert feats.shape == (1, 2048) and np.isfinite(feats).all()
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(StudioError, match="not pytorch-fid's Inception"):
        load_fid_inception(tmp_path / "other.pth")
    with pytest.raises(StudioError, match="not found"):
        load_fid_inception(tmp_path / "missing.pth")


def test_attribute_regressor_learns_and_reports_coverage(tmp_path, tk):
    pytest.importorskip("studio.synthetic.renderer")
    from studio.synthetic.params import sample_params
    from studio.synthetic.renderer import render_faces
    from studio.train.attributes import (
        coverage,
        load_attribute_regressor,
        train_attribute_regressor,
    )

    n = 96
    params = sample_params(n, np.random.default_rng(0), hair_color=["black", "red"],
                           glasses=["none", "square"], hair_style="long")
    images = render_faces(params, 32)
    reg, scores = train_attribute_regressor(images, params, ("hair_color", "glasses", "smile"),
                                            steps=120, batch=32, size=32, width=8, lr=4e-3,
                                            val_fraction=0.0)
    assert scores["hair_color_accuracy"] > 0.75 and scores["glasses_accuracy"] > 0.6
    assert np.isfinite(scores["smile_mae"])
    path = reg.save(tmp_path / "attrs.safetensors")
    again = load_attribute_regressor(path)
    red = render_faces(sample_params(24, np.random.default_rng(9), hair_color="red",
                                     hair_style="long"), 32)
    cov = coverage(again, red)
    assert set(cov) == {"hair_color", "glasses", "smile"}
    assert sum(cov["hair_color"].values()) == pytest.approx(1.0)
    assert cov["hair_color"]["red"] > cov["hair_color"]["black"]
    assert set(cov["smile"]) == {"mean", "share_above", "threshold"}
    with pytest.raises(StudioError):
        load_attribute_regressor(tmp_path / "missing.safetensors")


def test_random_blur_keeps_shape_mean_and_softens_edges():
    import torch

    from studio.train.attributes import random_blur

    x = torch.zeros(64, 3, 16, 16)
    x[..., 8:] = 1.0  # a vertical edge
    y = random_blur(x, torch.Generator().manual_seed(0), 1.5)
    assert y.shape == x.shape
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.03)
    jump = (y[..., 8] - y[..., 7]).mean(dim=(1, 2))  # 1 where sharp, less where blurred
    assert (jump > 0.99).sum() >= 16 and (jump < 0.8).sum() >= 16
    assert torch.equal(random_blur(x, torch.Generator(), 0.0), x)

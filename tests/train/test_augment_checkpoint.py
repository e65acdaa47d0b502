"""Differentiable augmentation, ADA's controller, and checkpoints."""

from __future__ import annotations

import pytest
import torch

from studio.core.errors import StudioError
from studio.train.augment import AdaptiveP, augment
from studio.train.checkpoint import load_checkpoint, save_checkpoint
from studio.train.config import AUGMENTS


def _x(n=6, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_augment_is_identity_at_p0_and_reproducible():
    x = _x()
    assert torch.equal(augment(x, 0.0, torch.Generator().manual_seed(1)), x)
    a = augment(x, 0.7, torch.Generator().manual_seed(1))
    b = augment(x, 0.7, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)


@pytest.mark.parametrize("op", AUGMENTS)
def test_each_augment_is_differentiable_twice(op):
    x = _x().requires_grad_(True)
    y = augment(x, 1.0, torch.Generator().manual_seed(2), [op])
    assert y.shape == x.shape and torch.isfinite(y).all()
    (g,) = torch.autograd.grad((y * torch.linspace(0, 1, 16)).square().sum(), x, create_graph=True)
    g.square().sum().backward()  # the R1 penalty takes a gradient of a gradient
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_geometric_augments_move_pixels_without_changing_them():
    x = _x(8)
    for op in ("xflip", "rotate90", "translate"):
        y = augment(x, 1.0, torch.Generator().manual_seed(3), [op])
        # flips/rotations keep every value; a shift with reflection keeps most of the image
        for i in range(len(x)):
            vals = set(y[i].flatten().tolist())
            assert len(vals & set(x[i].flatten().tolist())) >= 0.8 * len(vals)


def test_adaptive_p_follows_the_sign_of_d_on_reals():
    ada = AdaptiveP(p=0.2, target=0.6, interval=4, kimg=1.0)
    ada.accumulate(torch.tensor([1.0, 2.0, 3.0, -1.0, 4.0]))  # E[sign] = 0.6 -> no change
    assert ada.update(32) == pytest.approx(0.2)
    ada.accumulate(torch.ones(8))  # D overconfident on reals: overfitting -> more augmentation
    assert ada.update(32) == pytest.approx(0.2 + 32 / 1000)
    ada.accumulate(-torch.ones(8))
    ada.accumulate(torch.ones(2))
    assert ada.update(100) == pytest.approx(0.132)
    for _ in range(20):
        ada.accumulate(-torch.ones(4))
        ada.update(1000)
    assert ada.p == 0.0
    for _ in range(20):
        ada.accumulate(torch.ones(4))
        ada.update(1000)
    assert ada.p == 1.0
    fixed = AdaptiveP(p=0.3, adaptive=False)
    fixed.accumulate(torch.ones(4))
    assert fixed.update(1000) == 0.3
    restored = AdaptiveP()
    restored.load_state_dict(ada.state_dict())
    assert restored.state_dict() == ada.state_dict()


def test_checkpoint_round_trip_keeps_a_backup(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"net": net.state_dict(), "opt": opt.state_dict(), "images_seen": 40,
             "rng": torch.get_rng_state(), "config": {"kimg": 1.5, "augments": ["xflip"]}}
    save_checkpoint(tmp_path, state)
    save_checkpoint(tmp_path, {**state, "images_seen": 80})
    got = load_checkpoint(tmp_path)  # torch.load(weights_only=True) inside
    assert got["images_seen"] == 80 and got["config"]["augments"] == ["xflip"]
    assert torch.equal(got["net"]["weight"], net.weight.detach())
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(got["opt"])
    # a torn main file falls back to the previous checkpoint
    (tmp_path / "checkpoint.pt").write_bytes(b"torn")
    assert load_checkpoint(tmp_path)["images_seen"] == 40
    (tmp_path / "checkpoint.pt.bak").write_bytes(b"torn too")
    with pytest.raises(StudioError, match="cannot read the checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(StudioError, match="no checkpoint"):
        load_checkpoint(tmp_path / "elsewhere")

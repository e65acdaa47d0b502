"""The figures of `studio controls evaluate`: correlation within each face, the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from studio.train.controls_eval import within_correlation
from studio.train.controls_fit import _verdict, encoder_direction


def test_correlation_is_taken_within_each_face():
    x = np.linspace(0, 1, 7)
    # three faces far apart that each follow the slider exactly: pooled it would be weak
    y = np.stack([100 * k + 0.5 * x for k in range(3)])
    assert within_correlation(x, y) == pytest.approx(1.0)
    assert within_correlation(x, -y) == pytest.approx(-1.0)
    assert within_correlation(x, np.ones((3, 7))) == 0.0
    noisy = y + np.random.default_rng(0).normal(0, 0.2, y.shape)
    assert 0.2 < within_correlation(x, noisy) < 0.95
    v_shape = np.stack([np.abs(x - 0.5)] * 3)  # a reading of |yaw|: no correlation
    assert abs(within_correlation(x, v_shape)) < 1e-9


def test_the_verdict_names_the_controls_below_0_9():
    table = {"a": {"correlation": 0.95}, "b": {"correlation": -0.93},
             "c": {"correlation": 0.41}}
    assert _verdict(table) == "2 of 3 controls reach |correlation| 0.9; below it: c (0.41)."
    assert "Every control" in _verdict({"a": {"correlation": -0.99}})


def test_encoder_direction_of_a_linear_encoder_is_exact():
    import torch

    from studio.face.controls import Control
    from studio.face.param_encoder import EncoderLayout, LayoutEntry, ParamEncoder

    layout = EncoderLayout([LayoutEntry("smile", 1, -0.5, 1.0), LayoutEntry("age", 1, 0, 1)])
    E = ParamEncoder(2, 4, 8, layers=1)
    with torch.no_grad():  # one layer, every output positive: lrelu is the identity there
        E.net[0].weight.copy_(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]))
        E.net[0].bias.fill_(10.0)
    c = Control("smile", kind="parametric", low=-0.5, high=1.0, params={"smile": 0.3})
    vecs = np.zeros((5, 2), np.float32)
    d = encoder_direction(E, layout, c, vecs)
    gain = E.net[0].weight_gain * np.sqrt(2)
    per_unit = 0.3 * 2 / 1.5  # raw units per slider unit -> encoded units
    np.testing.assert_allclose(d, gain * per_unit * np.array([1, 2, 0, 3]), rtol=1e-5)

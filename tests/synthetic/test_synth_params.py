"""Parameter spec, sampling with overrides, and the label vector."""

from __future__ import annotations

import numpy as np
import pytest

from studio.synthetic.params import (
    HAIR_COLORS,
    PARAM_NAMES,
    PARAM_SPECS,
    SPECS,
    VOCABULARIES,
    Uniform,
    default_params,
    params_to_vector,
    sample_params,
    vector_to_params,
)


def test_spec_is_consistent():
    assert len(set(PARAM_NAMES)) == len(PARAM_NAMES) == len(PARAM_SPECS)
    for name in ("smile", "mouth_open", "head_yaw", "hair_color", "hair_r", "glasses", "blink"):
        assert name in PARAM_NAMES
    for s in PARAM_SPECS:
        assert s.low < s.high
        if s.categorical:
            assert VOCABULARIES[s.name] == list(s.choices)
            assert s.high == len(s.choices) - 1


def test_samples_lie_in_their_ranges_and_repeat_with_the_seed():
    p = sample_params(500, np.random.default_rng(3))
    q = sample_params(500, np.random.default_rng(3))
    for name, s in SPECS.items():
        v = p[name]
        assert v.shape == (500,)
        assert np.array_equal(v, q[name])
        assert v.min() >= s.low and v.max() <= s.high, name
        if s.categorical:
            assert v.dtype == np.int64
    # every hair style and glasses kind shows up in a sample this size
    assert set(np.unique(p["hair_style"])) == set(range(len(VOCABULARIES["hair_style"])))
    assert set(np.unique(p["glasses"])) == {0, 1, 2}


def test_overrides_fix_pick_or_range():
    rng = np.random.default_rng(0)
    p = sample_params(50, rng, hair_color="red", glasses=1, smile=0.8,
                      facial_hair=["moustache", "beard"], head_yaw=Uniform(-5, 5))
    assert (p["hair_color"] == HAIR_COLORS.index("red")).all()
    assert (p["glasses"] == 1).all()
    assert np.allclose(p["smile"], 0.8)
    assert set(np.unique(p["facial_hair"])) <= {2, 3}
    assert p["head_yaw"].min() >= -5 and p["head_yaw"].max() <= 5
    # derived hair colour follows the category: red hair is redder than it is green or blue
    assert (p["hair_r"] > p["hair_g"]).all() and (p["hair_g"] >= p["hair_b"] - 0.05).all()


def test_an_override_leaves_the_other_parameters_alone():
    a = sample_params(40, np.random.default_rng(7))
    b = sample_params(40, np.random.default_rng(7), glasses="square")
    for name in PARAM_NAMES:
        if name != "glasses":
            assert np.array_equal(a[name], b[name]), name


def test_bad_overrides_are_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown parameter"):
        sample_params(2, rng, hat=1)
    with pytest.raises(ValueError, match="hair_color"):
        sample_params(2, rng, hair_color="plaid")
    with pytest.raises(ValueError, match="out of range"):
        sample_params(2, rng, glasses=7)


def test_vector_round_trip():
    p = sample_params(20, np.random.default_rng(1))
    vec = params_to_vector(p)
    assert vec.shape == (20, len(PARAM_NAMES)) and vec.dtype == np.float32
    back = vector_to_params(vec)
    for name in PARAM_NAMES:
        if SPECS[name].categorical:
            assert np.array_equal(back[name], p[name])
        else:
            assert np.allclose(back[name], p[name], atol=1e-3 * max(1.0, SPECS[name].high))


def test_default_params_are_neutral():
    d = default_params(3, smile=0.9)
    assert all(v.shape == (3,) for v in d.values())
    assert np.allclose(d["smile"], 0.9) and np.allclose(d["head_yaw"], 0.0)

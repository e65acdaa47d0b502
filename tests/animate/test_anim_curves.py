"""Curve tracks: interpolation modes, no overshoot, key reduction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.animate.curves import (
    Curve,
    evaluate_curve,
    keys_from_samples,
    make_key,
    make_track,
    validate_track,
)


def keys(*items, interp="linear"):
    return [make_key(t, v, interp) for t, v in items]


def test_linear_step_and_holds():
    k = keys((0, 0), (1, 1), (2, 0))
    assert evaluate_curve(k, [-1, 0, 0.5, 1, 1.5, 2, 3]).tolist() == [0, 0, 0.5, 1, 0.5, 0, 0]
    s = keys((0, 0), (1, 1), interp="step")
    assert evaluate_curve(s, [0.5, 0.999, 1.0, 2]).tolist() == [0, 0, 1, 1]
    assert evaluate_curve([], [0, 1]).tolist() == [0, 0]
    assert evaluate_curve(keys((3, 0.7)), [0, 5]).tolist() == [0.7, 0.7]


def test_mixed_interpolation_is_per_segment():
    k = [make_key(0, 0, "step"), make_key(1, 1, "linear"), make_key(2, 0, "smooth"),
         make_key(3, 1)]
    v = evaluate_curve(k, [0.5, 1.5, 2.25, 2.5, 2.75])
    assert v[0] == 0 and v[1] == pytest.approx(0.5)
    assert 0 < v[2] < v[3] < v[4] < 1  # smooth: rising inside its keys' range


def test_smooth_is_smooth_through_keys():
    k = keys((0, 0), (1, 1), (2, 3), (3, 3.5), interp="smooth")
    t = np.linspace(0, 3, 3001)
    v = evaluate_curve(k, t)
    assert evaluate_curve(k, [0, 1, 2, 3]).tolist() == pytest.approx([0, 1, 3, 3.5])
    assert np.all(np.diff(v) >= -1e-12)  # monotone data stays monotone
    slope = np.diff(v) / np.diff(t)
    assert np.max(np.abs(np.diff(slope))) < 0.05  # no kinks at the keys (C1)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(-5, 5)), min_size=2, max_size=12,
                unique_by=lambda x: round(x[0], 3)))
def test_smooth_never_overshoots(points):
    points = sorted(points)
    k = keys(*points, interp="smooth")
    ts = [key["t"] for key in k]
    vs = [key["v"] for key in k]
    t = np.linspace(ts[0], ts[-1], 500)
    v = evaluate_curve(k, t)
    seg = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2)
    lo = np.minimum(np.take(vs, seg), np.take(vs, seg + 1))
    hi = np.maximum(np.take(vs, seg), np.take(vs, seg + 1))
    assert np.all(v >= lo - 1e-9) and np.all(v <= hi + 1e-9)


def test_keys_from_samples_stay_within_tolerance():
    t = np.linspace(0, 2, 201)
    v = 0.5 + 0.4 * np.sin(2 * np.pi * 1.3 * t) * np.exp(-t)
    for interp in ("linear", "smooth"):
        k = keys_from_samples(t, v, tolerance=0.01, interp=interp)
        assert len(k) < 40
        assert np.max(np.abs(evaluate_curve(k, t) - v)) <= 0.01 + 1e-6


def test_tracks_are_json_and_validated():
    curve = make_track("mouth_open", keys((0, 0), (0.1, 0.8)))
    track = curve.to_dict()
    assert json.loads(json.dumps(track)) == track == {
        "channel": "mouth_open", "keys": keys((0, 0), (0.1, 0.8))}
    assert Curve.from_keys(track["channel"], track["keys"]) == curve
    assert validate_track(track) == []
    assert validate_track({"channel": "", "keys": [{"t": 1, "v": 0}, {"t": 0, "v": "x"}]}) == [
        "a track needs a 'channel' name", "keys[1] is earlier than the key before it",
        "keys[1].v must be a finite number"]
    with pytest.raises(ValueError):
        make_key(0, 0, "cubic")  # bezier is an interpolation since schema 3


def test_curve_is_arrays_sorted_and_read_only():
    c = Curve("blink", [2.0, 0.0, 1.0], [0.0, 1.0, 0.5], ["linear", "step", "smooth"])
    assert c.times.tolist() == [0.0, 1.0, 2.0] and c.values.tolist() == [1.0, 0.5, 0.0]
    assert c.interp.tolist() == [2, 1, 0]  # step, smooth, linear codes follow their keys
    with pytest.raises(ValueError):
        c.times[0] = 5.0
    assert c.evaluate(np.array([-1.0, 0.5, 3.0])).tolist() == [1.0, 1.0, 0.0]
    assert c.shifted(1.5).times.tolist() == [1.5, 2.5, 3.5]
    with pytest.raises(ValueError):
        Curve("x", [0.0, 1.0], [0.0], "linear")
    with pytest.raises(ValueError):
        Curve("x", [0.0], [np.nan], "linear")
    with pytest.raises(ValueError):
        Curve("x", [0.0], [0.0], "cubic")


def test_curve_from_samples_matches_keys_from_samples():
    t = np.linspace(0, 2, 201)
    v = 0.5 + 0.4 * np.sin(2 * np.pi * 1.3 * t)
    curve = Curve.from_samples("mouth_open", t, v, tolerance=0.01)
    assert curve.key_dicts() == keys_from_samples(t, v, tolerance=0.01)
    assert np.max(np.abs(curve.evaluate(t) - v)) <= 0.01 + 1e-6

"""evaluate(project, t) / evaluate_many: interpolation, holds, mute and solo, the curve cache."""

from __future__ import annotations

import numpy as np
import pytest

from studio.animate.curves import Curve
from studio.core.project import CurveTrack, Key, Project
from studio.timeline import curve_of, evaluate, evaluate_many, playing_tracks


def _project(*tracks: CurveTrack) -> Project:
    p = Project()
    p.timeline.tracks = list(tracks)
    return p


def _track(channel: str, points, interp="linear", **flags) -> CurveTrack:
    return CurveTrack(channel=channel, keys=[Key(t=t, v=v, interp=interp) for t, v in points],
                      **flags)


def test_linear_step_and_smooth_interpolation():
    p = _project(_track("lin", [(0, 0), (1, 1), (2, 0)]),
                 _track("step", [(0, 0), (1, 1)], "step"),
                 _track("smooth", [(0, 0), (1, 1), (2, 3), (3, 3.5)], "smooth"))
    assert evaluate(p, 0.5) == {"lin": 0.5, "step": 0.0, "smooth": pytest.approx(0.5, abs=0.2)}
    assert evaluate(p, 1.0)["step"] == 1.0 and evaluate(p, 0.999)["step"] == 0.0
    assert evaluate(p, 1.5)["lin"] == pytest.approx(0.5)
    t = np.linspace(0, 3, 3001)
    smooth = evaluate_many(p, t)["smooth"]
    assert smooth[[0, 1000, 2000, 3000]] == pytest.approx([0, 1, 3, 3.5])
    assert np.all(np.diff(smooth) >= -1e-12)  # monotone keys: no overshoot


def test_before_the_first_and_after_the_last_key_hold():
    p = _project(_track("a", [(1, 0.25), (2, 0.75)]), _track("one", [(5, 0.7)]))
    assert evaluate(p, 0.0) == {"a": 0.25, "one": 0.7}
    assert evaluate(p, 99.0) == {"a": 0.75, "one": 0.7}


def test_mute_and_solo():
    a = _track("a", [(0, 1)])
    b = _track("b", [(0, 2)], muted=True)
    c = _track("c", [(0, 3)])
    empty = CurveTrack(channel="empty")
    p = _project(a, b, c, empty)
    assert evaluate(p, 0) == {"a": 1.0, "c": 3.0}  # muted and empty tracks drive nothing
    c.solo = True
    assert evaluate(p, 0) == {"c": 3.0}
    b.solo = True  # soloed but muted: still silent
    assert evaluate(p, 0) == {"c": 3.0}
    assert [t.channel for t in playing_tracks(p)] == ["c"]


def test_evaluate_many_keeps_the_shape_and_matches_evaluate():
    p = _project(_track("a", [(0, 0), (1, 1), (2, 0)], "smooth"))
    times = np.linspace(0, 2, 12).reshape(3, 4)
    many = evaluate_many(p, times)
    assert many["a"].shape == (3, 4)
    assert many["a"][1, 2] == pytest.approx(evaluate(p, float(times[1, 2]))["a"])
    assert evaluate_many(p.timeline, [0.5])["a"].shape == (1,)  # a timeline works too


def test_curve_is_cached_until_the_keys_change():
    track = _track("a", [(0, 0), (1, 1)])
    first = curve_of(track)
    assert isinstance(first, Curve) and curve_of(track) is first
    track.muted = True  # flags do not touch the curve
    assert curve_of(track) is first
    track.keys = (*track.keys, Key(t=2, v=0))
    second = curve_of(track)
    assert second is not first and second.times.tolist() == [0, 1, 2]
    # the cache never makes tracks unequal or travels into copies
    assert track == track.model_copy(deep=True)
    assert track.model_copy(deep=True)._view.entry is None

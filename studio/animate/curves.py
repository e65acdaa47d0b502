"""Curve tracks: the timeline's keyframe format, evaluating it, and making keys from samples.

A track is a JSON-able dict, the project file's curve-track format::

    {"channel": "mouth_open",
     "keys": [{"t": 0.0, "v": 0.0, "interp": "smooth"}, {"t": 0.12, "v": 0.8, ...}, ...]}

``interp`` of a key says how the curve goes from that key to the next one:

- ``"step"``: hold the key's value until the next key;
- ``"linear"``: straight line;
- ``"smooth"``: cubic Hermite with monotone tangents (Fritsch–Butland): a smooth curve
  through the keys that never overshoots them (no value outside its two keys' range).

Before the first key the curve holds the first value, after the last key the last value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

INTERPOLATIONS = ("linear", "smooth", "step")


def make_key(t: float, v: float, interp: str = "smooth") -> dict[str, Any]:
    if interp not in INTERPOLATIONS:
        raise ValueError(f"interp must be one of {INTERPOLATIONS}, got {interp!r}")
    return {"t": round(float(t), 6), "v": round(float(v), 6), "interp": interp}


def make_track(channel: str, keys: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"channel": channel, "keys": [dict(k) for k in keys]}


def _arrays(keys: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    items = sorted(keys, key=lambda k: float(k["t"]))
    t = np.array([float(k["t"]) for k in items], dtype=np.float64)
    v = np.array([float(k["v"]) for k in items], dtype=np.float64)
    interp = [str(k.get("interp", "linear")) for k in items]
    return t, v, interp


def _monotone_tangents(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fritsch–Butland tangents: zero at extrema, the weighted harmonic mean of the
    neighbouring slopes inside, the secant slope at the ends (keeps every cubic piece
    inside its two keys' range)."""
    n = len(t)
    m = np.zeros(n)
    if n < 2:
        return m
    h = np.diff(t)
    h = np.where(h <= 0, 1e-12, h)
    d = np.diff(v) / h
    m[0], m[-1] = d[0], d[-1]
    for i in range(1, n - 1):
        d0, d1 = d[i - 1], d[i]
        if d0 * d1 <= 0:
            continue
        h0, h1 = h[i - 1], h[i]
        w0, w1 = 2 * h1 + h0, h1 + 2 * h0
        m[i] = (w0 + w1) / (w0 / d0 + w1 / d1)
    return m


def evaluate_curve(keys: Sequence[Mapping[str, Any]], t: np.ndarray | float) -> np.ndarray:
    """Values of the curve given by ``keys`` at times ``t`` (array in, array out)."""
    times = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if not keys:
        return np.zeros_like(times)
    kt, kv, interp = _arrays(keys)
    if len(kt) == 1:
        return np.full_like(times, kv[0])
    out = np.empty_like(times)
    seg = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, len(kt) - 2)
    before = times <= kt[0]
    after = times >= kt[-1]
    t0, t1 = kt[seg], kt[seg + 1]
    v0, v1 = kv[seg], kv[seg + 1]
    h = np.maximum(t1 - t0, 1e-12)
    s = np.clip((times - t0) / h, 0.0, 1.0)
    modes = np.array([interp[i] for i in seg]) if len(seg) else np.array([], dtype=str)
    tangents = _monotone_tangents(kt, kv)
    m0, m1 = tangents[seg] * h, tangents[seg + 1] * h
    s2, s3 = s * s, s * s * s
    hermite = (
        (2 * s3 - 3 * s2 + 1) * v0 + (s3 - 2 * s2 + s) * m0 + (-2 * s3 + 3 * s2) * v1
        + (s3 - s2) * m1
    )
    linear = v0 + (v1 - v0) * s
    out = np.where(modes == "smooth", hermite, np.where(modes == "step", v0, linear))
    out = np.where(before, kv[0], out)
    out = np.where(after, kv[-1], out)
    return out


def simplify(
    times: np.ndarray, values: np.ndarray, tolerance: float = 0.01, max_gap: float | None = None
) -> np.ndarray:
    """Indices of samples to keep so straight lines between them stay within
    ``tolerance`` of every sample (Ramer–Douglas–Peucker on the value axis). With
    ``max_gap`` no two kept samples are further apart than that many seconds."""
    n = len(times)
    if n <= 2:
        return np.arange(n)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg_t = times[a + 1 : b]
        line = values[a] + (values[b] - values[a]) * (seg_t - times[a]) / max(
            times[b] - times[a], 1e-12
        )
        err = np.abs(values[a + 1 : b] - line)
        k = int(np.argmax(err))
        too_long = max_gap is not None and times[b] - times[a] > max_gap
        if err[k] > tolerance or too_long:
            mid = a + 1 + k if err[k] > tolerance else (a + b) // 2
            keep[mid] = True
            stack.append((a, mid))
            stack.append((mid, b))
    return np.nonzero(keep)[0]


def keys_from_samples(
    times: np.ndarray,
    values: np.ndarray,
    tolerance: float = 0.01,
    interp: str = "smooth",
    max_gap: float | None = None,
) -> list[dict[str, Any]]:
    """Few keys that reproduce a sampled curve within ``tolerance`` (plus key rounding):
    Ramer–Douglas–Peucker, then, for smooth keys, more keys where the curve still strays."""
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    idx = simplify(times, values, tolerance, max_gap)
    if interp == "smooth":
        for _ in range(8):
            keys = [make_key(times[i], values[i], interp) for i in idx]
            err = np.abs(evaluate_curve(keys, times) - values)
            segment = np.searchsorted(idx, np.arange(len(times)), side="right") - 1
            worst: dict[int, int] = {}
            for j in np.nonzero(err > tolerance)[0]:
                s = int(segment[j])
                if s not in worst or err[j] > err[worst[s]]:
                    worst[s] = int(j)
            if not worst:
                break
            idx = np.union1d(idx, list(worst.values()))
    return [make_key(times[i], values[i], interp) for i in idx]


def track_from_samples(
    channel: str, times: np.ndarray, values: np.ndarray, tolerance: float = 0.01,
    interp: str = "smooth",
) -> dict[str, Any]:
    return make_track(channel, keys_from_samples(times, values, tolerance, interp))


def validate_track(track: Any) -> list[str]:
    """Problems with a track dict (empty list when it is well formed)."""
    problems = []
    if not isinstance(track, Mapping):
        return ["a track must be an object"]
    if not isinstance(track.get("channel"), str) or not track.get("channel"):
        problems.append("a track needs a 'channel' name")
    keys = track.get("keys")
    if not isinstance(keys, list):
        return [*problems, "a track needs a 'keys' list"]
    last = -np.inf
    for i, key in enumerate(keys):
        if not isinstance(key, Mapping):
            problems.append(f"keys[{i}] must be an object")
            continue
        t, v = key.get("t"), key.get("v")
        if not isinstance(t, (int, float)) or not np.isfinite(t):
            problems.append(f"keys[{i}].t must be a finite number")
        elif t < last:
            problems.append(f"keys[{i}] is earlier than the key before it")
        else:
            last = t
        if not isinstance(v, (int, float)) or not np.isfinite(v):
            problems.append(f"keys[{i}].v must be a finite number")
        if key.get("interp", "linear") not in INTERPOLATIONS:
            problems.append(f"keys[{i}].interp must be one of {', '.join(INTERPOLATIONS)}")
    return problems

"""The studio's one curve type, :class:`Curve`: a channel's keys as arrays.

A curve is ``times`` (sorted seconds), ``values`` and ``interp`` codes, one per key. A
key's code says how the curve goes from that key to the next one:

- ``step`` (2): hold the key's value until the next key;
- ``linear`` (0): straight line;
- ``smooth`` (1): cubic Hermite with monotone tangents (Fritsch–Butland): a smooth curve
  through the keys that never overshoots them (no value outside its two keys' range);
- ``bezier`` (3): a cubic whose handles lie a third of the piece along the slopes
  ``tan_out`` of the key and ``tan_in`` of the next key (value per second; NaN or absent:
  the smooth curve's tangent there). The artist edits these slopes; the piece may
  overshoot.

Before the first key the curve holds the first value, after the last key the last value.

The animation functions (lip-sync, blinks, head motion) return curves; the timeline turns
them into project tracks (keys with ids) and back: each project track caches its curve, so
evaluating and drawing never convert keys again (:func:`studio.timeline.curve_of`). On disk
and in ``studio.curves`` files a curve is ``{"channel", "keys": [{"t", "v", "interp"}]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

INTERPOLATIONS = ("linear", "smooth", "step", "bezier")
LINEAR, SMOOTH, STEP, BEZIER = 0, 1, 2, 3
_CODES_MSG = "interp codes must be 0 (linear), 1 (smooth), 2 (step) or 3 (bezier)"
_CODE = {name: code for code, name in enumerate(INTERPOLATIONS)}


def interp_code(interp: str) -> int:
    try:
        return _CODE[interp]
    except KeyError:
        raise ValueError(f"interp must be one of {INTERPOLATIONS}, got {interp!r}") from None


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _slopes(raw: Any, n: int) -> np.ndarray:
    """Tangent slopes as floats, NaN where automatic (``None``)."""
    if raw is None:
        return np.full(n, np.nan)
    out = np.array([np.nan if x is None else float(x) for x in np.asarray(raw, dtype=object)
                    .reshape(-1)], dtype=np.float64)
    if len(out) != n:
        raise ValueError("a curve needs as many tangents as times")
    if np.any(np.isinf(out)):
        raise ValueError("a curve's tangents must be finite numbers")
    return out


class Curve:
    """One channel's keys as read-only arrays, with the tangents of its smooth pieces
    computed once. Build it with :meth:`from_keys`, :meth:`from_samples` or directly from
    arrays (sorted by time on the way in)."""

    __slots__ = ("_tangents", "channel", "interp", "tan_in", "tan_out", "times", "values")

    def __init__(self, channel: str, times: Any, values: Any, interp: Any = "smooth",
                 tan_in: Any = None, tan_out: Any = None) -> None:
        t = np.array(times, dtype=np.float64).reshape(-1)
        v = np.array(values, dtype=np.float64).reshape(-1)
        if isinstance(interp, str):
            codes = np.full(len(t), interp_code(interp), dtype=np.int8)
        elif np.ndim(interp) == 0:
            code = int(interp)
            if code not in (LINEAR, SMOOTH, STEP, BEZIER):
                raise ValueError(_CODES_MSG)
            codes = np.full(len(t), code, dtype=np.int8)
        else:
            raw = np.asarray(interp).reshape(-1)
            if raw.dtype.kind in "US":
                codes = np.array([interp_code(str(x)) for x in raw], dtype=np.int8)
            else:
                codes = raw.astype(np.int8)
                if len(codes) and (codes.min() < 0 or codes.max() > BEZIER):
                    raise ValueError(_CODES_MSG)
        if not len(t) == len(v) == len(codes):
            raise ValueError("a curve needs as many values and interp codes as times")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ValueError("a curve's times and values must be finite numbers")
        ti, to = _slopes(tan_in, len(t)), _slopes(tan_out, len(t))
        if len(t) > 1 and np.any(np.diff(t) < 0):
            order = np.argsort(t, kind="stable")
            t, v, codes, ti, to = t[order], v[order], codes[order], ti[order], to[order]
        self.channel = str(channel)
        self.times = _frozen(t)
        self.values = _frozen(v)
        self.interp = _frozen(codes)
        self.tan_in = _frozen(ti)  # NaN: automatic
        self.tan_out = _frozen(to)
        self._tangents: np.ndarray | None = None

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_keys(cls, channel: str, keys: Iterable[Any]) -> Curve:
        """From keys as mappings ``{"t", "v", "interp"}`` or objects with ``t``, ``v`` and
        ``interp`` attributes (the project's keys)."""
        items = list(keys)
        n = len(items)
        if n and isinstance(items[0], Mapping):
            t = np.fromiter((float(k["t"]) for k in items), np.float64, n)
            v = np.fromiter((float(k["v"]) for k in items), np.float64, n)
            codes = np.fromiter((interp_code(k.get("interp", "linear")) for k in items),
                                np.int8, n)
            ti = [k.get("tan_in") for k in items]
            to = [k.get("tan_out") for k in items]
        else:
            t = np.fromiter((k.t for k in items), np.float64, n)
            v = np.fromiter((k.v for k in items), np.float64, n)
            codes = np.fromiter((_CODE[k.interp] for k in items), np.int8, n)
            ti = [getattr(k, "tan_in", None) for k in items]
            to = [getattr(k, "tan_out", None) for k in items]
        has = any(x is not None for x in ti) or any(x is not None for x in to)
        return cls(channel, t, v, codes, ti if has else None, to if has else None)

    @classmethod
    def from_samples(cls, channel: str, times: np.ndarray, values: np.ndarray,
                     tolerance: float = 0.01, interp: str = "smooth",
                     max_gap: float | None = None) -> Curve:
        """Few keys that reproduce a sampled curve within ``tolerance`` (see
        :func:`keys_from_samples`)."""
        kt, kv = _reduce(times, values, tolerance, interp, max_gap)
        return cls(channel, kt, kv, interp)

    @classmethod
    def constant(cls, channel: str, value: float = 0.0) -> Curve:
        return cls(channel, [0.0], [value], "linear")

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.times)

    def __repr__(self) -> str:
        return f"Curve({self.channel!r}, {len(self)} keys)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Curve):
            return NotImplemented
        return (self.channel == other.channel and np.array_equal(self.times, other.times)
                and np.array_equal(self.values, other.values)
                and np.array_equal(self.interp, other.interp)
                and np.array_equal(self.tan_in, other.tan_in, equal_nan=True)
                and np.array_equal(self.tan_out, other.tan_out, equal_nan=True))

    __hash__ = None  # type: ignore[assignment]

    @property
    def tangents(self) -> np.ndarray:
        if self._tangents is None:
            self._tangents = _frozen(_monotone_tangents(self.times, self.values))
        return self._tangents

    @property
    def start(self) -> float:
        return float(self.times[0]) if len(self.times) else 0.0

    @property
    def end(self) -> float:
        return float(self.times[-1]) if len(self.times) else 0.0

    def evaluate(self, t: np.ndarray | float) -> np.ndarray:
        """Values at times ``t`` (array in, array out; vectorised)."""
        times = np.atleast_1d(np.asarray(t, dtype=np.float64))
        kt, kv = self.times, self.values
        n = len(kt)
        if n == 0:
            return np.zeros_like(times)
        if n == 1:
            return np.full_like(times, kv[0])
        seg = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, n - 2)
        t0, t1 = kt[seg], kt[seg + 1]
        v0, v1 = kv[seg], kv[seg + 1]
        h = np.maximum(t1 - t0, 1e-12)
        s = np.clip((times - t0) / h, 0.0, 1.0)
        mode = self.interp[seg]
        out = v0 + (v1 - v0) * s  # linear
        smooth = (mode == SMOOTH) | (mode == BEZIER)
        if smooth.any():
            tan = self.tangents
            i = seg[smooth]
            ss, hs = s[smooth], h[smooth]
            a0, a1 = tan[i], tan[i + 1]
            bez = mode[smooth] == BEZIER
            if bez.any():
                out_slope, in_slope = self.tan_out[i], self.tan_in[i + 1]
                a0 = np.where(bez & np.isfinite(out_slope), out_slope, a0)
                a1 = np.where(bez & np.isfinite(in_slope), in_slope, a1)
            m0, m1 = a0 * hs, a1 * hs
            s2, s3 = ss * ss, ss * ss * ss
            out[smooth] = ((2 * s3 - 3 * s2 + 1) * v0[smooth] + (s3 - 2 * s2 + ss) * m0
                           + (-2 * s3 + 3 * s2) * v1[smooth] + (s3 - s2) * m1)
        step = mode == STEP
        out[step] = v0[step]
        out[times <= kt[0]] = kv[0]
        out[times >= kt[-1]] = kv[-1]
        return out

    def key_dicts(self) -> list[dict[str, Any]]:
        """The keys as ``{"t", "v", "interp"}`` (the JSON form; ``tan_in``/``tan_out``
        where set)."""
        out = []
        for t, v, c, ti, to in zip(self.times, self.values, self.interp, self.tan_in,
                                   self.tan_out, strict=True):
            key = {"t": float(t), "v": float(v), "interp": INTERPOLATIONS[int(c)]}
            if np.isfinite(ti):
                key["tan_in"] = float(ti)
            if np.isfinite(to):
                key["tan_out"] = float(to)
            out.append(key)
        return out

    def auto_tangent(self, index: int) -> float:
        """The automatic slope at key ``index`` (what a bezier key without a set tangent
        uses, and where editing one starts from)."""
        return float(self.tangents[index])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of a curve track: ``{"channel", "keys"}``."""
        return {"channel": self.channel, "keys": self.key_dicts()}

    def shifted(self, dt: float) -> Curve:
        """The same curve ``dt`` seconds later (times rounded to microseconds)."""
        return Curve(self.channel, np.round(self.times + dt, 6), self.values, self.interp,
                     self.tan_in, self.tan_out)


# ------------------------------------------------------------------------- key helpers


def make_key(t: float, v: float, interp: str = "smooth") -> dict[str, Any]:
    interp_code(interp)
    return {"t": round(float(t), 6), "v": round(float(v), 6), "interp": interp}


def make_track(channel: str, keys: Iterable[Any]) -> Curve:
    """A curve from keys (mappings or key objects)."""
    return Curve.from_keys(channel, keys)


def as_curve(curve: Any, channel: str = "") -> Curve:
    """A :class:`Curve` from a curve, a project track (cached view when it has one), a
    JSON track ``{"channel", "keys"}`` or a sequence of keys."""
    if isinstance(curve, Curve):
        return curve
    cached = getattr(curve, "cached", None)
    if cached is not None and hasattr(curve, "keys") and hasattr(curve, "channel"):
        return cached(lambda tr: Curve.from_keys(tr.channel, tr.keys))
    if isinstance(curve, Mapping):
        return Curve.from_keys(str(curve.get("channel", channel)), curve.get("keys", []))
    return Curve.from_keys(channel, curve)


def evaluate_curve(curve: Any, t: np.ndarray | float) -> np.ndarray:
    """Values of ``curve`` (anything :func:`as_curve` takes) at times ``t``."""
    return as_curve(curve).evaluate(t)


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
    if n > 2:
        d0, d1 = d[:-1], d[1:]
        h0, h1 = h[:-1], h[1:]
        w0, w1 = 2 * h1 + h0, h1 + 2 * h0
        same_sign = d0 * d1 > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = (w0 + w1) / (w0 / d0 + w1 / d1)
        m[1:-1] = np.where(same_sign, inner, 0.0)
    return m


# ----------------------------------------------------------------------- from samples


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


def _reduce(times: np.ndarray, values: np.ndarray, tolerance: float, interp: str,
            max_gap: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Key times and values (rounded to 1e-6) reproducing the samples within
    ``tolerance``: Ramer–Douglas–Peucker, then, for smooth keys, more keys where the
    curve still strays."""
    code = interp_code(interp)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    idx = simplify(times, values, tolerance, max_gap)
    if code == SMOOTH:
        for _ in range(8):
            curve = Curve("", np.round(times[idx], 6), np.round(values[idx], 6), code)
            err = np.abs(curve.evaluate(times) - values)
            bad = np.nonzero(err > tolerance)[0]
            if not len(bad):
                break
            segment = np.searchsorted(idx, bad, side="right") - 1
            # the worst sample of each segment that strays
            order = np.lexsort((-err[bad], segment))
            first = np.ones(len(order), dtype=bool)
            first[1:] = segment[order][1:] != segment[order][:-1]
            idx = np.union1d(idx, bad[order][first])
    return np.round(times[idx], 6), np.round(values[idx], 6)


def keys_from_samples(
    times: np.ndarray,
    values: np.ndarray,
    tolerance: float = 0.01,
    interp: str = "smooth",
    max_gap: float | None = None,
) -> list[dict[str, Any]]:
    """Few keys (dicts) that reproduce a sampled curve within ``tolerance`` (plus key
    rounding)."""
    kt, kv = _reduce(times, values, tolerance, interp, max_gap)
    return [{"t": float(t), "v": float(v), "interp": interp} for t, v in zip(kt, kv, strict=True)]


def track_from_samples(
    channel: str, times: np.ndarray, values: np.ndarray, tolerance: float = 0.01,
    interp: str = "smooth",
) -> Curve:
    return Curve.from_samples(channel, times, values, tolerance, interp)


def curve_documents(curves: Iterable[Any]) -> list[dict[str, Any]]:
    """JSON tracks (``{"channel", "keys"}``) for curves (or tracks already in that form)."""
    return [c.to_dict() if isinstance(c, Curve) else dict(c) for c in curves]


def validate_track(track: Any) -> list[str]:
    """Problems with a JSON track (empty list when it is well formed)."""
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


__all__ = [
    "BEZIER", "INTERPOLATIONS", "LINEAR", "SMOOTH", "STEP", "Curve", "as_curve", "curve_documents",
    "evaluate_curve", "interp_code", "keys_from_samples", "make_key", "make_track", "simplify",
    "track_from_samples", "validate_track",
]

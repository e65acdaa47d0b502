"""Labelled parameters of the procedural faces: spec, sampling and the label vector.

Every rendered face is fully described by a dict ``{name: np.ndarray of shape (N,)}`` over
:data:`PARAM_NAMES` (a fixed, documented order; the label vector of a face lists the values
in this order). Categorical parameters hold the index into :data:`VOCABULARIES` ``[name]``
as a float in the vector and as ``int64`` in the dict.

Conventions (the renderer relies on them):

* Image coordinates: x to the right, y down. Angles in degrees.
* ``head_yaw`` > 0 turns the face towards the image's right (the subject's left);
  ``head_pitch`` > 0 lifts the chin (the face looks up); ``head_roll`` > 0 turns the head
  clockwise in the image. ``gaze_x`` > 0 looks towards the image's right, ``gaze_y`` > 0 down.
* ``light_azimuth`` > 0 puts the key light on the image's right; ``light_elevation`` > 0
  above the face.
* Colours (``hair_r``, ``iris_g``, ``bg_b``, ...) are sRGB in [0, 1]. ``hair_r/g/b`` and
  ``iris_r/g/b`` are *derived*: :func:`sample_params` sets them from ``hair_color`` /
  ``hair_shade`` and ``iris_color`` unless you override them; the renderer draws the RGB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Kind = Literal["continuous", "categorical"]
Sampler = Callable[[int, np.random.Generator, dict[str, np.ndarray]], np.ndarray]

# --- vocabularies -------------------------------------------------------------------------

HAIR_STYLES = ("bald", "short", "long", "bob", "bun", "curly")
HAIR_COLORS = ("black", "brown", "blond", "red", "grey", "blue", "pink", "purple", "green")
DYED_HAIR = frozenset({"blue", "pink", "purple", "green"})
IRIS_COLORS = ("brown", "dark_brown", "hazel", "green", "blue", "grey")
LIP_COLORS = ("natural", "pink", "red", "berry", "nude")
FACIAL_HAIR = ("none", "stubble", "moustache", "beard")
GLASSES = ("none", "round", "square")
GLASSES_COLORS = ("black", "tortoise", "gold", "silver", "red", "blue")
NECKLINES = ("crew", "v", "collar")
BACKGROUNDS = ("flat", "vertical", "radial", "bokeh")
NO_YES = ("no", "yes")

# sRGB base colours; hair_shade in [-1, 1] darkens or lightens them.
HAIR_RGB = {
    "black": (0.09, 0.075, 0.07),
    "brown": (0.36, 0.22, 0.13),
    "blond": (0.84, 0.68, 0.42),
    "red": (0.62, 0.24, 0.10),
    "grey": (0.66, 0.65, 0.64),
    "blue": (0.16, 0.36, 0.78),
    "pink": (0.93, 0.45, 0.66),
    "purple": (0.45, 0.24, 0.66),
    "green": (0.18, 0.58, 0.40),
}
IRIS_RGB = {
    "brown": (0.45, 0.27, 0.13),
    "dark_brown": (0.22, 0.13, 0.07),
    "hazel": (0.52, 0.43, 0.20),
    "green": (0.30, 0.52, 0.30),
    "blue": (0.30, 0.50, 0.76),
    "grey": (0.52, 0.58, 0.62),
}


@dataclass(frozen=True)
class ParamSpec:
    """One labelled parameter. ``low``/``high`` bound continuous values (and are the
    index range of categorical ones); ``choices`` names the categories."""

    name: str
    kind: Kind
    low: float = 0.0
    high: float = 1.0
    choices: tuple[str, ...] = ()
    group: str = "identity"
    doc: str = ""

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"


def _c(name: str, low: float, high: float, group: str, doc: str) -> ParamSpec:
    return ParamSpec(name, "continuous", float(low), float(high), (), group, doc)


def _k(name: str, choices: Sequence[str], group: str, doc: str) -> ParamSpec:
    return ParamSpec(name, "categorical", 0.0, float(len(choices) - 1), tuple(choices), group, doc)


PARAM_SPECS: tuple[ParamSpec, ...] = (
    # identity: head and skin
    _c("masculine", 0, 1, "identity", "0 feminine .. 1 masculine: jaw, brows, neck, priors"),
    _c("age", 0, 1, "identity", "0 young .. 1 old: folds, crow's feet, grey hair prior"),
    _c("face_width", 0, 1, "identity", "narrow .. wide head"),
    _c("face_length", 0, 1, "identity", "short .. long lower face (chin height)"),
    _c("jaw_width", 0, 1, "identity", "narrow (V) .. wide jaw"),
    _c("chin_shape", 0, 1, "identity", "pointed/round .. square chin"),
    _c("cheek_fullness", 0, 1, "identity", "flat .. full cheeks"),
    _c("skin_tone", 0, 1, "identity", "light .. dark skin"),
    _c("skin_undertone", -1, 1, "identity", "cool/pink .. warm/olive"),
    _c("freckles", 0, 1, "identity", "amount of freckles"),
    _c("blush", 0, 1, "identity", "cheek redness"),
    # hair
    _k("hair_style", HAIR_STYLES, "identity", "hair style"),
    _k("fringe", NO_YES, "identity", "fringe (bangs) over the forehead"),
    _c("hair_part", -1, 1, "identity", "parting / sweep side"),
    _c("hair_volume", 0, 1, "identity", "thin .. voluminous hair"),
    _c("hair_length", 0, 1, "identity", "length of long hair below the chin"),
    _k("hair_color", HAIR_COLORS, "identity", "hair colour category (index)"),
    _c("hair_shade", -1, 1, "identity", "darker .. lighter within the hair colour"),
    _c("hair_r", 0, 1, "identity", "hair sRGB red (derived from hair_color)"),
    _c("hair_g", 0, 1, "identity", "hair sRGB green (derived)"),
    _c("hair_b", 0, 1, "identity", "hair sRGB blue (derived)"),
    # eyes and brows
    _c("eye_size", 0, 1, "identity", "small .. large eyes"),
    _c("eye_shape", 0, 1, "identity", "narrow almond .. round eyes"),
    _c("eye_tilt", -1, 1, "identity", "outer corners down .. up"),
    _k("iris_color", IRIS_COLORS, "identity", "iris colour category (index)"),
    _c("iris_r", 0, 1, "identity", "iris sRGB red (derived from iris_color)"),
    _c("iris_g", 0, 1, "identity", "iris sRGB green (derived)"),
    _c("iris_b", 0, 1, "identity", "iris sRGB blue (derived)"),
    _c("lashes", 0, 1, "identity", "lash line / eyeliner strength"),
    _c("brow_thickness", 0, 1, "identity", "thin .. thick eyebrows"),
    _c("brow_arch", 0, 1, "identity", "flat .. arched eyebrows"),
    _c("brow_darkness", 0, 1, "identity", "brow colour: hair colour .. near black"),
    # nose, mouth, ears
    _c("nose_length", 0, 1, "identity", "short .. long nose"),
    _c("nose_width", 0, 1, "identity", "narrow .. wide nose"),
    _c("lip_fullness", 0, 1, "identity", "thin .. full lips"),
    _c("mouth_width", 0, 1, "identity", "narrow .. wide mouth"),
    _k("lip_color", LIP_COLORS, "identity", "lip colour / lipstick"),
    _c("ear_size", 0, 1, "identity", "small .. large ears"),
    _c("ear_protrusion", 0, 1, "identity", "flat .. protruding ears"),
    # accessories and clothes
    _k("facial_hair", FACIAL_HAIR, "identity", "facial hair"),
    _k("glasses", GLASSES, "identity", "glasses: none, round or square frames"),
    _k("glasses_color", GLASSES_COLORS, "identity", "glasses frame colour"),
    _k("neckline", NECKLINES, "identity", "garment neckline"),
    _c("cloth_r", 0, 1, "identity", "garment sRGB red"),
    _c("cloth_g", 0, 1, "identity", "garment sRGB green"),
    _c("cloth_b", 0, 1, "identity", "garment sRGB blue"),
    # expression
    _c("mouth_open", 0, 1, "expression", "jaw / mouth opening"),
    _c("smile", -0.5, 1, "expression", "frown (<0) .. broad smile"),
    _c("pucker", 0, 1, "expression", "lip pucker"),
    _c("brow_raise", -1, 1, "expression", "frown/furrow (<0) .. raised brows"),
    _c("blink", 0, 1, "expression", "eyelid closure (1 = closed)"),
    _c("gaze_x", -1, 1, "expression", "gaze to the image's left .. right"),
    _c("gaze_y", -1, 1, "expression", "gaze up .. down"),
    # pose (degrees)
    _c("head_yaw", -40, 40, "pose", "degrees; > 0 face turns to the image's right"),
    _c("head_pitch", -25, 25, "pose", "degrees; > 0 chin up"),
    _c("head_roll", -15, 15, "pose", "degrees; > 0 clockwise in the image"),
    # lighting
    _c("light_azimuth", -75, 75, "lighting", "degrees; > 0 key light from the image's right"),
    _c("light_elevation", -15, 65, "lighting", "degrees; > 0 from above"),
    _c("light_intensity", 0.3, 1.3, "lighting", "key light strength"),
    _c("ambient", 0.15, 0.65, "lighting", "ambient / fill light"),
    _c("light_warmth", -1, 1, "lighting", "cool (bluish) .. warm (orange) key light"),
    # background
    _k("bg_kind", BACKGROUNDS, "background", "flat, vertical gradient, radial, bokeh"),
    _c("bg_r", 0, 1, "background", "background sRGB red (first colour)"),
    _c("bg_g", 0, 1, "background", "background sRGB green"),
    _c("bg_b", 0, 1, "background", "background sRGB blue"),
    _c("bg2_r", 0, 1, "background", "second background colour, red"),
    _c("bg2_g", 0, 1, "background", "second background colour, green"),
    _c("bg2_b", 0, 1, "background", "second background colour, blue"),
    # texture noise
    _c("texture_seed", 0, 65535, "render", "integer seed of strand, pore and freckle noise"),
)

SPECS: dict[str, ParamSpec] = {s.name: s for s in PARAM_SPECS}
PARAM_NAMES: tuple[str, ...] = tuple(s.name for s in PARAM_SPECS)
CATEGORICAL: tuple[str, ...] = tuple(s.name for s in PARAM_SPECS if s.categorical)
VOCABULARIES: dict[str, list[str]] = {s.name: list(s.choices) for s in PARAM_SPECS if s.categorical}
DERIVED: dict[str, tuple[str, ...]] = {
    "hair_color": ("hair_r", "hair_g", "hair_b"),
    "iris_color": ("iris_r", "iris_g", "iris_b"),
}


@dataclass(frozen=True)
class Uniform:
    """An override that samples uniformly in ``[low, high]`` instead of a fixed value."""

    low: float
    high: float


# --- sampling -----------------------------------------------------------------------------


def _beta(n: int, rng: np.random.Generator, a: float, b: float, lo: float, hi: float):
    return lo + (hi - lo) * rng.beta(a, b, n)


def _clipped_normal(n, rng, sd, lo, hi, mean=0.0):
    return np.clip(rng.normal(mean, sd, n), lo, hi)


def _mostly_zero(n, rng, p_zero, a, b, hi=1.0):
    """0 with probability ``p_zero``, else a beta(a, b) sample scaled to ``hi``."""
    v = rng.beta(a, b, n) * hi
    return np.where(rng.random(n) < p_zero, 0.0, v)


def _categorical(n, rng, probs):
    p = np.asarray(probs, dtype=float)
    p = p / p.sum(axis=-1, keepdims=True)
    if p.ndim == 1:
        return rng.choice(len(p), size=n, p=p)
    cum = np.cumsum(p, axis=1)
    r = rng.random((n, 1))
    return np.minimum((r > cum).sum(axis=1), p.shape[1] - 1)


def _hair_style(n, rng, ctx):
    m = ctx["masculine"]
    age = ctx["age"]
    fem = np.stack([0.0 * m + 0.005, 0.16 + 0 * m, 0.36 + 0 * m, 0.2 + 0 * m, 0.12 + 0 * m,
                    0.16 + 0 * m], axis=1)
    mas = np.stack([0.06 + 0.22 * age, 0.62 + 0 * m, 0.07 + 0 * m, 0.03 + 0 * m,
                    0.02 + 0 * m, 0.14 + 0 * m], axis=1)
    w = m[:, None]
    return _categorical(n, rng, (1 - w) * fem + w * mas)


def _fringe(n, rng, ctx):
    style = ctx["hair_style"]
    p = np.select([style == 0, style == 4, style == 5], [0.0, 0.05, 0.2], 0.38)
    return (rng.random(n) < p).astype(np.int64)


def _hair_color(n, rng, ctx):
    age = ctx["age"]
    base = np.array([0.30, 0.33, 0.15, 0.08, 0.0, 0.035, 0.035, 0.035, 0.035])
    grey = np.zeros(len(HAIR_COLORS))
    grey[HAIR_COLORS.index("grey")] = 1.0
    g = np.clip((age - 0.55) * 1.6, 0, 0.8)[:, None] + 0.015
    return _categorical(n, rng, (1 - g) * base[None, :] + g * grey[None, :])


def _facial_hair(n, rng, ctx):
    m = ctx["masculine"]
    p_any = np.clip((m - 0.55) * 1.7, 0, 0.75)
    kind = _categorical(n, rng, [0.4, 0.2, 0.4]) + 1
    return np.where(rng.random(n) < p_any, kind, 0)


def _glasses(n, rng, ctx):
    p = 0.16 + 0.25 * ctx["age"]
    kind = _categorical(n, rng, [0.5, 0.5]) + 1
    return np.where(rng.random(n) < p, kind, 0)


def _lip_color(n, rng, ctx):
    m = ctx["masculine"][:, None]
    fem = np.array([0.4, 0.18, 0.14, 0.14, 0.14])[None, :]
    mas = np.array([1.0, 0, 0, 0, 0])[None, :]
    return _categorical(n, rng, (1 - m) * fem + m * mas)


def _bg_colour(n, rng, ctx):
    """Muted studio colours, sometimes saturated; the second colour is near the first."""
    hue = rng.random(n)
    sat = _beta(n, rng, 1.4, 2.6, 0.0, 0.85)
    val = _beta(n, rng, 2.5, 2.0, 0.15, 0.97)
    return _hsv_to_rgb(hue, sat, val)


def _hsv_to_rgb(h, s, v):
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=1)


def _shift_colour(rgb, rng, amount):
    return np.clip(rgb + rng.normal(0, amount, rgb.shape), 0.0, 1.0)


def _u(lo: float, hi: float) -> Sampler:
    return lambda n, rng, ctx: rng.uniform(lo, hi, n)


def _b(a: float, b: float, lo: float = 0.0, hi: float = 1.0) -> Sampler:
    return lambda n, rng, ctx: _beta(n, rng, a, b, lo, hi)


# Samplers in sampling order; a sampler sees what was sampled (or overridden) before it.
SAMPLERS: dict[str, Sampler] = {
    "masculine": lambda n, rng, ctx: np.clip(
        np.where(rng.random(n) < 0.5, rng.beta(2, 6, n), rng.beta(6, 2, n)), 0, 1
    ),
    "age": _b(1.6, 2.6),
    "face_width": lambda n, rng, ctx: _clipped_normal(n, rng, 0.2, 0, 1, 0.45 + 0.1 * ctx["masculine"]),
    "face_length": _b(2.5, 2.5),
    "jaw_width": lambda n, rng, ctx: np.clip(
        rng.beta(2.5, 2.5, n) * 0.7 + 0.3 * ctx["masculine"], 0, 1
    ),
    "chin_shape": lambda n, rng, ctx: np.clip(
        rng.beta(2, 2.5, n) * 0.75 + 0.25 * ctx["masculine"], 0, 1
    ),
    "cheek_fullness": _b(2, 2),
    "skin_tone": lambda n, rng, ctx: np.clip(
        np.where(rng.random(n) < 0.55, rng.beta(1.6, 3.2, n), rng.beta(2.2, 1.6, n)), 0, 1
    ),
    "skin_undertone": _u(-1, 1),
    "freckles": lambda n, rng, ctx: _mostly_zero(n, rng, 0.82, 2, 2),
    "blush": _b(1.5, 3),
    "hair_style": _hair_style,
    "fringe": _fringe,
    "hair_part": _u(-1, 1),
    "hair_volume": _b(2, 2),
    "hair_length": _b(2, 2),
    "hair_color": _hair_color,
    "hair_shade": lambda n, rng, ctx: _clipped_normal(n, rng, 0.45, -1, 1),
    "eye_size": _b(2.2, 2.2),
    "eye_shape": _b(2, 2),
    "eye_tilt": lambda n, rng, ctx: _clipped_normal(n, rng, 0.4, -1, 1, 0.1),
    "iris_color": lambda n, rng, ctx: _categorical(n, rng, [0.3, 0.25, 0.13, 0.1, 0.14, 0.08]),
    "lashes": lambda n, rng, ctx: np.clip(
        rng.beta(2, 2, n) * (1 - 0.6 * ctx["masculine"]) + 0.15, 0, 1
    ),
    "brow_thickness": lambda n, rng, ctx: np.clip(
        rng.beta(2, 2.5, n) * 0.75 + 0.3 * ctx["masculine"], 0, 1
    ),
    "brow_arch": lambda n, rng, ctx: np.clip(
        rng.beta(2, 2, n) * 0.8 + 0.25 * (1 - ctx["masculine"]), 0, 1
    ),
    "brow_darkness": _b(2, 2),
    "nose_length": _b(2.2, 2.2),
    "nose_width": lambda n, rng, ctx: np.clip(
        rng.beta(2.2, 2.2, n) * 0.8 + 0.2 * ctx["masculine"], 0, 1
    ),
    "lip_fullness": lambda n, rng, ctx: np.clip(
        rng.beta(2.2, 2.2, n) * 0.8 + 0.2 * (1 - ctx["masculine"]), 0, 1
    ),
    "mouth_width": _b(2.2, 2.2),
    "lip_color": _lip_color,
    "ear_size": _b(2.2, 2.2),
    "ear_protrusion": _b(2, 3),
    "facial_hair": _facial_hair,
    "glasses": _glasses,
    "glasses_color": lambda n, rng, ctx: _categorical(n, rng, [0.4, 0.2, 0.13, 0.12, 0.08, 0.07]),
    "neckline": lambda n, rng, ctx: _categorical(n, rng, [0.5, 0.2, 0.3]),
    "mouth_open": lambda n, rng, ctx: _mostly_zero(n, rng, 0.55, 1.3, 2.5),
    "smile": lambda n, rng, ctx: np.clip(
        np.where(rng.random(n) < 0.12, rng.uniform(-0.5, 0, n), rng.beta(1.3, 1.7, n)), -0.5, 1
    ),
    "pucker": lambda n, rng, ctx: _mostly_zero(n, rng, 0.85, 1.5, 2.0),
    "brow_raise": lambda n, rng, ctx: _clipped_normal(n, rng, 0.4, -1, 1),
    "blink": lambda n, rng, ctx: np.where(
        rng.random(n) < 0.08, rng.uniform(0.7, 1.0, n), _mostly_zero(n, rng, 0.6, 1, 4, 0.6)
    ),
    "gaze_x": lambda n, rng, ctx: _clipped_normal(n, rng, 0.35, -1, 1),
    "gaze_y": lambda n, rng, ctx: _clipped_normal(n, rng, 0.3, -1, 1),
    "head_yaw": lambda n, rng, ctx: _clipped_normal(n, rng, 14.0, -40, 40),
    "head_pitch": lambda n, rng, ctx: _clipped_normal(n, rng, 8.0, -25, 25),
    "head_roll": lambda n, rng, ctx: _clipped_normal(n, rng, 4.0, -15, 15),
    "light_azimuth": _u(-75, 75),
    "light_elevation": _b(2, 2, -15, 65),
    "light_intensity": _b(2.5, 2, 0.3, 1.3),
    "ambient": _b(2, 2, 0.15, 0.65),
    "light_warmth": lambda n, rng, ctx: _clipped_normal(n, rng, 0.4, -1, 1, 0.1),
    "bg_kind": lambda n, rng, ctx: _categorical(n, rng, [0.25, 0.3, 0.3, 0.15]),
    "texture_seed": lambda n, rng, ctx: rng.integers(0, 65536, n).astype(np.float64),
}


def _cloth(n, rng, ctx):
    return _hsv_to_rgb(rng.random(n), _beta(n, rng, 1.3, 2.0, 0, 0.9), _beta(n, rng, 2, 2, 0.08, 0.95))


def _bg2_colour(n, rng, ctx):
    bg = np.stack([ctx["bg_r"], ctx["bg_g"], ctx["bg_b"]], axis=1)
    return _shift_colour(bg * rng.uniform(0.45, 1.25, (n, 1)), rng, 0.08)


GROUP_SAMPLERS: dict[str, Sampler] = {"cloth": _cloth, "bg": _bg_colour, "bg2": _bg2_colour}
_GROUP_OF = {f"{g}_{ch}": g for g in GROUP_SAMPLERS for ch in "rgb"}
_DERIVED_NAMES = frozenset(n for names in DERIVED.values() for n in names)


def hair_rgb(category: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """sRGB (N, 3) of hair from its category index and ``hair_shade`` in [-1, 1]."""
    base = np.array([HAIR_RGB[c] for c in HAIR_COLORS])[np.asarray(category, dtype=np.int64)]
    shade = np.asarray(shade, dtype=float)[:, None]
    lighter = base + (1 - base) * 0.45 * shade
    darker = base * (1 + 0.55 * shade)
    return np.clip(np.where(shade > 0, lighter, darker), 0, 1)


def iris_rgb(category: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    base = np.array([IRIS_RGB[c] for c in IRIS_COLORS])[np.asarray(category, dtype=np.int64)]
    if rng is not None:
        base = _shift_colour(base, rng, 0.03)
    return base


def _to_index(name: str, value: Any) -> Any:
    """Category names (or index numbers) to indices."""
    vocab = VOCABULARIES[name]
    if isinstance(value, str):
        key = value.strip().lower()
        if key in vocab:
            return vocab.index(key)
        try:
            value = float(key)
        except ValueError:
            raise ValueError(f"{name}: unknown value {value!r}; choose from {vocab}") from None
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        idx = int(round(float(value)))
        if not 0 <= idx < len(vocab):
            raise ValueError(f"{name}: index {idx} out of range 0..{len(vocab) - 1}")
        return idx
    return value


def _resolve_override(name: str, value: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    spec = SPECS[name]
    if isinstance(value, Uniform):
        if spec.categorical:
            lo, hi = _to_index(name, value.low), _to_index(name, value.high)
            return rng.integers(lo, hi + 1, n)
        return rng.uniform(value.low, value.high, n)
    if isinstance(value, np.ndarray) and value.ndim == 1 and len(value) == n:
        out = value
    elif isinstance(value, (list, tuple, np.ndarray)):  # choose among these values
        values = [_to_index(name, v) if spec.categorical else float(v) for v in value]
        if not values:
            raise ValueError(f"{name}: empty list of values")
        out = np.asarray(values)[rng.integers(0, len(values), n)]
    else:
        v = _to_index(name, value) if spec.categorical else float(value)
        out = np.full(n, v)
    out = np.asarray(out)
    if spec.categorical:
        out = np.asarray([_to_index(name, v) for v in out], dtype=np.int64) if out.dtype.kind in "US" else out
        return out.astype(np.int64)
    return out.astype(np.float64)


def sample_params(n: int, rng: np.random.Generator, **overrides: Any) -> dict[str, np.ndarray]:
    """Sample ``n`` faces. Each override fixes a parameter for all faces:

    * a scalar or category name (``hair_color="red"``, ``glasses=1``, ``smile=0.8``);
    * a list or tuple: each face picks one of the values (``glasses=["round", "square"]``);
    * :class:`Uniform` ``(low, high)``: uniform in a range;
    * an array of length ``n``: one value per face.

    Parameters sampled later are drawn given the earlier ones (facial hair depends on
    ``masculine``, hair RGB on ``hair_color``), so overrides stay coherent. The random
    stream does not depend on the overrides, so two calls with the same seed differ
    only in what was overridden.
    """
    unknown = sorted(set(overrides) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; known: {', '.join(PARAM_NAMES)}")
    n = int(n)
    override_rng = np.random.default_rng(rng.integers(0, 2**63))
    jitter_rng = np.random.default_rng(rng.integers(0, 2**63))
    out: dict[str, np.ndarray] = {}
    for name in PARAM_NAMES:
        spec = SPECS[name]
        if name in _DERIVED_NAMES:
            continue
        group = _GROUP_OF.get(name)
        if group is not None:
            if name.endswith("_r"):  # sample the colour triple once
                rgb = GROUP_SAMPLERS[group](n, rng, out)
                for i, ch in enumerate("rgb"):
                    out[f"{group}_{ch}"] = rgb[:, i]
            sampled = out[name]
        else:
            sampled = SAMPLERS[name](n, rng, out)
        value = _resolve_override(name, overrides[name], n, override_rng) if name in overrides else sampled
        if spec.categorical:
            out[name] = np.asarray(value).astype(np.int64)
        else:
            out[name] = np.clip(np.asarray(value, dtype=np.float64), spec.low, spec.high)
    _derive(out, overrides, override_rng, jitter_rng)
    if "fringe" not in overrides:  # a style without hair has no fringe
        out["fringe"] = np.where(out["hair_style"] == 0, 0, out["fringe"]).astype(np.int64)
    return {name: out[name] for name in PARAM_NAMES}


def _derive(out: dict[str, np.ndarray], overrides: Mapping[str, Any], override_rng, jitter_rng):
    n = len(out["hair_color"])
    derived = {
        "hair_color": hair_rgb(out["hair_color"], out["hair_shade"]),
        "iris_color": iris_rgb(out["iris_color"], jitter_rng),
    }
    for cat, names in DERIVED.items():
        for i, name in enumerate(names):
            if name in overrides:
                out[name] = np.clip(_resolve_override(name, overrides[name], n, override_rng), 0, 1)
            else:
                out[name] = derived[cat][:, i]


def default_params(n: int = 1, **overrides: Any) -> dict[str, np.ndarray]:
    """A neutral, frontal, average face (useful for tests and sweeps)."""
    base: dict[str, Any] = {s.name: (0 if s.categorical else 0.5) for s in PARAM_SPECS}
    base.update(
        masculine=0.5, age=0.3, skin_undertone=0.0, freckles=0.0, blush=0.2,
        hair_style="short", fringe="no", hair_part=0.3, hair_color="brown", hair_shade=0.0,
        eye_tilt=0.1, iris_color="brown", lashes=0.5, lip_color="natural",
        facial_hair="none", glasses="none", glasses_color="black", neckline="crew",
        cloth_r=0.25, cloth_g=0.35, cloth_b=0.5, mouth_open=0.0, smile=0.15, pucker=0.0,
        brow_raise=0.0, blink=0.0, gaze_x=0.0, gaze_y=0.0, head_yaw=0.0, head_pitch=0.0,
        head_roll=0.0, light_azimuth=-25.0, light_elevation=30.0, light_intensity=0.95,
        ambient=0.4, light_warmth=0.1, bg_kind="vertical", bg_r=0.55, bg_g=0.6, bg_b=0.66,
        bg2_r=0.32, bg2_g=0.36, bg2_b=0.42, texture_seed=1234.0,
    )
    base.update(overrides)
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    for name in PARAM_NAMES:
        if name not in _DERIVED_NAMES:
            out[name] = _resolve_override(name, base[name], n, rng)
    _derive(out, overrides, rng, None)
    return {name: out[name] for name in PARAM_NAMES}


# --- label vectors ------------------------------------------------------------------------


def params_to_vector(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N, P) float32 label matrix in :data:`PARAM_NAMES` order (categoricals as indices)."""
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"missing parameter(s): {missing}")
    cols = [np.asarray(params[k], dtype=np.float64).reshape(-1) for k in PARAM_NAMES]
    return np.stack(cols, axis=1).astype(np.float32)


def vector_to_params(vec: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of :func:`params_to_vector` (categoricals rounded back to ``int64``)."""
    vec = np.asarray(vec, dtype=np.float64)
    if vec.ndim == 1:
        vec = vec[None, :]
    if vec.shape[1] != len(PARAM_NAMES):
        raise ValueError(f"expected {len(PARAM_NAMES)} columns, got {vec.shape[1]}")
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(PARAM_NAMES):
        col = vec[:, i]
        out[name] = np.rint(col).astype(np.int64) if SPECS[name].categorical else col.copy()
    return out


def index_params(params: Mapping[str, np.ndarray], idx: Any) -> dict[str, np.ndarray]:
    """Select faces (a slice, an index array or a boolean mask) from a params dict."""
    return {k: np.asarray(v)[idx] for k, v in params.items()}


def param_count(params: Mapping[str, np.ndarray]) -> int:
    return len(np.asarray(params[PARAM_NAMES[0]]).reshape(-1))

"""Finding controls in a face model's W space, for any model (the default, imported, trained).

Two kinds, both plain arrays in and out:

* **Unsupervised** (GANSpace-style): PCA of many sampled ``w``. Component ``k`` applied to a
  range of w layers ``[a, b)`` is an unnamed control; the artist previews, names and keeps
  it. :func:`pca_directions`, :func:`pca_control`.
* **Supervised** (InterFaceGAN-style): a linear fit in W of a label measured on generated
  faces. The normal of the fit is the control's direction; *conditioning* projects out the
  directions of chosen other controls, so that moving one moves the others little.
  :func:`fit_direction`, :func:`orthogonalise`.

Labels are computed from 68 landmarks (:func:`measure`): mouth openness, lip width, eye
openness (eye aspect ratio), brow height, head yaw, pitch and roll; dlib finds the landmarks
on generated faces (:mod:`studio.train.face_labels`, which may use the photo pipeline).

:func:`discover_job` runs the whole thing as a job (sample, render, measure, fit, PCA) and
returns :class:`Discovered` controls: the CLI's ``studio controls discover`` and the Face
panel run the same job.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress

if TYPE_CHECKING:
    from studio.face.controls import Control, ControlSet
    from studio.face.engine import FaceEngine

# Landmark-measured labels: name -> (group, what it measures)
LABELS: dict[str, tuple[str, str]] = {
    "mouth_open": ("Expression", "gap between the inner lips / eye distance"),
    "lip_width": ("Expression", "mouth corner to corner / eye distance"),
    "eye_open": ("Expression", "eye aspect ratio (both eyes)"),
    "brow_height": ("Expression", "brows above the eye line / eye distance"),
    "yaw": ("Pose", "head turn left/right (degrees, from the nose against the jaw)"),
    "pitch": ("Pose", "head nod (the nose's height between eyes and mouth)"),
    "roll": ("Pose", "head tilt (degrees of the eye line)"),
}
POSE = ("yaw", "pitch", "roll")
# Default conditioning: expressions should not turn the head.
DEFAULT_CONDITION: dict[str, tuple[str, ...]] = {
    name: POSE for name, (group, _) in LABELS.items() if group == "Expression"}
SLIDER_SIGMAS = 3.0  # slider range: +-3 standard deviations of the samples along a direction


# --------------------------------------------------------------------------- landmarks


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _ear(eye: np.ndarray) -> float:
    """Eye aspect ratio of 6 eye landmarks: (|p2-p6| + |p3-p5|) / (2 |p1-p4|)."""
    width = _dist(eye[0], eye[3])
    return (_dist(eye[1], eye[5]) + _dist(eye[2], eye[4])) / (2.0 * width) if width > 0 else math.nan


def measure(landmarks: np.ndarray) -> dict[str, float]:
    """The labels of one face from its 68 landmarks (iBUG 300-W layout). Lengths are
    divided by the distance between the eye centres; angles are in degrees. NaN where the
    landmarks are degenerate."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {lm.shape}")
    nan = dict.fromkeys(LABELS, math.nan)
    if not np.isfinite(lm).all():
        return nan
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = _dist(eye_l, eye_r)
    if iod < 1e-6:
        return nan
    ex = (eye_r - eye_l) / iod  # the eye line's direction
    ey = np.array([-ex[1], ex[0]])  # perpendicular, pointing down the face
    eye_mid = (eye_l + eye_r) / 2

    def down(p: np.ndarray) -> np.ndarray:  # signed distance below the eye line
        return (np.asarray(p) - eye_mid) @ ey

    mouth_open = float(np.mean([_dist(lm[t], lm[b]) for t, b in ((61, 67), (62, 66), (63, 65))]))
    mouth_mid = (lm[48] + lm[54]) / 2
    jaw_l, jaw_r, nose = lm[0], lm[16], lm[30]
    half_w = _dist(jaw_l, jaw_r) / 2
    # yaw: the nose tip's offset from the jaw's midpoint, as a sine of the turn
    off = (nose - (jaw_l + jaw_r) / 2) @ ex / half_w if half_w > 0 else math.nan
    mouth_down = float(down(mouth_mid))
    return {
        "mouth_open": mouth_open / iod,
        "lip_width": _dist(lm[48], lm[54]) / iod,
        "eye_open": (_ear(lm[36:42]) + _ear(lm[42:48])) / 2,
        "brow_height": float(-np.mean(down(lm[17:27]))) / iod,
        "yaw": math.degrees(math.asin(max(-1.0, min(1.0, off)))) if math.isfinite(off) else off,
        "pitch": float(down(nose)) / mouth_down if mouth_down > 1e-6 else math.nan,
        "roll": math.degrees(math.atan2(ex[1], ex[0])),
    }


# --------------------------------------------------------------------------- linear algebra


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not math.isfinite(n) or n < 1e-12:
        raise StudioError("the direction is zero: the samples carry no signal for it")
    return v / n


def orthogonalise(direction: np.ndarray, others: Sequence[np.ndarray]) -> np.ndarray:
    """``direction`` with the span of ``others`` projected out (conditioning), unit length.
    Works on flattened arrays, so ``[w_dim]`` and ``[num_ws, w_dim]`` directions mix as
    long as each pair has the same shape."""
    d = np.asarray(direction, np.float64).ravel()
    if not others:
        return _unit(d).reshape(np.shape(direction))
    basis = np.stack([np.asarray(o, np.float64).ravel() for o in others], 1)
    q, r = np.linalg.qr(basis)
    keep = np.abs(np.diag(r)) > 1e-9 * max(1.0, float(np.abs(r).max()))
    q = q[:, keep]
    d = d - q @ (q.T @ d)
    return _unit(d).reshape(np.shape(direction))


def fit_direction(ws: np.ndarray, labels: np.ndarray, ridge: float = 1e-3) -> tuple[np.ndarray, float]:
    """The unit normal in W along which ``labels`` grow (ridge regression on centred w), and
    the correlation of the fit on held-out samples (every fifth), as a quality measure.
    Samples with a NaN label are left out."""
    ws = np.asarray(ws, np.float64)
    y = np.asarray(labels, np.float64)
    ok = np.isfinite(y) & np.isfinite(ws).all(1)
    ws, y = ws[ok], y[ok]
    if len(y) < 8 or float(np.std(y)) < 1e-12:
        raise StudioError(f"too few usable samples to fit a direction ({len(y)} measured, "
                          "or all the same)")
    held = np.arange(len(y)) % 5 == 4

    def solve(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        x = x - x.mean(0)
        t = (t - t.mean()) / (t.std() + 1e-12)
        gram = x.T @ x
        lam = ridge * float(np.trace(gram)) / gram.shape[0] + 1e-12
        return np.linalg.solve(gram + lam * np.eye(gram.shape[0]), x.T @ t)

    corr = math.nan
    if held.sum() >= 4 and (~held).sum() >= 8:
        beta = solve(ws[~held], y[~held])
        pred = ws[held] @ beta
        if np.std(pred) > 0 and np.std(y[held]) > 0:
            corr = float(np.corrcoef(pred, y[held])[0, 1])
    return _unit(solve(ws, y)), corr


def spread(ws: np.ndarray, direction: np.ndarray) -> float:
    """Standard deviation of the samples along a unit direction (``[w_dim]``)."""
    return float(np.std(np.asarray(ws, np.float64) @ np.asarray(direction, np.float64).ravel()))


def pca_directions(ws: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GANSpace: the first ``k`` principal directions of samples ``ws [n, w_dim]``.
    Returns (components ``[k, w_dim]`` unit rows, their standard deviations ``[k]``, the
    mean ``[w_dim]``). Signs are fixed (largest entry positive) so results repeat."""
    ws = np.asarray(ws, np.float64)
    if ws.ndim != 2 or len(ws) < 2:
        raise StudioError("PCA needs at least two samples of w")
    mean = ws.mean(0)
    _, s, vt = np.linalg.svd(ws - mean, full_matrices=False)
    k = max(1, min(int(k), vt.shape[0]))
    comps = vt[:k].copy()
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(1)])
    comps *= signs[:, None]
    return comps, s[:k] / math.sqrt(len(ws) - 1), mean


def layer_direction(vector: np.ndarray, num_ws: int, layers: tuple[int, int] | None) -> np.ndarray:
    """A ``[w_dim]`` vector applied to w layers ``[a, b)`` only (``None``: every layer,
    returned as ``[w_dim]``)."""
    v = np.asarray(vector, np.float32)
    if layers is None:
        return v.copy()
    a, b = layers
    if not 0 <= a < b <= num_ws:
        raise StudioError(f"layers {a} up to {b} do not fit a model with {num_ws} w layers")
    out = np.zeros((num_ws, v.shape[0]), np.float32)
    out[a:b] = v
    return out


# --------------------------------------------------------------------------- results


@dataclass
class Discovered:
    """A control found in W: ``direction`` is scaled so that a value of 1 moves one
    standard deviation of the samples; the slider runs over ``[-limit, limit]``."""

    name: str
    group: str  # Expression, Pose, Identity, Style
    kind: str  # "supervised" or "pca"
    direction: np.ndarray  # [w_dim] or [num_ws, w_dim]
    limit: float = SLIDER_SIGMAS
    quality: float = math.nan  # held-out correlation of a supervised fit
    description: str = ""
    layers: tuple[int, int] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def sample_ws(engine: FaceEngine, n: int, seed: int = 0, truncation: float = 1.0,
              batch: int = 1024) -> np.ndarray:
    """``w [n, w_dim]`` of ``n`` random z drawn from ``RandomState(seed)``, in batches."""
    import torch

    z = np.random.RandomState(int(seed) % 2**32).randn(int(n), engine.z_dim)
    out = []
    G = engine.G
    with engine._lock, torch.no_grad():
        for i in range(0, len(z), batch):
            zt = torch.from_numpy(z[i:i + batch]).float().to(engine.device)
            c = torch.zeros(len(zt), engine.c_dim, device=engine.device) if engine.c_dim else None
            w = G.mapping(zt, c, truncation_psi=float(truncation))
            out.append(w[:, 0].float().cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, engine.w_dim), np.float32)


def pca_control(engine: FaceEngine, comps: np.ndarray, sigmas: np.ndarray, index: int,
                layers: tuple[int, int] | None, name: str | None = None) -> Discovered:
    """Principal direction ``index`` as an (unnamed) control over ``layers``."""
    d = layer_direction(comps[index] * sigmas[index], engine.num_ws, layers)
    where = "all layers" if layers is None else f"layers {layers[0]}-{layers[1] - 1}"
    return Discovered(name or f"pc{index + 1}", "Style", "pca", d, layers=layers,
                      description=f"principal direction {index + 1} of W, {where}")


def fit_controls(ws: np.ndarray, labels: Mapping[str, np.ndarray],
                 condition: Mapping[str, Sequence[str]] | None = None,
                 min_quality: float = 0.0) -> tuple[list[Discovered], dict[str, str]]:
    """Supervised controls from ``w [n, w_dim]`` and measured labels. ``condition`` maps a
    label to the labels whose directions it is orthogonalised against. Returns the controls
    and, per label left out, why."""
    condition = DEFAULT_CONDITION if condition is None else condition
    raw: dict[str, tuple[np.ndarray, float]] = {}
    skipped: dict[str, str] = {}
    for name, y in labels.items():
        try:
            raw[name] = fit_direction(ws, y)
        except StudioError as exc:
            skipped[name] = exc.reason
    found = []
    for name, (d, corr) in raw.items():
        if not (corr >= min_quality):  # NaN fails too
            skipped[name] = f"the fit is too weak (held-out correlation {corr:.2f})"
            continue
        others = [raw[o][0] for o in condition.get(name, ()) if o in raw and o != name]
        try:
            d = orthogonalise(d, others)
        except StudioError:
            skipped[name] = "nothing is left of it once the conditioning is taken out"
            continue
        sd = spread(ws, d)
        group, what = LABELS.get(name, ("Expression", ""))
        found.append(Discovered(name, group, "supervised", (d * sd).astype(np.float32),
                                quality=corr, description=what,
                                info={"conditioned_on": [o for o in condition.get(name, ())
                                                         if o in raw and o != name]}))
    return found, skipped


# --------------------------------------------------------------------------- the job


@dataclass
class DiscoverOptions:
    samples: int = 200  # faces rendered and measured for the supervised fits
    pca_samples: int = 5000  # w sampled for PCA (mapping only: cheap)
    pca_components: int = 8
    pca_layers: tuple[int, int] | None = None  # None: every layer
    labels: tuple[str, ...] = tuple(LABELS)  # () = PCA only
    truncation: float = 0.7  # for the faces that are measured (clean faces measure well)
    seed: int = 0
    min_quality: float = 0.3
    condition: Mapping[str, Sequence[str]] | None = None


@dataclass
class DiscoverResult:
    controls: list[Discovered]
    skipped: dict[str, str]
    detected: int = 0  # faces the detector found (the rest used the aligned box)
    measured: int = 0


def discover_job(ctx: JobContext, engine: FaceEngine, options: DiscoverOptions | None = None,
                 measurer: Any = None) -> Generator[Progress, None, DiscoverResult]:
    """Discover controls: measure labels on ``samples`` generated faces and fit them, then
    PCA. ``measurer(image) -> {label: value}`` (e.g. :class:`studio.train.face_labels.
    LandmarkMeasurer`) is needed when ``options.labels`` is not empty."""
    o = options or DiscoverOptions()
    unknown = [n for n in o.labels if n not in LABELS]
    if unknown:
        raise StudioError(f"unknown label {unknown[0]!r}; known: {', '.join(LABELS)}")
    controls: list[Discovered] = []
    skipped: dict[str, str] = {}
    detected = measured = 0
    if o.labels:
        if measurer is None:
            raise StudioError("measuring labels needs a measurer (the landmark measurer)")
        m = measurer
        ws = sample_ws(engine, o.samples, o.seed, o.truncation)
        rows: list[dict[str, float]] = []
        for i in range(o.samples):
            ctx.check()
            img = engine.render(np.broadcast_to(ws[i], (engine.num_ws, engine.w_dim)))
            rows.append(m(img))
            if i % 5 == 0 or i == o.samples - 1:
                yield Progress(0.8 * (i + 1) / o.samples, f"measured {i + 1} of {o.samples} faces")
        measured = len(rows)
        detected = int(getattr(m, "detected", measured))
        labels = {n: np.array([r.get(n, math.nan) for r in rows]) for n in o.labels}
        yield Progress(0.82, "fitting directions")
        found, skipped = fit_controls(ws, labels, o.condition, o.min_quality)
        controls += found
    if o.pca_components > 0:
        yield Progress(0.85, "sampling W for PCA")
        ctx.check()
        pws = sample_ws(engine, o.pca_samples, o.seed + 1_000_003, 1.0)
        comps, sigmas, _ = pca_directions(pws, o.pca_components)
        for k in range(len(comps)):
            controls.append(pca_control(engine, comps, sigmas, k, o.pca_layers))
    yield Progress(1.0, f"found {len(controls)} controls")
    return DiscoverResult(controls, skipped, detected, measured)


# --------------------------------------------------------------------------- into the model


def as_control(d: Discovered, name: str | None = None, label: str = "") -> Control:
    """A discovered direction as a model control: symmetric slider ``[-limit, limit]``,
    neutral 0, its label measured (supervised) and the fit's correlation kept."""
    from studio.face.controls import Control

    measured = {"correlation": float(d.quality)} if math.isfinite(d.quality) else {}
    return Control(name or d.name, label=label, group=d.group, kind="direction",
                   low=-float(d.limit), high=float(d.limit), neutral=0.0,
                   direction=np.asarray(d.direction, np.float32),
                   attribute=d.name if d.kind == "supervised" else "", measured=measured,
                   description=d.description)


def merged_controls(existing: ControlSet, found: Sequence[Discovered], replace: bool = False,
                    ) -> tuple[ControlSet, list[str], list[str]]:
    """``existing`` plus the discovered controls. A name the model already has is kept as
    it is (the artist may have tuned it) unless ``replace``. Returns the new set and the
    names added (or replaced) and left alone."""
    out = existing
    done: list[str] = []
    kept: list[str] = []
    for d in found:
        c = as_control(d)
        if c.name in out:
            if not replace:
                kept.append(c.name)
                continue
            out = out.replaced(c)
        else:
            out = out.added(c)
        done.append(c.name)
    return out, done, kept

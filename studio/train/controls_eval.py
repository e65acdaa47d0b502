"""Measure face controls: does each slider move its own attribute, and only that?

For every control, a sweep: ``seeds`` faces (seed 0.., truncation 0.7, the app's default),
each rendered at ``steps`` slider values evenly over the control's range, then read by the
control meter (:mod:`studio.train.controls_meter`, an attribute regressor trained on the
procedural renderer's exact labels). Per control:

* ``correlation``: Pearson correlation between the slider and the measured attribute, within
  each face (every face's own mean removed, then pooled): how strongly the attribute follows
  the slider. The sign says the direction.
* ``moves``: mean change of the attribute from the low to the high end, in its units.
* ``entanglement``: the largest drift of another expression or pose attribute over the
  sweep (per face max - min, mean over faces), as a share of that attribute's range.
* ``identity``: the same for the identity attributes (age, skin tone, face and jaw width,
  lip fullness, hair colour channels): how much the person changes.
* ``step_ratio``: the largest frame-to-frame change of the pixels over the mean change
  between neighbouring slider steps (1 = perfectly even; a jump shows as a large ratio), and
  ``max_step``: that largest change as a mean absolute difference in 0..255 pixel levels.

:func:`evaluate_job` runs it as a job (the CLI's ``studio controls evaluate`` and, later, the
Face panel); :func:`table_markdown` writes the model card's table.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.face.controls import Control, ControlSet, controls_edit
from studio.face.model_file import FaceModel
from studio.train.attributes import AttributeRegressor

IDENTITY_ATTRS = ("age", "skin_tone", "face_width", "jaw_width", "lip_fullness", "hair_light")
MOTION_ATTRS = ("mouth_open", "pucker", "smile", "blink", "brow_raise", "gaze_x", "gaze_y",
                "head_yaw", "head_pitch", "head_roll", "glasses")
# attributes that move together by nature: not counted as entanglement of each other
RELATED = {"lips_closed": ("mouth_open", "pucker", "smile"), "pucker": ("mouth_open",),
           "mouth_open": ("pucker",), "smile": ("mouth_open",)}
EVAL_TRUNCATION = 0.7
CANDIDATE_SUFFIX = "__dir"  # build-default's direction twin of a control: measured alike


def measured_attributes(meter: AttributeRegressor, images: np.ndarray) -> dict[str, np.ndarray]:
    """The meter's readings as scalars: continuous values in parameter units, ``glasses``
    as the probability of any glasses, ``hair_light`` as the mean of the hair RGB."""
    pred = meter.predict(images)
    out: dict[str, np.ndarray] = {}
    for a in meter.attributes:
        if a.kind == "categorical":
            if a.name == "glasses":
                out["glasses"] = 1.0 - pred["glasses"][:, 0]
        else:
            out[a.name] = np.asarray(pred[a.name], np.float64)
    if all(k in out for k in ("hair_r", "hair_g", "hair_b")):
        out["hair_light"] = (out.pop("hair_r") + out.pop("hair_g") + out.pop("hair_b")) / 3
    return out


def readable(meter: AttributeRegressor) -> set[str]:
    """Attribute names :func:`measured_attributes` gives for this meter."""
    names = {a.name for a in meter.attributes if a.kind == "continuous"}
    if {"hair_r", "hair_g", "hair_b"} <= names:
        names = (names - {"hair_r", "hair_g", "hair_b"}) | {"hair_light"}
    if any(a.name == "glasses" for a in meter.attributes):
        names.add("glasses")
    return names


def attribute_span(meter: AttributeRegressor, name: str) -> float:
    if name in ("glasses", "hair_light"):
        return 1.0
    for a in meter.attributes:
        if a.name == name:
            return float(a.high - a.low)
    return 1.0


def within_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Correlation of slider ``x [K]`` and readings ``y [S, K]`` with each face's mean
    removed; 0 when nothing varies."""
    xc = x - x.mean()
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc**2).sum() * y.shape[0] * (yc**2).sum())
    return float((yc * xc[None]).sum() / den) if den > 1e-12 else 0.0


def sweep_values(c: Control, steps: int) -> np.ndarray:
    return np.linspace(c.low, c.high, steps)


def render_sweep(engine: Any, model: FaceModel, c: Control, seeds: Sequence[int],
                 steps: int) -> np.ndarray:
    """``[S, K, H, W, 3]`` uint8: each seed's face at each slider value of ``c``."""
    one = replace(model, control_set=ControlSet([c]))
    values = sweep_values(c, steps)
    frames = []
    for s in seeds:
        ws = engine.ws_for(int(s), EVAL_TRUNCATION)
        edits = [controls_edit(one, ws, {c.name: float(v)}) for v in values]
        frames.append(engine.render_batch([ws] * len(values), edits=edits))
    return np.stack(frames)


def figures(meter: AttributeRegressor, c: Control, frames: np.ndarray) -> dict[str, Any]:
    S, K = frames.shape[:2]
    x = sweep_values(c, K)
    reads = measured_attributes(meter, frames.reshape(S * K, *frames.shape[2:]))
    reads = {k: v.reshape(S, K) for k, v in reads.items()}
    own = c.attribute
    if own not in reads:
        raise StudioError(f"control {c.name!r} measures {own!r}, which the meter does not read")
    related = set(RELATED.get(c.name.removesuffix(CANDIDATE_SUFFIX), ())) | {own}

    def drift(names: Sequence[str]) -> tuple[float, str]:
        worst, which = 0.0, ""
        for b in names:
            if b in related or b not in reads:
                continue
            d = float((reads[b].max(1) - reads[b].min(1)).mean()) / attribute_span(meter, b)
            if d > worst:
                worst, which = d, b
        return worst, which

    ent, ent_by = drift(MOTION_ATTRS)
    ident, ident_by = drift(IDENTITY_ATTRS)
    diffs = np.abs(np.diff(frames.astype(np.float32), axis=1)).mean(axis=(2, 3, 4))  # [S, K-1]
    mean_step = float(diffs.mean())
    return {
        "correlation": round(within_correlation(x, reads[own]), 3),
        "moves": round(float((reads[own][:, -1] - reads[own][:, 0]).mean()), 3),
        "entanglement": round(ent, 3), "entangled_with": ent_by,
        "identity": round(ident, 3), "identity_by": ident_by,
        "max_step": round(float(diffs.max()), 2),
        "step_ratio": round(float((diffs / max(mean_step, 1e-6)).max()), 2),
        "faces": int(S), "steps": int(K),
    }


def evaluate_controls(ctx: JobContext | None, engine: Any, meter: AttributeRegressor,
                      controls: Sequence[Control], seeds: int = 12, steps: int = 13,
                      ) -> Generator[Progress, None, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(controls):
        if ctx is not None:
            ctx.check()
        yield Progress(i / max(len(controls), 1), f"sweeping {c.name}")
        if not c.attribute or c.attribute not in readable(meter):
            continue  # nothing this meter can read (e.g. a PCA or landmark-only control)
        frames = render_sweep(engine, engine.model, c, range(seeds), steps)
        out[c.name] = {"kind": c.kind, **figures(meter, c, frames)}
    yield Progress(1.0, f"measured {len(out)} controls")
    return out


def evaluate_job(ctx: JobContext, model_path: str, meter_path: str | None = None,
                 names: Sequence[str] | None = None, seeds: int = 12, steps: int = 13,
                 ) -> Generator[Progress, None, dict[str, dict[str, Any]]]:
    """``studio controls evaluate``: measure the controls of a model file."""
    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model
    from studio.train.attributes import load_attribute_regressor
    from studio.train.controls_meter import find_meter

    meter_file = find_meter(meter_path)
    meter = load_attribute_regressor(meter_file)
    model = load_face_model(model_path)
    if names:
        model.control_set.check_names(names)
        controls = [model.control_set[n] for n in names]
    else:
        controls = list(model.control_set)
    unmeasured = [c for c in controls if c.attribute not in readable(meter)]
    if names and unmeasured:
        c = unmeasured[0]
        raise StudioError(f"control {c.name!r} measures {c.attribute or 'nothing'!r}, which "
                          f"the meter {meter_file} does not read")
    engine = FaceEngine(model, select_device("cpu", "fp32"))
    return (yield from evaluate_controls(ctx, engine, meter, controls, seeds, steps))


COLUMNS = ("correlation", "moves", "entanglement", "identity", "max_step", "step_ratio")


def table_markdown(results: Mapping[str, Mapping[str, Any]],
                   controls: ControlSet | None = None) -> str:
    """The model card's table of measured controls."""
    lines = ["| control | kind | attribute | correlation | moves | entanglement (worst) "
             "| identity drift (worst) | max step | step ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        c = controls.get(name) if controls is not None else None
        attr = c.attribute if c is not None else ""
        lines.append(
            f"| {name} | {r['kind']} | {attr} | {r['correlation']:+.3f} | {r['moves']:+.3f} "
            f"| {r['entanglement']:.3f} ({r['entangled_with'] or '-'}) "
            f"| {r['identity']:.3f} ({r['identity_by'] or '-'}) | {r['max_step']:.2f} "
            f"| {r['step_ratio']:.2f} |")
    return "\n".join(lines)

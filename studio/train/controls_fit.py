"""Build the default model's controls: ship the parameter encoder, define the controls,
derive their W directions, measure both kinds and keep the better one per control.

``studio controls build-default --encoder runs/encoder-fit/encoder.safetensors`` runs
:func:`build_default_job`:

1. the generator (and discriminator) of ``--model`` with the encoder (``E.*`` from an
   ``encoder.safetensors`` or a fit's ``checkpoint.pt``), its parameter layout (names,
   widths, ranges: the renderer's) and its start vector (the mean encoded training face);
2. :data:`DEFAULT_CONTROLS`: each is a move of renderer parameters per slider unit (exact,
   parametric) and gets a W direction too: the mean of ``(E(p + v*move) - E(p)) / v`` over
   many training faces ``p`` and slider values ``v`` (least squares through the origin), so
   it works as a plain offset on any face of the model;
3. both kinds measured (:mod:`studio.train.controls_eval`); a control keeps the kind with
   the better score (|correlation| minus half the drift of the others and of identity);
4. the model file rewritten atomically with the encoder and the kept controls (their figures
   in the metadata), and the table put into the model card between markers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.errors import FileFormatError
from studio.core.jobs import JobContext, Progress
from studio.face.controls import Control, ControlSet
from studio.face.param_encoder import EncoderLayout, LayoutEntry, ParamEncoder

# name, label, group, (low, high, neutral), parameter moves per slider unit, attribute
_C = tuple[str, str, str, tuple[float, float, float], dict[str, float], str]
_DEFAULTS: tuple[_C, ...] = (
    ("mouth_open", "Mouth open", "Expression", (0, 1, 0), {"mouth_open": 1.0}, "mouth_open"),
    ("lips_closed", "Lips closed / pressed", "Expression", (0, 1, 0),
     {"mouth_open": -0.6, "lip_fullness": -0.6}, "lip_fullness"),
    ("pucker", "Lip pucker", "Expression", (0, 1, 0), {"pucker": 1.0}, "pucker"),
    ("smile", "Smile", "Expression", (-0.5, 1, 0), {"smile": 1.0}, "smile"),
    ("blink", "Blink (both eyes)", "Expression", (0, 1, 0), {"blink": 1.0}, "blink"),
    ("brow_raise", "Brow raise", "Expression", (-1, 1, 0), {"brow_raise": 1.0}, "brow_raise"),
    ("gaze_x", "Gaze left / right", "Expression", (-1, 1, 0), {"gaze_x": 1.0}, "gaze_x"),
    ("gaze_y", "Gaze up / down", "Expression", (-1, 1, 0), {"gaze_y": 1.0}, "gaze_y"),
    ("head_yaw", "Head yaw (1 = 15°)", "Pose", (-1, 1, 0), {"head_yaw": 15.0}, "head_yaw"),
    ("head_pitch", "Head pitch (1 = 10°)", "Pose", (-1, 1, 0), {"head_pitch": 10.0},
     "head_pitch"),
    ("head_roll", "Head roll (1 = 8°)", "Pose", (-1, 1, 0), {"head_roll": 8.0}, "head_roll"),
    ("hair_colour", "Hair dark / light", "Style", (-1, 1, 0),
     {"hair_r": 0.35, "hair_g": 0.3, "hair_b": 0.2, "hair_shade": 0.5}, "hair_light"),
    ("skin_tone", "Skin tone", "Identity", (-0.5, 0.5, 0), {"skin_tone": 1.0}, "skin_tone"),
    ("age", "Age", "Identity", (-0.5, 0.5, 0), {"age": 1.0}, "age"),
    ("face_width", "Face width", "Identity", (-0.5, 0.5, 0), {"face_width": 1.0},
     "face_width"),
    ("glasses", "Glasses", "Style", (0, 1, 0), {"glasses=round": 1.0, "glasses=none": -1.0},
     "glasses"),
)
DEFAULT_CONTROLS: tuple[Control, ...] = tuple(
    Control(name=n, label=lab, group=g, kind="parametric", low=float(r[0]), high=float(r[1]),
            neutral=float(r[2]), params=dict(m), attribute=a)
    for n, lab, g, r, m, a in _DEFAULTS)
CARD_BEGIN = "<!-- controls table: written by `studio controls build-default` -->"
CARD_END = "<!-- end of controls table -->"


def renderer_layout() -> EncoderLayout:
    """The distillation's parameter layout with the renderer's ranges and categories."""
    from studio.synthetic.params import SPECS
    from studio.train.distill_parts import param_layout

    out = []
    for name, width in param_layout():
        s = SPECS[name]
        out.append(LayoutEntry(name, width, float(s.low), float(s.high), tuple(s.choices)))
    return EncoderLayout(out)


def load_encoder(path: str | Path, w_dim: int) -> tuple[ParamEncoder, dict[str, Any]]:
    """An encoder from ``encoder.safetensors`` (with its metadata) or a fit's
    ``checkpoint.pt`` (``["E"]``, read with ``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise FileFormatError("file not found", p)
    info: dict[str, Any] = {}
    try:
        if p.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as f:
                info = json.loads((f.metadata() or {}).get("studio", "{}"))
                state = {k[2:]: f.get_tensor(k) for k in f.keys() if k.startswith("E.")}  # noqa: SIM118
        else:
            # weights only; the fit's optimiser state holds numpy scalars (plain data)
            scalars = [np._core.multiarray.scalar, np.dtype, np.dtypes.Float64DType]
            with torch.serialization.safe_globals(scalars):
                ck = torch.load(p, map_location="cpu", weights_only=True)
            state = ck["E"]
            st = ck.get("state", {})
            info = {"fit": {"steps": int(st.get("step", 0)),
                            "val_loss": round(float(st.get("val_loss", float("nan"))), 4),
                            "checkpoint": True}}
    except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"cannot read the encoder ({exc})", p) from None
    layout = renderer_layout()
    hidden = int(info.get("hidden", 512))
    E = ParamEncoder(layout.dim, w_dim, hidden)
    try:
        E.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise FileFormatError(f"the encoder does not fit this model ({exc})", p) from None
    return E.eval().requires_grad_(False), info


def training_vectors(n: int, pose_scale: float, seed: int = 0) -> np.ndarray:
    from studio.train.distill_parts import encode_params, sample_training_params

    return encode_params(sample_training_params(n, np.random.default_rng(seed), pose_scale))


@torch.no_grad()
def encoder_direction(E: ParamEncoder, layout: EncoderLayout, c: Control,
                      vecs: np.ndarray, values: int = 6) -> np.ndarray:
    """The W direction (per slider unit) that best matches the parametric control on
    average: least squares through the origin of ``E(clip(p + v*move)) - E(p)`` on ``v``."""
    delta = np.zeros(layout.dim, np.float32)
    for key, per_unit in c.params.items():
        col, scale = layout.column(key)
        delta[col] += per_unit * scale
    p = torch.from_numpy(vecs)
    base = E(p)
    num = torch.zeros(base.shape[1])
    den = 0.0
    for v in np.linspace(c.low, c.high, values + 1):
        v = float(v - c.neutral)
        if abs(v) < 1e-9:
            continue
        moved = E(layout.clip(p + v * torch.from_numpy(delta)))
        num += v * (moved - base).mean(0)
        den += v * v
    return (num / den).numpy().astype(np.float32)


def score(fig: Mapping[str, Any]) -> float:
    return abs(fig["correlation"]) - 0.5 * fig["entanglement"] - 0.5 * fig["identity"]


def _verdict(table: Mapping[str, Mapping[str, Any]]) -> str:
    weak = [f"{n} ({abs(f['correlation']):.2f})" for n, f in table.items()
            if abs(f["correlation"]) < 0.9]
    if not weak:
        return "Every control's |correlation| is at least 0.9."
    return (f"{len(table) - len(weak)} of {len(table)} controls reach |correlation| 0.9; "
            f"below it: {', '.join(weak)}.")


def write_card_table(card: Path, table: str, notes: str) -> None:
    from studio.core.atomic import atomic_write_bytes

    text = card.read_text(encoding="utf-8") if card.is_file() else "# Default face model\n"
    block = f"{CARD_BEGIN}\n{notes}\n\n{table}\n{CARD_END}"
    if CARD_BEGIN in text and CARD_END in text:
        text = re.sub(re.escape(CARD_BEGIN) + r".*?" + re.escape(CARD_END),
                      lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Controls\n\n" + block + "\n"
    atomic_write_bytes(card, text.encode("utf-8"))


def build_default_job(ctx: JobContext, encoder: str, model: str = "models/face/default.safetensors",
                      out: str | None = None, card: str | None = "models/face/default.md",
                      meter: str | None = None, seeds: int = 12, steps: int = 13,
                      ) -> Generator[Progress, None, dict[str, Any]]:
    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model, save_face_model
    from studio.train.attributes import load_attribute_regressor
    from studio.train.controls_eval import CANDIDATE_SUFFIX, evaluate_controls, table_markdown
    from studio.train.controls_meter import find_meter

    yield Progress(0.0, "loading the model, the encoder and the meter")
    meter_net = load_attribute_regressor(find_meter(meter))
    base = load_face_model(model)
    E, info = load_encoder(encoder, base.G.w_dim)
    layout = renderer_layout()
    pose_scale = float(info.get("pose_scale", 0.4))
    vecs = training_vectors(2048, pose_scale)
    enc_meta = {"layout": layout.to_json(), "start": [round(float(v), 5) for v in vecs.mean(0)],
                "pose_scale": pose_scale, "fit": info.get("fit", {}),
                "source": Path(encoder).name}
    fm = replace(base, control_set=ControlSet(list(DEFAULT_CONTROLS)), encoder=E,
                 encoder_meta=enc_meta)
    candidates: list[Control] = []
    for c in DEFAULT_CONTROLS:
        ctx.check()
        candidates.append(c)
        candidates.append(replace(c, name=c.name + CANDIDATE_SUFFIX, kind="direction", params={},
                                  direction=encoder_direction(E, layout, c, vecs)))
    fm = replace(fm, control_set=ControlSet(candidates))
    engine = FaceEngine(fm, select_device("cpu", "fp32"))
    results = yield from evaluate_controls(ctx, engine, meter_net, candidates, seeds, steps)
    kept: list[Control] = []
    table: dict[str, dict[str, Any]] = {}
    for c in DEFAULT_CONTROLS:
        par, dirn = results.get(c.name), results.get(c.name + CANDIDATE_SUFFIX)
        if par is None or dirn is None:  # the meter cannot read it: exact, unmeasured
            kept.append(c)
            continue
        best, fig = (c, par) if score(par) >= score(dirn) else (
            replace(candidates[candidates.index(c) + 1], name=c.name), dirn)
        other = dirn if best.kind == "parametric" else par
        measured = {k: v for k, v in fig.items() if k != "kind"}
        measured["other_kind_correlation"] = other["correlation"]
        kept.append(replace(best, measured=measured))
        table[c.name] = fig
    controls = ControlSet(kept)
    target = Path(out or model)
    save_face_model(target, base.G, D=base.D, name=base.name,
                    source=str(base.meta.get("source", "")),
                    license=str(base.meta.get("license", "")),
                    training=base.meta.get("training") or {}, controls=controls,
                    encoder=E, encoder_meta=enc_meta)
    md = table_markdown(table, controls)
    if card:
        fit = info.get("fit", {})
        notes = (f"Measured by `studio controls evaluate --model {target} --faces {seeds} "
                 f"--steps {steps}` (seeds 0-{seeds - 1}, truncation 0.7; meter "
                 f"`models/metrics/controls.safetensors`). Encoder: {Path(encoder).name}"
                 f" ({', '.join(f'{k} {v}' for k, v in fit.items())}). Kind: the one kept "
                 "(parametric = through the encoder, direction = a W offset); the other "
                 "kind's correlation is in the file's metadata.\n\n"
                 "Columns: *correlation* of the measured attribute with the slider within "
                 "each face; *moves*: the attribute's mean change from the slider's low to "
                 "high end (its units: degrees for pose, 0..1 otherwise); *entanglement*: "
                 "the largest drift of another expression/pose attribute over the sweep, "
                 "as a share of its range; *identity drift*: the same for age, skin tone, "
                 "face/jaw width, lip fullness and hair lightness; *max step*: the largest "
                 "change between neighbouring slider steps (mean absolute pixel difference, "
                 "0..255); *step ratio*: that over the mean step (1 = even, no jumps).\n\n"
                 + _verdict(table))
        write_card_table(Path(card), md, notes)
    yield Progress(1.0, f"wrote {target}")
    return {"model": str(target), "table": table, "markdown": md}


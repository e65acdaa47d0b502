"""Face controls: named, grouped edits of a face's latent, stored in the model file.

Data model
----------

A :class:`Control` is one slider: ``name`` (a stable id: letters, digits, ``-``, ``_``),
``label`` (what the artist reads), ``group`` (one of :data:`GROUPS`), the slider range
``low``..``high`` and its ``neutral`` value (where the face is unchanged), and one of two
kinds (:data:`KINDS`):

* ``"direction"``: a vector in W, ``[w_dim]`` (every layer) or ``[num_ws, w_dim]``;
  ``layers = (a, b)`` restricts it to w layers ``a`` .. ``b - 1`` (so "hair colour" can
  touch only the fine layers). The edit is ``(value - neutral) * direction``. Works on
  every model and on every face.
* ``"parametric"``: a move of the renderer's parameters, for models that carry their
  parameter encoder (the default model): ``params`` maps an encoded parameter (``"smile"``,
  or a category ``"glasses=round"``) to its change per slider unit (raw units for
  continuous parameters, one-hot units for categories). The face's own parameters ``p`` are
  found once (the encoder inverted at the face's w, cached), and the edit is
  ``E(clip(p + sum (value - neutral) * params)) - E(p)``: the encoder's own non-linear path,
  with all parametric controls of a request applied together.

``attribute`` names what :mod:`studio.train.controls_eval` measures for the control and
``measured`` holds its last figures (``correlation``, ``entanglement``, ``identity``,
``max_step``, ...), so a model card and the Face panel can show them.

A :class:`ControlSet` is the model's ordered controls. It is immutable: ``added``,
``renamed``, ``moved``, ``removed`` and ``replaced`` return a new set (an undo command keeps
the old one). :func:`save_controls` writes a model file with a new set (atomic; G, D and
the encoder carried over): that is how users keep the controls they add, rename, reorder
or delete.

Applying controls
-----------------

:func:`controls_edit` gives the W offset ``[num_ws, w_dim]`` of named control values for a
face (its w+): the one function the frame path (:mod:`studio.face.request`) calls. Names
the model has no control for contribute nothing (a rig may drive channels a model lacks);
front ends that take names from a user check them with :meth:`ControlSet.check_names`.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.face.model_file import FaceModel

__all__ = [
    "GROUPS", "KINDS", "Control", "ControlError", "ControlSet", "controls_edit",
    "face_params", "save_controls",
]

GROUPS = ("Expression", "Pose", "Identity", "Style")
KINDS = ("direction", "parametric")
CONTROL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
MAX_CONTROLS = 512


class ControlError(StudioError):
    """A control or a control edit that cannot be (bad name, range, shape, duplicate...)."""


@dataclass(frozen=True, eq=False)
class Control:
    """One slider. See the module docstring."""

    name: str
    label: str = ""
    group: str = "Expression"
    kind: str = "direction"
    low: float = -1.0
    high: float = 1.0
    neutral: float = 0.0
    direction: np.ndarray | None = None
    layers: tuple[int, int] | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    attribute: str = ""
    measured: Mapping[str, float] = field(default_factory=dict)
    description: str = ""
    inherited_from: str = ""  # the base model's name, for controls a fine-tune carried over

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    def check(self, num_ws: int | None = None, w_dim: int | None = None) -> None:
        """Raise :class:`ControlError` for a malformed control."""
        if not CONTROL_NAME.match(self.name):
            raise ControlError(f"control name {self.name!r}: use up to 64 letters, digits, "
                               "'-' and '_', starting with a letter or digit")
        if self.group not in GROUPS:
            raise ControlError(f"control {self.name!r}: group must be one of "
                               f"{', '.join(GROUPS)}, not {self.group!r}")
        if self.kind not in KINDS:
            raise ControlError(f"control {self.name!r}: kind must be one of {', '.join(KINDS)}")
        lo, hi, mid = float(self.low), float(self.high), float(self.neutral)
        if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(mid)
                and lo < hi and lo <= mid <= hi):
            raise ControlError(f"control {self.name!r}: the range needs low < high and the "
                               f"neutral value inside it (got {lo:g}, {hi:g}, {mid:g})")
        if self.kind == "direction":
            if self.direction is None:
                raise ControlError(f"control {self.name!r} has no direction")
            d = np.asarray(self.direction)
            if not np.isfinite(d).all():
                raise ControlError(f"control {self.name!r}: the direction has NaN or infinity")
            if w_dim is not None and d.shape not in ((w_dim,), (num_ws, w_dim)):
                raise ControlError(f"control {self.name!r} has shape {d.shape}; expected "
                                   f"({w_dim},) or ({num_ws}, {w_dim})")
        else:
            if not self.params:
                raise ControlError(f"control {self.name!r} moves no parameter")
            for k, v in self.params.items():
                if not isinstance(k, str) or not math.isfinite(float(v)):
                    raise ControlError(f"control {self.name!r}: bad parameter move {k!r}: {v!r}")
        if self.layers is not None:
            a, b = self.layers
            top = num_ws if num_ws is not None else 10**6
            if not 0 <= int(a) < int(b) <= top:
                raise ControlError(f"control {self.name!r}: layers {a}:{b} must satisfy "
                                   f"0 <= from < up-to <= {top}")

    def to_meta(self) -> dict[str, Any]:
        """JSON for the model file (the direction goes in the ``controls.<name>`` tensor)."""
        return {"label": self.label, "group": self.group, "kind": self.kind,
                "low": float(self.low), "high": float(self.high),
                "neutral": float(self.neutral),
                "layers": list(self.layers) if self.layers is not None else None,
                "params": {k: float(v) for k, v in self.params.items()},
                "attribute": self.attribute,
                "measured": {k: (float(v) if isinstance(v, int | float) else v)
                             for k, v in self.measured.items()},
                "description": self.description,
                **({"inherited_from": self.inherited_from} if self.inherited_from else {})}

    @classmethod
    def from_meta(cls, name: str, info: Mapping[str, Any],
                  direction: np.ndarray | None) -> Control:
        """From the model file; files written before controls had metadata (a direction
        and a label only) read as Expression direction controls from -1 to 1."""
        layers = info.get("layers")
        params = info.get("params") or {}
        measured = info.get("measured") or {}
        if not isinstance(params, Mapping) or not isinstance(measured, Mapping):
            raise ControlError(f"control {name!r}: params and measured must be objects")
        return cls(
            name=name, label=str(info.get("label", "") if info.get("label") != name else ""),
            group=str(info.get("group", "Expression")),
            kind=str(info.get("kind", "direction" if direction is not None else "parametric")),
            low=float(info.get("low", -1.0)), high=float(info.get("high", 1.0)),
            neutral=float(info.get("neutral", 0.0)), direction=direction,
            layers=(int(layers[0]), int(layers[1])) if layers else None,
            params={str(k): float(v) for k, v in params.items()},
            attribute=str(info.get("attribute", "")), measured=dict(measured),
            description=str(info.get("description", "")),
            inherited_from=str(info.get("inherited_from", "")))


class ControlSet:
    """The ordered controls of a model. Immutable: edits return a new set."""

    def __init__(self, controls: tuple[Control, ...] | list[Control] = ()) -> None:
        self._items: dict[str, Control] = {}
        for c in controls:
            if c.name in self._items:
                raise ControlError(f"two controls are named {c.name!r}")
            self._items[c.name] = c
        if len(self._items) > MAX_CONTROLS:
            raise ControlError(f"a model holds at most {MAX_CONTROLS} controls")

    def __iter__(self) -> Iterator[Control]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __getitem__(self, name: str) -> Control:
        try:
            return self._items[name]
        except KeyError:
            raise ControlError(f"no control named {name!r}") from None

    def get(self, name: str) -> Control | None:
        return self._items.get(name)

    def names(self) -> list[str]:
        return list(self._items)

    def by_group(self) -> dict[str, list[Control]]:
        """Controls per group, in :data:`GROUPS` order, each group in set order."""
        return {g: [c for c in self if c.group == g] for g in GROUPS}

    def directions(self) -> dict[str, np.ndarray]:
        """Direction controls as ``{name: array}`` (the layer range applied)."""
        return {c.name: _layered(c) for c in self if c.kind == "direction"}

    def check_names(self, names: Any) -> None:
        """Raise :class:`ControlError` naming the first unknown control and the known ones."""
        for n in names:
            if n not in self._items:
                known = ", ".join(self._items) or "none"
                raise ControlError(f"this model has no control {n!r} (it has: {known})")

    def check_values(self, values: Mapping[str, float]) -> None:
        """Raise :class:`ControlError` for a value outside its control's slider range (what
        a user types; animation may drive controls past their sliders on purpose)."""
        self.check_names(values)
        for n, v in values.items():
            c = self._items[n]
            if not c.low - 1e-9 <= float(v) <= c.high + 1e-9:
                raise ControlError(f"control {n!r} goes from {c.low:g} to {c.high:g}, "
                                   f"not {float(v):g}")

    # edits (each returns a new set)
    def added(self, control: Control, index: int | None = None) -> ControlSet:
        control.check()
        if control.name in self._items:
            raise ControlError(f"there is already a control named {control.name!r}")
        items = list(self)
        items.insert(len(items) if index is None else max(0, min(index, len(items))), control)
        return ControlSet(items)

    def replaced(self, control: Control) -> ControlSet:
        control.check()
        self[control.name]
        return ControlSet([control if c.name == control.name else c for c in self])

    def renamed(self, old: str, new: str, label: str | None = None) -> ControlSet:
        c = self[old]
        if new != old and new in self._items:
            raise ControlError(f"there is already a control named {new!r}")
        moved = replace(c, name=new, label=c.label if label is None else label)
        moved.check()
        return ControlSet([moved if x.name == old else x for x in self])

    def moved(self, name: str, index: int) -> ControlSet:
        c = self[name]
        items = [x for x in self if x.name != name]
        items.insert(max(0, min(int(index), len(items))), c)
        return ControlSet(items)

    def removed(self, name: str) -> ControlSet:
        self[name]
        return ControlSet([c for c in self if c.name != name])


def _layered(c: Control, num_ws: int | None = None) -> np.ndarray:
    d = np.asarray(c.direction, np.float32)
    if c.layers is None:
        return d
    if num_ws is None:
        num_ws = d.shape[0] if d.ndim == 2 else c.layers[1]
    full = np.zeros((num_ws, d.shape[-1]), np.float32)
    a, b = c.layers
    full[a:b] = d[a:b] if d.ndim == 2 else d
    return full


# --------------------------------------------------------------------------- applying

_params_cache: OrderedDict[tuple[int, bytes], np.ndarray] = OrderedDict()
_params_lock = threading.Lock()


def face_params(model: FaceModel, w: np.ndarray) -> np.ndarray:
    """The encoded renderer parameters of a face (its mean w), by inverting the model's
    encoder; cached, so a slider drag inverts once. Raises :class:`ControlError` when the
    model has no encoder."""
    from studio.face.param_encoder import fit_params

    if model.encoder is None or model.encoder_layout is None:
        raise ControlError("this model has no parameter encoder, so no parametric controls")
    w = np.asarray(w, np.float32)
    w = w.mean(0) if w.ndim == 2 else w
    key = (id(model.encoder), w.tobytes())
    with _params_lock:
        hit = _params_cache.get(key)
        if hit is not None:
            _params_cache.move_to_end(key)
            return hit
    p = fit_params(_math(model), model.encoder_layout, w, model.encoder_start)
    p.setflags(write=False)
    with _params_lock:
        _params_cache[key] = p
        while len(_params_cache) > 64:
            _params_cache.popitem(last=False)
    return p


_maths: dict[int, Any] = {}


def _math(model: FaceModel) -> Any:
    """The NumPy form of the model's encoder (built once per encoder)."""
    from studio.face.param_encoder import EncoderMath

    with _params_lock:
        hit = _maths.get(id(model.encoder))
        if hit is None or hit[0] is not model.encoder:
            hit = (model.encoder, EncoderMath(model.encoder))
            _maths[id(model.encoder)] = hit
            while len(_maths) > 8:
                _maths.pop(next(iter(_maths)))
        return hit[1]


def parametric_offset(model: FaceModel, ws: np.ndarray,
                      moves: list[tuple[Control, float]]) -> np.ndarray | None:
    """``[w_dim]`` offset of parametric controls moved by their amounts (value - neutral)."""
    from studio.face.param_encoder import clip_vector

    if not moves:
        return None
    p = face_params(model, ws)
    layout = model.encoder_layout
    delta = np.zeros_like(p)
    for c, amount in moves:
        for key, per_unit in c.params.items():
            try:
                col, scale = layout.column(key)
            except KeyError as exc:
                raise ControlError(f"control {c.name!r}: {exc.args[0]}") from None
            delta[col] += amount * per_unit * scale
    out = _math(model)(np.stack([p, clip_vector(layout, p + delta)]))
    return (out[1] - out[0]).astype(np.float32)


def controls_edit(model: FaceModel, ws: np.ndarray | None,
                  values: Mapping[str, float]) -> np.ndarray | None:
    """The W offset ``[num_ws, w_dim]`` of control values on the face ``ws`` (its w+,
    needed by parametric controls), or None when nothing moves."""
    G = model.G
    num_ws, w_dim = G.num_ws, G.w_dim
    total: np.ndarray | None = None
    moves: list[tuple[Control, float]] = []
    for name, value in values.items():
        c = model.control_set.get(name)
        if c is None:
            continue
        amount = float(value) - float(c.neutral)
        if amount == 0.0:
            continue
        if c.kind == "parametric":
            moves.append((c, amount))
            continue
        d = np.broadcast_to(_layered(c, num_ws), (num_ws, w_dim))
        total = d * np.float32(amount) if total is None else total + d * np.float32(amount)
    if moves:
        if ws is None:
            raise ControlError("parametric controls need the face's latent")
        # controls with a layer range apply their share on those layers only
        by_layers: dict[tuple[int, int] | None, list[tuple[Control, float]]] = {}
        for c, amount in moves:
            by_layers.setdefault(c.layers, []).append((c, amount))
        for layers, group in by_layers.items():
            off = parametric_offset(model, ws, group)
            if off is None:
                continue
            full = np.zeros((num_ws, w_dim), np.float32)
            a, b = layers if layers is not None else (0, num_ws)
            full[a:b] = off
            total = full if total is None else total + full
    return total


# --------------------------------------------------------------------------- saving


def save_controls(model: FaceModel, controls: ControlSet,
                  path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``model`` with ``controls`` to ``path`` (default: the model's own file),
    atomically; G, D, the encoder and the other metadata are kept."""
    from studio.face.model_file import save_face_model

    target = Path(path) if path is not None else model.path
    if target is None:
        raise ControlError("the model has no file; give a path to save it to")
    for c in controls:
        c.check(model.G.num_ws, model.G.w_dim)
    meta = model.meta
    return save_face_model(
        target, model.G, D=model.D, name=str(meta.get("name", "")),
        source=str(meta.get("source", "")), license=str(meta.get("license", "")),
        training=meta.get("training") or {}, controls=controls,
        encoder=model.encoder, encoder_meta=model.encoder_meta)

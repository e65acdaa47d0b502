"""The parameter encoder of a distilled face model: renderer parameters -> w.

The default face model was distilled from the procedural renderer through this small MLP;
it ships inside the model file (``E.*`` tensors, the ``encoder`` metadata) and gives the
model exact parametric controls (:mod:`studio.face.controls`). The face layer cannot import
the renderer, so the file carries the parameter *layout* it was trained with: each
parameter's name, width (1, or the number of categories, one-hot) and range. The encoded
vector is continuous values scaled to [-1, 1] and categoricals one-hot, as in
:func:`studio.train.distill_parts.encode_params`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.face.layers import FullyConnectedLayer

__all__ = ["EncoderLayout", "EncoderMath", "LayoutEntry", "ParamEncoder", "clip_vector",
           "fit_params"]


class ParamEncoder(nn.Module):
    """Param vector -> w. The last layer ends with the same leaky ReLU as the mapping network,
    so the mapping network can reach every w it produces."""

    def __init__(self, in_dim: int, w_dim: int, hidden: int = 512, layers: int = 3) -> None:
        super().__init__()
        self.init_kwargs = {"in_dim": int(in_dim), "w_dim": int(w_dim), "hidden": int(hidden),
                            "layers": int(layers)}
        dims = [in_dim] + [hidden] * (layers - 1) + [w_dim]
        self.net = nn.Sequential(
            *[FullyConnectedLayer(dims[i], dims[i + 1], activation="lrelu") for i in range(layers)]
        )

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v.float())


@dataclass(frozen=True)
class LayoutEntry:
    name: str
    width: int  # 1: continuous; K: categorical, one-hot over ``choices``
    low: float = 0.0
    high: float = 1.0
    choices: tuple[str, ...] = ()


class EncoderLayout:
    """Where each parameter sits in the encoded vector, and how values are scaled."""

    def __init__(self, entries: Sequence[LayoutEntry]) -> None:
        self.entries = tuple(entries)
        self.offsets: dict[str, int] = {}
        pos = 0
        for e in self.entries:
            self.offsets[e.name] = pos
            pos += e.width
        self.dim = pos
        self.by_name = {e.name: e for e in self.entries}

    def to_json(self) -> list[list[Any]]:
        return [[e.name, e.width, e.low, e.high, list(e.choices)] for e in self.entries]

    @classmethod
    def from_json(cls, data: Any) -> EncoderLayout:
        """From the model file's metadata; raises ``ValueError`` when malformed."""
        if not isinstance(data, list) or not data:
            raise ValueError("the encoder layout is not a list of parameters")
        out = []
        for item in data:
            if not isinstance(item, list) or len(item) != 5:
                raise ValueError(f"bad encoder layout entry {item!r}")
            name, width, low, high, choices = item
            if (not isinstance(name, str) or not isinstance(width, int) or width < 1
                    or not isinstance(choices, list)
                    or (width > 1 and len(choices) != width)):
                raise ValueError(f"bad encoder layout entry {item!r}")
            if width == 1 and not float(high) > float(low):
                raise ValueError(f"bad range in encoder layout entry {item!r}")
            out.append(LayoutEntry(name, width, float(low), float(high),
                                   tuple(str(c) for c in choices)))
        return cls(out)

    def column(self, key: str) -> tuple[int, float]:
        """The encoded column of ``key`` and the scale from raw units to encoded units:
        ``"smile"`` (continuous; 2 / (high - low)) or ``"glasses=round"`` (one-hot; 1)."""
        name, _, choice = key.partition("=")
        e = self.by_name.get(name)
        if e is None:
            raise KeyError(f"the encoder has no parameter {name!r}")
        if e.width == 1:
            if choice:
                raise KeyError(f"{name!r} is continuous; it has no category {choice!r}")
            return self.offsets[name], 2.0 / (e.high - e.low)
        if choice not in e.choices:
            raise KeyError(f"{name!r} has no category {choice!r} (has {', '.join(e.choices)})")
        return self.offsets[name] + e.choices.index(choice), 1.0

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """``(N, dim)`` float32 from ``{name: values}`` (categoricals as indices)."""
        cols = []
        for e in self.entries:
            v = np.asarray(params[e.name]).reshape(-1)
            if e.width > 1:
                cols.append(np.eye(e.width, dtype=np.float32)[
                    np.clip(np.rint(v).astype(np.int64), 0, e.width - 1)])
            else:
                cols.append((2.0 * (v.astype(np.float64) - e.low) / (e.high - e.low) - 1.0)[:, None])
        return np.concatenate(cols, axis=1).astype(np.float32)

    def decode(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """Raw parameter values of encoded vectors (categoricals: the most likely index)."""
        vec = np.atleast_2d(np.asarray(vec, np.float64))
        out: dict[str, np.ndarray] = {}
        for e in self.entries:
            o = self.offsets[e.name]
            if e.width > 1:
                out[e.name] = vec[:, o : o + e.width].argmax(1)
            else:
                out[e.name] = e.low + (vec[:, o] + 1.0) * 0.5 * (e.high - e.low)
        return out

    def clip(self, vec: torch.Tensor) -> torch.Tensor:
        """Continuous columns to [-1, 1], one-hot columns to [0, 1]."""
        lo = torch.tensor([-1.0 if e.width == 1 else 0.0 for e in self.entries
                           for _ in range(e.width)], dtype=vec.dtype, device=vec.device)
        return torch.maximum(torch.minimum(vec, torch.ones_like(lo)), lo)


class EncoderMath:
    """The encoder's arithmetic in NumPy (float64), with the gradient for :func:`fit_params`.

    A slider drag runs this for one vector at a time; small torch ops on a busy CPU wait on
    thread hand-offs (tens of milliseconds each), plain NumPy does not."""

    def __init__(self, E: ParamEncoder) -> None:
        self.layers = []
        for fc in E.net:
            W = fc.weight.detach().double().cpu().numpy() * fc.weight_gain
            b = fc.bias.detach().double().cpu().numpy() * fc.bias_gain
            self.layers.append((W.T.copy(), b))

    def __call__(self, v: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(v, np.float64))
        for Wt, b in self.layers:
            x = x @ Wt + b
            x = np.where(x >= 0, x, 0.2 * x) * _GAIN
        return x

    def value_and_grad(self, v: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean squared error to ``target`` and its gradient with respect to ``v``."""
        x = np.atleast_2d(v)
        pre = []
        for Wt, b in self.layers:
            z = x @ Wt + b
            pre.append(z)
            x = np.where(z >= 0, z, 0.2 * z) * _GAIN
        diff = x - target
        loss = float(np.mean(diff**2))
        g = 2.0 * diff / diff.size
        for (Wt, _), z in zip(reversed(self.layers), reversed(pre), strict=True):
            g = g * np.where(z >= 0, 1.0, 0.2) * _GAIN
            g = g @ Wt.T
        return loss, g[0]


_GAIN = float(np.sqrt(2.0))


def _box(layout: EncoderLayout) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([-1.0 if e.width == 1 else 0.0 for e in layout.entries
                   for _ in range(e.width)])
    return lo, np.ones_like(lo)


def clip_vector(layout: EncoderLayout, v: np.ndarray) -> np.ndarray:
    """NumPy :meth:`EncoderLayout.clip`."""
    lo, hi = _box(layout)
    return np.clip(v, lo, hi)


def fit_params(E: ParamEncoder | EncoderMath, layout: EncoderLayout, w: np.ndarray,
               start: np.ndarray, steps: int = 150, lr: float = 0.05) -> np.ndarray:
    """The encoded parameter vector ``p`` whose ``E(p)`` is nearest ``w`` (``[w_dim]``):
    Adam from ``start`` (the mean training vector), kept in the valid box. Deterministic."""
    f = E if isinstance(E, EncoderMath) else EncoderMath(E)
    target = np.asarray(w, np.float64)[None]
    lo, hi = _box(layout)
    p = np.clip(np.asarray(start, np.float64).copy(), lo, hi)
    m = np.zeros_like(p)
    s = np.zeros_like(p)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        _, g = f.value_and_grad(p, target)
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
        p = np.clip(p, lo, hi)
    return p.astype(np.float32)

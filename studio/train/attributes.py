"""Attribute regressor: a small CNN that reads the labelled attributes of procedural faces
(hair colour, glasses, smile, ...) from images, to measure what a face model covers.

Trained on renders of :mod:`studio.synthetic` (whose labels are exact), it is applied to
images from a GAN: :func:`coverage` says which share of a model's faces have red hair,
glasses, a smile, ... — e.g. to check that a model fine-tuned on "red hair with glasses"
makes mostly that. It only means something for images that look like the procedural faces.

Stored as safetensors (weights are data) with JSON metadata describing the attributes, so
the file is self-describing. Categorical attributes get a softmax head; continuous ones a
regression head predicting the value scaled to [0, 1] over the parameter's range.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.errors import FileFormatError, StudioError

FORMAT = "dhs-attributes"
FORMAT_VERSION = 1
DEFAULT_ATTRIBUTES = ("hair_color", "hair_style", "glasses", "facial_hair", "smile", "age",
                      "masculine", "skin_tone")
MODEL_FILE = "attributes.safetensors"


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: str  # "categorical" | "continuous"
    choices: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0
    threshold: float | None = None  # continuous: value above which a face "has" it

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "choices": list(self.choices),
                "low": self.low, "high": self.high, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attribute:
        return cls(str(d["name"]), str(d["kind"]), tuple(d.get("choices", ())),
                   float(d.get("low", 0.0)), float(d.get("high", 1.0)),
                   None if d.get("threshold") is None else float(d["threshold"]))


THRESHOLDS = {"smile": 0.4, "age": 0.6, "masculine": 0.5, "skin_tone": 0.5, "mouth_open": 0.3}


def attribute_specs(names: Sequence[str]) -> list[Attribute]:
    """Attributes of the procedural faces by parameter name."""
    from studio.synthetic.params import SPECS

    out = []
    for name in names:
        if name not in SPECS:
            raise StudioError(f"unknown attribute {name!r}")
        s = SPECS[name]
        if s.categorical:
            out.append(Attribute(name, "categorical", tuple(s.choices)))
        else:
            thr = THRESHOLDS.get(name, (s.low + s.high) / 2)
            out.append(Attribute(name, "continuous", (), s.low, s.high, thr))
    return out


class AttributeNet(nn.Module):
    """Images ``[N, 3, H, W]`` in [-1, 1] -> one output per attribute head (logits or a
    value in [0, 1] via a sigmoid)."""

    def __init__(self, attributes: Sequence[Mapping[str, Any]], size: int = 64,
                 width: int = 32) -> None:
        super().__init__()
        self.attributes = [Attribute.from_dict(a) for a in attributes]
        self.size = int(size)
        self.width = int(width)
        self.init_kwargs = {"attributes": [a.to_dict() for a in self.attributes],
                            "size": self.size, "width": self.width}
        chans = [3, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(8, cout),
                       nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU()]
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({
            a.name: nn.Linear(chans[-1], len(a.choices) if a.kind == "categorical" else 1)
            for a in self.attributes
        })

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.float()
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)
        h = self.trunk(x).mean(dim=(2, 3))
        return {a.name: self.heads[a.name](h) for a in self.attributes}


class AttributeRegressor:
    """A trained :class:`AttributeNet` with prediction and coverage helpers."""

    def __init__(self, net: AttributeNet, meta: dict[str, Any] | None = None) -> None:
        self.net = net.eval().requires_grad_(False)
        self.meta = dict(meta or {})

    @property
    def attributes(self) -> list[Attribute]:
        return self.net.attributes

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch: int = 128) -> dict[str, np.ndarray]:
        """uint8 ``[N, H, W, 3]`` -> per attribute: class probabilities ``[N, K]`` or values
        ``[N]`` in the parameter's units."""
        outs: dict[str, list[np.ndarray]] = {a.name: [] for a in self.attributes}
        for i in range(0, len(images), batch):
            x = _to_tensor(images[i : i + batch])
            y = self.net(x)
            for a in self.attributes:
                if a.kind == "categorical":
                    outs[a.name].append(torch.softmax(y[a.name], 1).numpy())
                else:
                    v = torch.sigmoid(y[a.name][:, 0]).numpy()
                    outs[a.name].append(a.low + v * (a.high - a.low))
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in outs.items()}

    def coverage(self, images: np.ndarray) -> dict[str, dict[str, float]]:
        """Per attribute, the share of ``images`` in each class (categorical: by the most
        likely class) or the mean and the share above the threshold (continuous)."""
        return coverage_from_predictions(self.attributes, self.predict(images))

    def save(self, path: str | os.PathLike[str], **info: Any) -> Path:
        from safetensors.torch import save

        from studio.core.atomic import atomic_write_bytes

        tensors = {k: v.detach().cpu().float().contiguous() for k, v in self.net.state_dict().items()}
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kwargs": self.net.init_kwargs,
                **self.meta, **info}
        atomic_write_bytes(path, save(tensors, metadata={"studio": json.dumps(meta)}))
        return Path(path)


def coverage_from_predictions(attributes: Sequence[Attribute],
                              pred: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for a in attributes:
        p = pred[a.name]
        if len(p) == 0:
            out[a.name] = {}
        elif a.kind == "categorical":
            counts = np.bincount(p.argmax(1), minlength=len(a.choices)) / len(p)
            out[a.name] = {c: float(s) for c, s in zip(a.choices, counts, strict=True)}
        else:
            thr = a.threshold if a.threshold is not None else (a.low + a.high) / 2
            out[a.name] = {"mean": float(p.mean()), "share_above": float((p > thr).mean()),
                           "threshold": float(thr)}
    return out


def coverage(regressor: AttributeRegressor, images: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-attribute shares of ``images`` (uint8 ``[N, H, W, 3]``); see
    :meth:`AttributeRegressor.coverage`."""
    return regressor.coverage(images)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def load_attribute_regressor(path: str | os.PathLike[str]) -> AttributeRegressor:
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("studio", "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise FileFormatError("file not found", p) from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read the attribute model ({exc})", p) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FileFormatError("not an attribute model", p)
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise FileFormatError("attribute model from a newer studio; update it", p)
    try:
        net = AttributeNet(**meta["kwargs"])
        net.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise FileFormatError(f"invalid attribute model ({exc})", p) from None
    return AttributeRegressor(net, {k: v for k, v in meta.items() if k != "kwargs"})


def find_attribute_model(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    from studio.core.paths import shipped_models_dir, user_models_dir

    for folder in (user_models_dir() / "metrics", shipped_models_dir() / "metrics"):
        if (folder / MODEL_FILE).is_file():
            return folder / MODEL_FILE
    return None


# --------------------------------------------------------------------------- training


def _targets(attributes: Sequence[Attribute], labels: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    out = {}
    for a in attributes:
        v = np.asarray(labels[a.name])
        if a.kind == "categorical":
            out[a.name] = torch.from_numpy(np.rint(v).astype(np.int64))
        else:
            out[a.name] = torch.from_numpy(((v - a.low) / (a.high - a.low)).astype(np.float32))
    return out


def _loss(attributes: Sequence[Attribute], y: Mapping[str, torch.Tensor],
          t: Mapping[str, torch.Tensor]) -> torch.Tensor:
    total = torch.zeros([])
    for a in attributes:
        if a.kind == "categorical":
            total = total + F.cross_entropy(y[a.name], t[a.name])
        else:  # scaled so a continuous head weighs about as much as a categorical one
            total = total + 10 * F.mse_loss(torch.sigmoid(y[a.name][:, 0]), t[a.name])
    return total


def evaluate_accuracy(regressor: AttributeRegressor, images: np.ndarray,
                      labels: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Categorical: accuracy; continuous: mean absolute error in the parameter's units."""
    pred = regressor.predict(images)
    out = {}
    for a in regressor.attributes:
        truth = np.asarray(labels[a.name])
        if a.kind == "categorical":
            out[f"{a.name}_accuracy"] = float((pred[a.name].argmax(1) == np.rint(truth)).mean())
        else:
            out[f"{a.name}_mae"] = float(np.abs(pred[a.name] - truth).mean())
    return out


def random_blur(x: torch.Tensor, gen: torch.Generator, max_sigma: float) -> torch.Tensor:
    """Gaussian blur with a random sigma in [0, max_sigma] px per image (half the batch
    stays sharp). GAN faces are softer than the renders the regressor learns from; without
    this it reads a soft face as a different attribute (e.g. no glasses)."""
    n = x.shape[0]
    if max_sigma <= 0 or n == 0:
        return x
    sigma = torch.rand(n, generator=gen) * max_sigma
    sigma = torch.where(torch.rand(n, generator=gen) < 0.5, torch.zeros_like(sigma), sigma)
    radius = max(1, math.ceil(2.5 * max_sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None, :] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    k = k / k.sum(1, keepdim=True)  # [N, K]; sigma ~0 gives a delta
    c = x.shape[1]
    xp = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    # one depthwise pass per axis, each image with its own kernel (groups = N * C)
    kk = k.repeat_interleave(c, 0)
    y = F.conv2d(xp.reshape(1, n * c, *xp.shape[2:]), kk[:, None, None, :], groups=n * c)
    y = F.conv2d(y, kk[:, None, :, None], groups=n * c)
    return y.reshape(n, c, *x.shape[2:])


class AttributeTrainer:
    """Training of an :class:`AttributeNet`, one step at a time (for jobs)."""

    def __init__(self, images: np.ndarray, labels: Mapping[str, np.ndarray],
                 attributes: Sequence[str] = DEFAULT_ATTRIBUTES, *, steps: int = 3000,
                 batch: int = 64, lr: float = 2e-3, size: int = 64, width: int = 32,
                 seed: int = 0, val_fraction: float = 0.1, blur: float = 1.5) -> None:
        self.specs = attribute_specs(attributes)
        self.blur = float(blur)
        n = len(images)
        if n < 2:
            raise StudioError("need at least two labelled images to train the attribute model")
        missing = [a.name for a in self.specs if a.name not in labels]
        if missing:
            raise StudioError(f"the labels have no {', '.join(missing)}")
        self.images, self.labels = images, labels
        self.steps, self.batch, self.seed = int(steps), int(batch), int(seed)
        order = np.random.default_rng(seed).permutation(n)
        n_val = int(n * val_fraction) if n >= 20 else 0
        self.val, self.train = order[:n_val], order[n_val:]
        torch.manual_seed(seed)
        self.net = AttributeNet([a.to_dict() for a in self.specs], size=size, width=width).train()
        x = _to_tensor(images)
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        self.x_all = x
        self.t_all = _targets(self.specs, labels)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=1e-4)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=lr,
                                                         total_steps=max(self.steps, 1))
        self.gen = torch.Generator().manual_seed(seed)
        self.done = 0
        self.loss = math.nan

    def step(self) -> float:
        n = min(self.batch, len(self.train))
        pick = torch.randint(len(self.train), (n,), generator=self.gen)
        idx = torch.from_numpy(self.train)[pick]
        x = self.x_all[idx] * torch.exp2(torch.randn(n, 1, 1, 1, generator=self.gen) * 0.1)
        flip = torch.rand(n, generator=self.gen) < 0.5  # the attributes are mirror-symmetric
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        x = random_blur(x, self.gen, self.blur)
        loss = _loss(self.specs, self.net(x), {k: v[idx] for k, v in self.t_all.items()})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.done < self.steps:
            self.sched.step()
        self.done += 1
        self.loss = float(loss.detach())
        return self.loss

    def result(self) -> tuple[AttributeRegressor, dict[str, float]]:
        reg = AttributeRegressor(self.net, {"trained_on": {
            "images": int(len(self.train)), "steps": self.done, "seed": self.seed}})
        held = self.val if len(self.val) else self.train
        scores = evaluate_accuracy(reg, self.images[held],
                                   {k: np.asarray(v)[held] for k, v in self.labels.items()})
        scores["final_loss"] = self.loss
        reg.meta["validation"] = scores
        self.net.train()
        return reg, scores


def train_attribute_regressor(
    images: np.ndarray,
    labels: Mapping[str, np.ndarray],
    attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
    *,
    steps: int = 3000,
    batch: int = 64,
    lr: float = 2e-3,
    size: int = 64,
    width: int = 32,
    seed: int = 0,
    val_fraction: float = 0.1,
    blur: float = 1.5,
    check: Callable[[], None] | None = None,
) -> tuple[AttributeRegressor, dict[str, float]]:
    """Train on uint8 ``[N, H, W, 3]`` renders with their labels (``{name: [N]}``, e.g.
    from :func:`load_synth_labels`). Returns the regressor and its validation scores
    (accuracy / mean absolute error on the held-out ``val_fraction``; on the training set
    when that is empty)."""
    trainer = AttributeTrainer(images, labels, attributes, steps=steps, batch=batch, lr=lr,
                               size=size, width=width, seed=seed, val_fraction=val_fraction,
                               blur=blur)
    for _ in range(steps):
        if check is not None:
            check()
        trainer.step()
    return trainer.result()


def load_synth_labels(folder: str | os.PathLike[str], limit: int | None = None,
                      size: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Images (resized to ``size`` when given, to save memory) and labels of a
    ``studio synth-faces`` folder (``labels.npz``)."""
    from PIL import Image

    folder = Path(folder)
    path = folder / "labels.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            vec, files, names = z["labels"], [str(f) for f in z["files"]], [str(n) for n in z["param_names"]]
    except FileNotFoundError:
        raise StudioError("no labels.npz: not a folder made by studio synth-faces", folder) from None
    except (OSError, ValueError, KeyError) as exc:
        raise StudioError(f"cannot read the labels ({exc})", path) from None
    if limit is not None:
        vec, files = vec[:limit], files[:limit]
    imgs = []
    for f in files:
        try:
            with Image.open(folder / f) as im:
                im = im.convert("RGB")
                if size is not None and im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.LANCZOS)
                imgs.append(np.asarray(im))
        except (OSError, ValueError) as exc:
            raise StudioError(f"cannot read this image ({exc})", folder / f) from None
    labels = {name: vec[:, i] for i, name in enumerate(names)}
    return np.stack(imgs), labels

"""The settings of one face-GAN training run, saved as ``config.json`` in its run folder.

Every field is plain JSON data, so a run can be resumed from its folder alone and the GUI
can show and edit the same object. ``None`` means "choose automatically" (the rule is next
to the field); :meth:`TrainConfig.resolved` fills those in once the resolution is known,
and the resolved values are what ``config.json`` holds.

Presets bundle what works for the size of the data set:

* ``few``      about 10-100 images, fine-tuning: strong adaptive augmentation that reacts
  fast, the first discriminator blocks frozen (Freeze-D), small batch, short run;
* ``hundreds`` about 100-2000 images, fine-tuning: adaptive augmentation, no freezing;
* ``scratch``  thousands of images, training from nothing: the StyleGAN2-ADA "auto" rules.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

AUGMENTS = ("xflip", "rotate90", "translate", "brightness", "contrast", "saturation", "cutout")
AUGMENT_MODES = ("ada", "fixed", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")

PRESETS: dict[str, dict[str, Any]] = {
    "few": {
        "kimg": 100.0, "batch": 8, "lr_g": 0.002, "lr_d": 0.002, "augment": "ada",
        "ada_kimg": 50.0, "freeze_d": 3, "ema_kimg": None, "style_mixing": 0.9,
    },
    "hundreds": {
        "kimg": 300.0, "batch": 16, "lr_g": 0.002, "lr_d": 0.002, "augment": "ada",
        "ada_kimg": 100.0, "freeze_d": 0, "ema_kimg": None, "style_mixing": 0.9,
    },
    "scratch": {
        "kimg": 5000.0, "batch": 32, "lr_g": 0.0025, "lr_d": 0.0025, "augment": "ada",
        "ada_kimg": 500.0, "freeze_d": 0, "ema_kimg": None, "style_mixing": 0.9,
    },
}


@dataclass
class TrainConfig:
    """One training run. Paths are strings (JSON); see the module docstring for presets."""

    data: str = ""  # folder of face images (studio ingest / studio synth-faces / plain PNG+JPG)
    output: str = ""  # face model file to write at the end (.safetensors); "" = run folder
    name: str = "face"  # model name, also part of the run folder's name
    base: str | None = None  # face model file to fine-tune; None = train from scratch
    preset: str = "hundreds"

    # Network for training from scratch (ignored with a base model).
    resolution: int | None = None  # None = the data's image size
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2  # ADA's "auto" config; the paper configs use 8
    channel_base: int | None = None  # None = 16384 below 512 px, 32768 from 512 px
    channel_max: int = 512
    conv_clamp: float | None = None  # None: 256 when training in fp16 (keeps it in range)

    # Schedule.
    kimg: float = 300.0  # length in thousands of real images shown to D
    batch: int = 16  # images per optimiser step (all devices together)
    batch_gpu: int | None = None  # micro-batch per device (gradient accumulation); None = batch
    lr_g: float = 0.002
    lr_d: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99

    # Losses and regularisation.
    r1_gamma: float | None = None  # None = 0.0002 * resolution^2 / batch (ADA "auto")
    r1_interval: int = 16  # lazy R1: every N minibatches
    pl_weight: float = 0.0  # path-length regularisation weight (2 in the paper; 0 = off)
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9  # probability of mixing two latents per sample
    ema_kimg: float | None = None  # None = batch * 10 / 32
    ema_rampup: float | None = 0.05  # EMA half-life at most this fraction of images seen

    # Augmentation (applied to everything D sees).
    augment: str = "ada"  # "ada" = adaptive p, "fixed" = constant aug_p, "none"
    aug_p: float = 0.0  # starting (or fixed) probability of each augmentation
    ada_target: float = 0.6  # target of E[sign(D(real))]
    ada_interval: int = 4  # adjust p every N minibatches
    ada_kimg: float = 100.0  # p can go from 0 to 1 in this many kimg
    augments: list[str] = field(default_factory=lambda: list(AUGMENTS))
    mirror: bool = True  # also show the data's mirror images (dataset x-flips)
    freeze_d: int = 0  # freeze the first N discriminator blocks (highest resolutions)

    # Compute.
    device: str = "auto"
    precision: str = "auto"  # auto = bf16 autocast on AMX CPUs / CUDA bf16 or fp16
    channels_last: bool = True
    threads: int | None = None  # torch CPU threads; None = torch's default
    seed: int = 0

    # Bookkeeping.
    run_dir: str | None = None  # None = <runs_root>/<timestamp>-<name>
    runs_root: str = "runs"
    checkpoint_every: int = 4000  # images between checkpoints ...
    checkpoint_minutes: float = 10.0  # ... or minutes, whichever comes first
    preview_every: int = 2000  # images between preview grids ...
    preview_minutes: float = 2.0  # ... or minutes, whichever comes first
    preview_grid: list[int] = field(default_factory=lambda: [4, 2])  # columns, rows
    preview_seed: int = 0
    fd_every: int = 0  # images between Fréchet distances (0 = only at the end)
    fd_samples: int = 256  # images per side for the FD (0 = never)
    license: str = ""  # licence of the trained model; "" = inherit the base model's
    description: str = ""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> TrainConfig:
        if preset not in PRESETS:
            raise StudioError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(preset=preset, **values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudioError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StudioError("no config.json: not a training run folder", path.parent) from None
        except (OSError, ValueError) as exc:
            raise StudioError(f"cannot read the training settings ({exc})", path) from None
        if not isinstance(data, dict):
            raise StudioError("the training settings are not a JSON object", path)
        try:
            return cls.from_dict(data).validated()
        except TypeError as exc:
            raise StudioError(f"invalid training settings ({exc})", path) from None

    # ------------------------------------------------------------------ rules

    def validated(self) -> TrainConfig:
        """Check ranges; raise StudioError naming the setting. Returns self."""
        def bad(what: str) -> StudioError:
            return StudioError(f"training setting {what}")

        if not self.data:
            raise bad("data: give the folder of training images")
        if self.preset not in PRESETS:
            raise bad(f"preset: {self.preset!r} is not one of {', '.join(PRESETS)}")
        if self.resolution is not None and (
            self.resolution < 8 or self.resolution & (self.resolution - 1)
        ):
            raise bad(f"resolution: {self.resolution} is not a power of two >= 8")
        for name in ("z_dim", "w_dim", "mapping_layers", "channel_max"):
            if not 1 <= getattr(self, name) <= 4096:
                raise bad(f"{name}: must be between 1 and 4096, not {getattr(self, name)}")
        if self.channel_base is not None and self.channel_base < 1:
            raise bad(f"channel_base: must be 1 or more, not {self.channel_base}")
        if not (math.isfinite(self.kimg) and self.kimg > 0):
            raise bad(f"kimg: must be above 0, not {self.kimg}")
        if self.batch < 1:
            raise bad(f"batch: must be 1 or more, not {self.batch}")
        if self.batch_gpu is not None and (self.batch_gpu < 1 or self.batch % self.batch_gpu):
            raise bad(f"batch_gpu: {self.batch_gpu} must divide the batch ({self.batch})")
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise bad(f"{name}: must be above 0, not {value}")
        if self.r1_gamma is not None and not self.r1_gamma >= 0:
            raise bad(f"r1_gamma: must be 0 or more, not {self.r1_gamma}")
        for name in ("r1_interval", "pl_interval", "ada_interval", "pl_batch_shrink"):
            if getattr(self, name) < 1:
                raise bad(f"{name}: must be 1 or more")
        if self.augment not in AUGMENT_MODES:
            raise bad(f"augment: {self.augment!r} is not one of {', '.join(AUGMENT_MODES)}")
        unknown = [a for a in self.augments if a not in AUGMENTS]
        if unknown:
            raise bad(f"augments: unknown {', '.join(unknown)}; known: {', '.join(AUGMENTS)}")
        if not 0 <= self.aug_p <= 1:
            raise bad(f"aug_p: must be between 0 and 1, not {self.aug_p}")
        if not 0 <= self.style_mixing <= 1:
            raise bad(f"style_mixing: must be between 0 and 1, not {self.style_mixing}")
        if self.freeze_d < 0:
            raise bad("freeze_d: must be 0 or more")
        if self.precision not in PRECISIONS:
            raise bad(f"precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise bad(f"device: {self.device!r} is not one of {', '.join(DEVICES)}")
        if len(self.preview_grid) != 2 or min(self.preview_grid) < 1:
            raise bad("preview_grid: give [columns, rows]")
        if self.checkpoint_every < 1 or self.preview_every < 1:
            raise bad("checkpoint_every and preview_every must be 1 or more images")
        if not (self.checkpoint_minutes > 0 and self.preview_minutes > 0):
            raise bad("checkpoint_minutes and preview_minutes must be above 0")
        if self.fd_every < 0 or self.fd_samples < 0:
            raise bad("fd_every and fd_samples must be 0 or more")
        return self

    def resolved(self, resolution: int) -> TrainConfig:
        """A copy with the automatic (None) choices made for this resolution."""
        c = dataclasses.replace(self, augments=list(self.augments),
                                preview_grid=list(self.preview_grid))
        if c.resolution is None:
            c.resolution = int(resolution)
        if c.channel_base is None:
            c.channel_base = 32768 if c.resolution >= 512 else 16384
        if c.batch_gpu is None:
            c.batch_gpu = c.batch
        if c.r1_gamma is None:
            c.r1_gamma = round(0.0002 * c.resolution**2 / c.batch, 6)
        if c.ema_kimg is None:
            c.ema_kimg = c.batch * 10 / 32
        return c.validated()

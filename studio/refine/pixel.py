"""The studio's default refiner: a pixel-space conditioned ``UNet2DModel``.

The frame to refine, upsampled (bicubic) to the output size, is concatenated to the noisy
sample (the SR3 / SD x4-upscaler scheme: ``in_channels`` = 3 noisy + 3 condition). The model
predicts, in v-parameterisation, the *residual* between the crisp target and the upsampled
frame (times ``residual_scale``), so colours stay the frame's and the model only adds detail.

Strength is SDEdit in residual space: the frame's own residual is zero, so strength s noises
a zero residual to the schedule's level s and denoises from there; s = 0 returns the
upsampled frame, s = 1 starts from pure noise with only the conditioning.

On disk a refiner is a diffusers folder: ``model_index.json``, ``unet/`` (config.json +
diffusion_pytorch_model.safetensors), ``scheduler/scheduler_config.json``, and the studio's
``refiner.json`` (format, scale, residual scale), plus a model card ``README.md``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.devices import DeviceChoice, select_device
from studio.core.errors import FileFormatError, StudioError
from studio.refine.base import RefineParams, StepCallback, make_scheduler, memory_errors
from studio.refine.images import check_image, resize_image, resize_tensor, to_image, to_tensor

PIXEL_FORMAT = "dhs-pixel-refiner"
PIXEL_FORMAT_VERSION = 1
META_FILE = "refiner.json"


@dataclass
class PixelRefinerSpec:
    """The shape of a default-refiner UNet (the constructor arguments that matter)."""

    channels: tuple[int, ...] = (32, 64, 128, 256)
    layers_per_block: int = 1
    scale: int = 4  # output side / input side
    input_size: int = 64  # the GAN frame size it was trained for
    residual_scale: float = 4.0
    norm_groups: int = 8
    extra: dict[str, Any] = field(default_factory=dict)

    def unet_kwargs(self) -> dict[str, Any]:
        n = len(self.channels)
        return dict(sample_size=self.input_size * self.scale, in_channels=6, out_channels=3,
                    block_out_channels=tuple(self.channels),
                    layers_per_block=self.layers_per_block,
                    down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
                    norm_num_groups=self.norm_groups, add_attention=False, **self.extra)


def scheduler_config() -> dict[str, Any]:
    """The training noise schedule (a cosine schedule, v-prediction, trailing spacing so the
    first step at strength 1 starts from pure noise)."""
    return dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=False,
                timestep_spacing="trailing")


def build_unet(spec: PixelRefinerSpec) -> Any:
    from diffusers import UNet2DModel

    return UNet2DModel(**spec.unet_kwargs())


def autocast(device: torch.device, precision: str) -> Any:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class PixelRefiner:
    """A loaded default-style refiner."""

    takes_text = False

    def __init__(self, unet: Any, meta: dict[str, Any], sched_config: dict[str, Any],
                 name: str = "default", device: DeviceChoice | None = None) -> None:
        self.device_choice = device or select_device()
        self.device = self.device_choice.torch_device
        self.unet = unet.to(self.device).eval().requires_grad_(False)
        self.unet.to(memory_format=torch.channels_last)  # measured faster for bf16 convs
        self.meta = meta
        self.scale = int(meta["scale"])
        self.residual_scale = float(meta["residual_scale"])
        self.sched_config = dict(sched_config)
        self.name = name
        self.multiple = 2 ** (len(unet.config.block_out_channels) - 1)

    def output_size(self, height: int, width: int, params: RefineParams) -> tuple[int, int]:
        if params.size is not None:
            return round(params.size * height / max(height, width)), round(
                params.size * width / max(height, width))
        return height * self.scale, width * self.scale

    def initial_noise(self, shape: tuple[int, ...], seed: int) -> torch.Tensor:
        """The seed's noise: the same for every frame of a clip (no flicker from noise)."""
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed))

    def refine(self, image: np.ndarray, params: RefineParams,
               on_step: StepCallback | None = None) -> np.ndarray:
        image = check_image(image)
        size = self.output_size(*image.shape[:2], params)
        n = params.active_steps
        if n == 0:
            return resize_image(image, size)
        with memory_errors(f"refiner {self.name}"), torch.no_grad():
            cond = resize_tensor(to_tensor(image), size)
            ph, pw = (-size[0]) % self.multiple, (-size[1]) % self.multiple
            cond_p = F.pad(cond, (0, pw, 0, ph), mode="reflect") if ph or pw else cond
            residual = self._sample(cond_p.to(self.device), params, n, on_step)
            out = cond + residual[..., : size[0], : size[1]].float().cpu() / self.residual_scale
        return to_image(out)

    def _sample(self, cond: torch.Tensor, params: RefineParams, n: int,
                on_step: StepCallback | None) -> torch.Tensor:
        sched = make_scheduler(params.scheduler, self.sched_config)
        sched.set_timesteps(params.steps)
        begin = params.steps - n
        timesteps = sched.timesteps[begin * sched.order:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(begin * sched.order)
        noise = self.initial_noise(tuple(cond.shape), params.seed).to(self.device)
        if n == params.steps:
            x = noise * sched.init_noise_sigma
        else:
            x = sched.add_noise(torch.zeros_like(noise), noise, timesteps[:1])
        for i, t in enumerate(timesteps):
            inp = torch.cat([sched.scale_model_input(x, t), cond], dim=1)
            inp = inp.contiguous(memory_format=torch.channels_last)
            with autocast(self.device, self.device_choice.precision):
                out = self.unet(inp, t).sample
            x = sched.step(out.float(), t, x).prev_sample
            if on_step is not None:
                on_step(i + 1, len(timesteps))
        return x


# ------------------------------------------------------------------------------ files


def is_pixel_refiner(folder: Path) -> bool:
    return (Path(folder) / META_FILE).is_file()


def _read_json(path: Path) -> dict[str, Any]:
    from studio.core.files import read_text_bounded

    try:
        data = json.loads(read_text_bounded(path, 1_000_000, "JSON file"))
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise FileFormatError("expected a JSON object", path)
    return data


def read_meta(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    meta = _read_json(folder / META_FILE)
    if meta.get("format") != PIXEL_FORMAT:
        raise FileFormatError(f"not a studio refiner (format {meta.get('format')!r})",
                              folder / META_FILE)
    if meta.get("format_version", 0) > PIXEL_FORMAT_VERSION:
        raise FileFormatError("made by a newer studio; update the studio", folder / META_FILE)
    for key in ("scale", "residual_scale"):
        if not isinstance(meta.get(key), int | float) or meta[key] <= 0:
            raise FileFormatError(f"{key!r} missing or not a positive number",
                                  folder / META_FILE)
    return meta


def load_pixel_refiner(folder: str | Path, device: DeviceChoice | None = None,
                       name: str | None = None) -> PixelRefiner:
    from diffusers import UNet2DModel

    folder = Path(folder)
    meta = read_meta(folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise FileFormatError("unet/diffusion_pytorch_model.safetensors is missing", folder)
    sched_cfg = _read_json(folder / "scheduler" / "scheduler_config.json")
    try:
        unet = UNet2DModel.from_pretrained(folder / "unet", local_files_only=True,
                                           use_safetensors=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise FileFormatError(f"the refiner's UNet does not load ({exc})", folder) from None
    if unet.config.in_channels != 6 or unet.config.out_channels != 3:
        raise FileFormatError("the UNet must take 6 channels (noisy + condition) and give 3",
                              folder)
    return PixelRefiner(unet, meta, sched_cfg, name or folder.name, device)


MODEL_CARD = """# {name}: the studio's pixel-space refiner

A diffusers `UNet2DModel` ({params:,} parameters, channels {channels}) that refines a
{input_size} px face frame into a {output_size} px one ({scale}x). The frame, upsampled
bicubically, is concatenated to the noisy input; the model predicts (v-prediction, cosine
schedule) the residual between the crisp image and the upsampled frame.

- Training data: made by the studio itself. For random procedural-renderer parameters p, the
  input is the default face GAN's rendering of its parameter encoder's w for p (with mild
  degradations), the target the renderer's own render of p at {output_size} px. No photos.
- Training: {training}
- Use: `studio refine IN.png -o OUT.png --strength 0.5 --steps 10`.
- Licence: GPL-3.0-or-later, like the studio.
"""


def save_pixel_refiner(folder: str | Path, unet: Any, spec: PixelRefinerSpec,
                       training: dict[str, Any] | None = None) -> Path:
    """Write a refiner folder atomically (a temp folder renamed over the old one)."""
    import diffusers

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp-save")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    unet.save_pretrained(tmp / "unet", safe_serialization=True)
    (tmp / "scheduler").mkdir()
    sched = make_scheduler("ddim", scheduler_config())
    sched.save_pretrained(tmp / "scheduler")
    index = {"_class_name": "StudioPixelRefiner", "_diffusers_version": diffusers.__version__,
             "unet": ["diffusers", "UNet2DModel"], "scheduler": ["diffusers", "DDIMScheduler"]}
    (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
    meta = {"format": PIXEL_FORMAT, "format_version": PIXEL_FORMAT_VERSION, "scale": spec.scale,
            "input_size": spec.input_size, "residual_scale": spec.residual_scale,
            "training": training or {}}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    params = sum(p.numel() for p in unet.parameters())
    (tmp / "README.md").write_text(MODEL_CARD.format(
        name=folder.name, params=params, channels=list(spec.channels),
        input_size=spec.input_size, output_size=spec.input_size * spec.scale, scale=spec.scale,
        training=json.dumps(training or {})))
    old = folder.with_name(folder.name + ".old-save")
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


def noise_pair(target: torch.Tensor, cond: torch.Tensor, residual_scale: float,
               sched: Any, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training example batch: (model input, timesteps, v target)."""
    x0 = (target - cond) * residual_scale
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, sched.config.num_train_timesteps, (x0.shape[0],), generator=gen)
    xt = sched.add_noise(x0, noise, t)
    v = sched.get_velocity(x0, noise, t)
    if tuple(xt.shape) != tuple(cond.shape):
        raise StudioError("condition and target shapes differ")
    return torch.cat([xt, cond], dim=1), t, v

"""The user's Stable Diffusion 1.x as a refiner: img2img (SDEdit), loaded offline.

A checkpoint is either a diffusers folder (``model_index.json``; ``from_pretrained`` with
``local_files_only``) or a single ``.safetensors`` file in the original layout
(``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``),
loaded with ``from_single_file`` against a local config folder (``resources/sd15/``: the
component configs and the CLIP tokenizer files, which a checkpoint does not hold). Nothing is
ever fetched from a hub. Pickled ``.ckpt`` files are refused: weights are data.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers / huggingface_hub load
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from studio.core.devices import DeviceChoice, select_device  # noqa: E402
from studio.core.errors import FileFormatError, StudioError  # noqa: E402
from studio.refine.base import (  # noqa: E402
    RefineParams,
    StepCallback,
    make_scheduler,
    memory_errors,
)
from studio.refine.images import check_image, resize_image  # noqa: E402

CONFIG_FILES = ("model_index.json", "unet/config.json", "vae/config.json",
                "text_encoder/config.json", "scheduler/scheduler_config.json")
TOKENIZER_FILES = ("tokenizer/vocab.json", "tokenizer/merges.txt")


def default_config_dir() -> Path:
    from studio.core.paths import resources_dir

    return resources_dir() / "sd15"


def check_config_dir(folder: Path) -> None:
    missing = [f for f in CONFIG_FILES if not (folder / f).is_file()]
    if missing:
        raise StudioError(f"the Stable Diffusion 1.x config folder lacks {', '.join(missing)}",
                          folder)
    missing = [f for f in TOKENIZER_FILES if not (folder / f).is_file()]
    if missing:
        raise StudioError(
            "single-file Stable Diffusion checkpoints need the CLIP tokenizer files "
            f"({', '.join(missing)}), which the studio cannot ship yet: copy vocab.json and "
            "merges.txt from any SD 1.x diffusers folder's tokenizer/ into this folder's "
            "tokenizer/, or use the checkpoint as a diffusers folder", folder)


def check_single_file(path: Path) -> None:
    """Refuse what is not an SD 1.x checkpoint, naming the file and what it is instead."""
    from studio.core.model_registry import read_safetensors_header

    if path.suffix.lower() in (".ckpt", ".pt", ".pth", ".bin"):
        raise FileFormatError("pickled checkpoints can run code and are not loaded; convert "
                              "it to .safetensors first", path)
    header, _ = read_safetensors_header(path, "Stable Diffusion checkpoint")
    keys = [k for k in header if k != "__metadata__"]
    if any(k.startswith("conditioner.embedders") for k in keys):
        raise FileFormatError("this is an SDXL checkpoint; the refiner takes SD 1.x", path)
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        raise FileFormatError("this is an SD 2.x checkpoint; the refiner takes SD 1.x", path)
    if not any(k.startswith("model.diffusion_model.") for k in keys):
        raise FileFormatError("not a Stable Diffusion checkpoint (no model.diffusion_model.* "
                              "tensors)", path)
    if not any(k.startswith("first_stage_model.") for k in keys) or not any(
            k.startswith("cond_stage_model.transformer.") for k in keys):
        raise FileFormatError("the checkpoint lacks its VAE or text encoder (first_stage_model."
                              "*, cond_stage_model.transformer.*)", path)


def load_sd_pipeline(path: str | Path, device: DeviceChoice | None = None,
                     config_dir: str | Path | None = None) -> Any:
    """An img2img pipeline for a diffusers folder or a single .safetensors file, offline."""
    from diffusers import StableDiffusionImg2ImgPipeline

    path = Path(path)
    device = device or select_device()
    kwargs: dict[str, Any] = dict(local_files_only=True, safety_checker=None,
                                  requires_safety_checker=False, torch_dtype=device.dtype)
    try:
        if path.is_dir():
            if not (path / "model_index.json").is_file():
                raise FileFormatError("not a diffusers folder (no model_index.json)", path)
            pipe = StableDiffusionImg2ImgPipeline.from_pretrained(path, **kwargs)
        elif path.is_file():
            check_single_file(path)
            cfg = Path(config_dir) if config_dir is not None else default_config_dir()
            check_config_dir(cfg)
            pipe = StableDiffusionImg2ImgPipeline.from_single_file(
                str(path), config=str(cfg), **kwargs)
        else:
            raise FileFormatError("model not found", path)
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - a foreign file may fail in any library layer
        raise FileFormatError(f"does not load as Stable Diffusion 1.x ({exc})", path) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device.torch_device)


class CancelSampling(Exception):
    """Raised from the step callback to leave the pipeline's loop."""


class SDRefiner:
    """Stable Diffusion 1.x img2img behind the refiner interface."""

    takes_text = True

    def __init__(self, pipe: Any, name: str, device: DeviceChoice | None = None) -> None:
        self.pipe = pipe
        self.name = name
        self.device_choice = device or select_device()
        self.multiple = int(getattr(pipe, "vae_scale_factor", 8))
        self._base_scheduler = dict(pipe.scheduler.config)

    def output_size(self, height: int, width: int, params: RefineParams) -> tuple[int, int]:
        side = params.size or max(height, width)
        h, w = side * height / max(height, width), side * width / max(height, width)
        m = self.multiple
        return max(m, int(round(h / m)) * m), max(m, int(round(w / m)) * m)

    def refine(self, image: np.ndarray, params: RefineParams,
               on_step: StepCallback | None = None, **extra: Any) -> np.ndarray:
        from PIL import Image

        image = check_image(image)
        size = self.output_size(*image.shape[:2], params)
        base = resize_image(image, size)
        n = params.active_steps
        if n == 0:
            return base
        self.pipe.scheduler = make_scheduler(params.scheduler, self._base_scheduler)

        def step_end(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if on_step is not None:
                on_step(i + 1, n)
            return kwargs

        gen = torch.Generator("cpu").manual_seed(params.seed)
        with memory_errors(f"Stable Diffusion {self.name}"), torch.no_grad():
            out = self.pipe(prompt=params.prompt, negative_prompt=params.negative_prompt or None,
                            image=Image.fromarray(base), strength=params.strength,
                            num_inference_steps=params.steps, guidance_scale=params.guidance,
                            generator=gen, output_type="np", callback_on_step_end=step_end,
                            **extra)
        img = np.asarray(out.images[0], dtype=np.float32)
        return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)

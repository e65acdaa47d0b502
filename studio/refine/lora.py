"""LoRA files for the user's Stable Diffusion, merged into the weights (no peft needed).

Two key layouts are read, both as .safetensors:

- kohya / A1111: ``lora_unet_<module path with _>.lora_down.weight`` / ``.lora_up.weight``
  (+ ``.alpha``), ``lora_te_<...>`` for the text encoder;
- diffusers / peft: ``unet.<module path>.lora_A.weight`` / ``.lora_B.weight`` (also
  ``lora.down`` / ``lora.up``), ``text_encoder.<...>``.

Each pair adds ``weight x (alpha / rank) x up @ down`` to the module's weight (linear and
convolution layers). A key that matches no layer is an error naming the file: a LoRA made
for another architecture (SDXL, SD 2) must not half-apply silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import FileFormatError

_KOHYA = re.compile(r"^lora_(unet|te)_(.+)\.(lora_down|lora_up)\.weight$")
_PEFT = re.compile(r"^(unet|text_encoder)\.(.+)\.(lora_A|lora_B|lora\.down|lora\.up)\.weight$")


def _pairs(tensors: dict[str, torch.Tensor], path: Path) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for key, value in tensors.items():
        if key.endswith(".alpha"):
            continue
        if m := _KOHYA.match(key):
            part, name, which = m.groups()
            part = "unet" if part == "unet" else "text_encoder"
            side = "down" if which == "lora_down" else "up"
            entry = out.setdefault((part, name), {})
            entry[side] = value
            alpha = tensors.get(key.rsplit(".", 2)[0] + ".alpha")
            if alpha is not None:
                entry["alpha"] = float(alpha)
        elif m := _PEFT.match(key):
            part, name, which = m.groups()
            side = "down" if which in ("lora_A", "lora.down") else "up"
            out.setdefault((part, name.replace(".", "_")), {})[side] = value
        else:
            raise FileFormatError(f"unexpected tensor {key!r}: not a LoRA for Stable "
                                  "Diffusion 1.x", path)
    return out


def _modules(model: Any) -> dict[str, torch.nn.Module]:
    """Modules by their dotted path written with underscores (with and without the CLIP
    text model's ``text_model.`` prefix, which differs between transformers versions)."""
    found: dict[str, torch.nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            flat = name.replace(".", "_")
            found[flat] = module
            found.setdefault(flat.removeprefix("text_model_"), module)
            found.setdefault("text_model_" + flat, module)
    return found


@torch.no_grad()
def apply_loras(pipe: Any, loras: Sequence[tuple[Path, float]]) -> int:
    """Merge each (file, weight) into ``pipe``'s UNet and text encoder; returns the number
    of layers changed."""
    from safetensors.torch import load_file

    from studio.core.model_registry import read_safetensors_header

    targets = {"unet": _modules(pipe.unet), "text_encoder": _modules(pipe.text_encoder)}
    changed = 0
    for path, weight in loras:
        path = Path(path)
        read_safetensors_header(path, "LoRA file")
        pairs = _pairs(load_file(str(path)), path)
        if not pairs:
            raise FileFormatError("holds no LoRA weights", path)
        for (part, name), entry in pairs.items():
            module = targets[part].get(name)
            if module is None or "up" not in entry or "down" not in entry:
                raise FileFormatError(f"LoRA layer {part}:{name} matches no layer of this "
                                      "model (a LoRA for another architecture?)", path)
            up, down = entry["up"].float(), entry["down"].float()
            rank = down.shape[0]
            scale = weight * entry.get("alpha", rank) / rank
            w = module.weight
            delta = (up.flatten(1) @ down.flatten(1)).reshape(w.shape)
            if delta.shape != w.shape:
                raise FileFormatError(f"LoRA layer {name} has the wrong shape", path)
            w.add_((scale * delta).to(w.dtype))
            changed += 1
    return changed

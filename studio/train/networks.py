"""The networks of a training run: new ones for training from scratch, or copies of a base
face model's generator and discriminator for fine-tuning."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.face.discriminator import Discriminator
from studio.face.generator import Generator
from studio.train.config import TrainConfig


@dataclass
class Networks:
    G: Generator
    D: Discriminator
    G_ema: Generator
    base_meta: dict[str, Any] | None = None  # metadata of the base model file
    base_controls: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # things the user should know
    new_D: bool = False  # fine-tuning with a discriminator that starts from scratch


def mbstd_group(batch_gpu: int) -> int:
    """The largest minibatch-std group (at most 4, as in StyleGAN2) that divides the batch."""
    return max(g for g in (4, 3, 2, 1) if batch_gpu % g == 0)


def scratch_kwargs(cfg: TrainConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generator and discriminator constructor arguments for a new model."""
    assert cfg.resolution is not None and cfg.channel_base is not None
    g = {
        "z_dim": cfg.z_dim, "w_dim": cfg.w_dim, "c_dim": 0,
        "img_resolution": cfg.resolution, "img_channels": 3,
        "mapping_kwargs": {"num_layers": cfg.mapping_layers},
        "synthesis_kwargs": {"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                             "num_fp16_res": 0, "conv_clamp": cfg.conv_clamp},
    }
    d = {
        "c_dim": 0, "img_resolution": cfg.resolution, "img_channels": 3,
        "channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
        "num_fp16_res": 0, "conv_clamp": cfg.conv_clamp,
        "mbstd_group_size": mbstd_group(cfg.batch_gpu or cfg.batch),
    }
    return g, d


def _matching_discriminator(G: Generator, cfg: TrainConfig) -> Discriminator:
    syn = G.init_kwargs.get("synthesis_kwargs", {})
    return Discriminator(
        c_dim=G.c_dim, img_resolution=G.img_resolution, img_channels=G.img_channels,
        channel_base=int(syn.get("channel_base", 32768)), channel_max=int(syn.get("channel_max", 512)),
        conv_clamp=syn.get("conv_clamp"), mbstd_group_size=mbstd_group(cfg.batch_gpu or cfg.batch),
    )


def build_networks(cfg: TrainConfig, seed: int) -> Networks:
    """``cfg`` must be resolved. With ``cfg.base`` the networks start from that file."""
    import torch

    if cfg.base:
        from studio.face.model_file import load_face_model

        model = load_face_model(cfg.base)
        if model.G.img_channels != 3:
            raise StudioError("only RGB face models can be fine-tuned here", cfg.base)
        notes = []
        new_D = model.D is None
        G = model.G.train().requires_grad_(True)
        if model.D is not None:
            D = model.D.train().requires_grad_(True)
        else:
            torch.manual_seed(seed)
            D = _matching_discriminator(G, cfg)
            notes.append("the base model has no discriminator: a new one starts from scratch, "
                         "so the first images may get worse before they improve")
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        return Networks(G, D, G_ema, dict(model.meta), dict(model.controls), notes, new_D)
    g_kwargs, d_kwargs = scratch_kwargs(cfg)
    torch.manual_seed(seed)
    G = Generator(**g_kwargs).train()
    D = Discriminator(**d_kwargs).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    return Networks(G, D, G_ema)


def model_resolution(cfg: TrainConfig, data_resolution: int) -> int:
    """The resolution the run trains at: the base model's, else cfg.resolution, else the
    data's (rounded down to a power of two, at least 8)."""
    if cfg.base:
        from studio.face.model_file import read_face_model_meta

        return int(read_face_model_meta(cfg.base)["resolution"])
    if cfg.resolution is not None:
        return int(cfg.resolution)
    r = 8
    while r * 2 <= data_resolution:
        r *= 2
    return r


def freeze_d_blocks(D: Discriminator, n: int) -> list[str]:
    """Stop training the first ``n`` blocks of D (highest resolutions: Freeze-D). Returns
    the names of the frozen blocks. The epilogue (b4) is never frozen."""
    names = [f"b{r}" for r in D.block_resolutions][: max(0, n)]
    for name in names:
        getattr(D, name).requires_grad_(False)
    return names

"""StyleGAN2 generator: mapping network (z -> w) and synthesis network (w+ -> image).

Our own implementation. Constructor arguments, parameter/buffer names, shapes and order
match NVIDIA's StyleGAN2-ADA ``G_ema.state_dict()`` so imported weights load with
``strict=True``. ``init_kwargs`` holds the constructor arguments as plain JSON data; it is
saved next to the weights so a model file is self-describing.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from studio.face.layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    SynthesisLayer,
    ToRGBLayer,
    make_resample_filter,
    normalize_2nd_moment,
    upsample_2x,
)

ARCHITECTURES = ("orig", "skip", "resnet")


def channels_for(resolution: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // resolution, channel_max)


def plain_json(value: Any) -> Any:
    """Deep copy of ``value`` with tuples as lists and mappings as plain dicts (JSON-ready)."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"not JSON data: {type(value).__name__}")


class MappingNetwork(nn.Module):
    """z (and label c) -> w, an MLP with lr-multiplier 0.01 and a tracked average of w."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(
                features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        skip_w_avg_update: bool = False,
    ) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            assert z is not None and z.ndim == 2 and z.shape[1] == self.z_dim, "bad z shape"
            x = normalize_2nd_moment(z.float())
        if self.c_dim > 0:
            assert c is not None and c.ndim == 2 and c.shape[1] == self.c_dim, "bad c shape"
            y = normalize_2nd_moment(self.embed(c.float()))
            x = torch.cat([x, y], dim=1) if x is not None else y
        assert x is not None
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            assert self.w_avg_beta is not None, "truncation needs a tracked w_avg"
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: [const | 2x-up conv0] -> conv1 -> [toRGB], with skip/resnet wiring."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        **layer_kwargs: Any,
    ) -> None:
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", make_resample_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, **layer_kwargs,
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter,
            )

    def compute_dtype(self, x_device: torch.device, force_fp32: bool) -> torch.dtype:
        if self.use_fp16 and not force_fp32 and x_device.type == "cuda":
            return torch.float16
        return torch.float32

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
        noise_mode: str = "random",
        noise_seed: int | None = None,
        dtype: torch.dtype | None = None,
        channels_last: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``ws [N, num_conv + num_torgb, w_dim]``. ``dtype`` overrides the block's own
        precision choice (the face engine runs whole networks in bf16 on AMX CPUs)."""
        assert ws.ndim == 3 and ws.shape[1] == self.num_conv + self.num_torgb, "bad ws shape"
        w_iter = iter(ws.unbind(dim=1))
        if dtype is None:
            dtype = self.compute_dtype(ws.device, force_fp32)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        if fused_modconv is None:
            fused_modconv = (not self.training) and (dtype == torch.float32 or ws.shape[0] == 1)
        layer_kw = {"fused_modconv": fused_modconv, "noise_mode": noise_mode, "noise_seed": noise_seed}

        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = x.contiguous(memory_format=fmt)
            x = self.conv1(x, next(w_iter), **layer_kw)
        else:
            assert x is not None
            x = x.to(dtype=dtype).contiguous(memory_format=fmt)
            if self.architecture == "resnet":
                y = self.skip(x, gain=math.sqrt(0.5))
                x = self.conv0(x, next(w_iter), **layer_kw)
                x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kw)
                x = y.add_(x) if not torch.is_grad_enabled() else y + x
            else:
                x = self.conv0(x, next(w_iter), **layer_kw)
                x = self.conv1(x, next(w_iter), **layer_kw)

        if img is not None:
            img = upsample_2x(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """w+ ``[N, num_ws, w_dim]`` -> image ``[N, C, R, R]`` in about [-1, 1]."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs: Any,
    ) -> None:
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, not {img_resolution}")
        super().__init__()
        block_kwargs.pop("fp16_channels_last", None)  # a CUDA training option; no effect here
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        layer_index = 0
        for res in self.block_resolutions:
            in_ch = channels_for(res // 2, channel_base, channel_max) if res > 4 else 0
            out_ch = channels_for(res, channel_base, channel_max)
            is_last = res == img_resolution
            block = SynthesisBlock(
                in_ch, out_ch, w_dim=w_dim, resolution=res, img_channels=img_channels,
                is_last=is_last, use_fp16=res >= fp16_resolution, **block_kwargs,
            )
            for name in ("conv0", "conv1"):
                if hasattr(block, name):
                    getattr(block, name).layer_index = layer_index
                    layer_index += 1
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def block_ws_ranges(self) -> list[tuple[int, int]]:
        """The slice ``[start, stop)`` of w+ that each block reads (neighbours overlap by one:
        a block's toRGB shares its w with the next block's first conv)."""
        out = []
        idx = 0
        for block in self.blocks():
            out.append((idx, idx + block.num_conv + block.num_torgb))
            idx += block.num_conv
        return out

    def forward(self, ws: torch.Tensor, **block_kwargs: Any) -> torch.Tensor:
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), "bad ws shape"
        ws = ws.float()
        x = img = None
        for block, (a, b) in zip(self.blocks(), self.block_ws_ranges(), strict=True):
            x, img = block(x, img, ws[:, a:b], **block_kwargs)
        assert img is not None
        return img


class Generator(nn.Module):
    """The StyleGAN2 generator: ``G(z, c) -> image``; ``G.mapping`` and ``G.synthesis``."""

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        c_dim: int = 0,
        img_resolution: int = 256,
        img_channels: int = 3,
        mapping_kwargs: dict[str, Any] | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        synthesis_kwargs = dict(synthesis_kwargs or {})
        self.init_kwargs: dict[str, Any] = plain_json(
            {
                "z_dim": z_dim,
                "w_dim": w_dim,
                "c_dim": c_dim,
                "img_resolution": img_resolution,
                "img_channels": img_channels,
                "mapping_kwargs": mapping_kwargs,
                "synthesis_kwargs": synthesis_kwargs,
            }
        )
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            **copy.deepcopy(synthesis_kwargs),
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs
        )

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> Generator:
        return cls(**copy.deepcopy(kwargs))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

"""StyleGAN2 discriminator (kept with a face model so it can be fine-tuned).

Our own implementation; names, shapes and order of parameters and buffers match NVIDIA's
StyleGAN2-ADA ``D.state_dict()`` (``b{r}.fromrgb/conv0/conv1/skip``, ``b4.mbstd/conv/fc/out``,
``mapping.*`` for conditional models).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from studio.face.generator import ARCHITECTURES, MappingNetwork, channels_for, plain_json
from studio.face.layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MinibatchStdLayer,
    downsample_2x,
    make_resample_filter,
)


class DiscriminatorBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
    ) -> None:
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", make_resample_filter(resample_filter))
        self.num_layers = 0
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, activation=activation,
                conv_clamp=conv_clamp,
            )
            self.num_layers += 1
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp
        )
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
            resample_filter=resample_filter, conv_clamp=conv_clamp,
        )
        self.num_layers += 2
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                resample_filter=resample_filter,
            )
            self.num_layers += 1

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = (x if x is not None else img).device  # type: ignore[union-attr]
        use_half = self.use_fp16 and not force_fp32 and device.type == "cuda"
        dtype = torch.float16 if use_half else torch.float32
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample_2x(img, self.resample_filter) if self.architecture == "skip" else None
        assert x is not None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None
    ) -> torch.Tensor:
        x = x.float().contiguous()
        if self.architecture == "skip":
            assert img is not None
            x = x + self.fromrgb(img.float())
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            assert cmap is not None
            x = (x * cmap).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """``D(img, c) -> logits [N, 1]``. Accepts NVIDIA's nested ``block_kwargs`` /
    ``mapping_kwargs`` / ``epilogue_kwargs`` as well as the flat ``mbstd_*`` arguments."""

    def __init__(
        self,
        c_dim: int = 0,
        img_resolution: int = 256,
        img_channels: int = 3,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        block_kwargs: dict[str, Any] | None = None,
        mapping_kwargs: dict[str, Any] | None = None,
        epilogue_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        block_kwargs = dict(block_kwargs or {})
        mapping_kwargs = dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        self.init_kwargs: dict[str, Any] = plain_json(
            {
                "c_dim": c_dim, "img_resolution": img_resolution, "img_channels": img_channels,
                "architecture": architecture, "channel_base": channel_base,
                "channel_max": channel_max, "num_fp16_res": num_fp16_res,
                "conv_clamp": conv_clamp, "cmap_dim": cmap_dim,
                "mbstd_group_size": mbstd_group_size, "mbstd_num_channels": mbstd_num_channels,
                "block_kwargs": block_kwargs, "mapping_kwargs": mapping_kwargs,
                "epilogue_kwargs": epilogue_kwargs,
            }
        )
        mbstd_group_size = epilogue_kwargs.pop("mbstd_group_size", mbstd_group_size)
        mbstd_num_channels = epilogue_kwargs.pop("mbstd_num_channels", mbstd_num_channels)
        # Training-only options of NVIDIA's blocks; frozen layers are a training concern here.
        self.freeze_layers = int(block_kwargs.pop("freeze_layers", 0))
        block_kwargs.pop("fp16_channels_last", None)

        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        log2 = int(math.log2(img_resolution))
        if img_resolution < 8 or 2**log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 8, not {img_resolution}")
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels_for(4, channel_base, channel_max)
        if c_dim == 0:
            cmap_dim = 0
        for res in self.block_resolutions:
            tmp = channels_for(res, channel_base, channel_max)
            block = DiscriminatorBlock(
                tmp if res < img_resolution else 0, tmp, channels_for(res // 2, channel_base, channel_max),
                resolution=res, img_channels=img_channels, architecture=architecture,
                conv_clamp=conv_clamp, use_fp16=res >= fp16_resolution, **block_kwargs,
            )
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs
            )
        self.b4 = DiscriminatorEpilogue(
            channels_for(4, channel_base, channel_max), cmap_dim=cmap_dim, resolution=4,
            img_channels=img_channels, architecture=architecture,
            mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
            conv_clamp=conv_clamp, **epilogue_kwargs,
        )

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> Discriminator:
        return cls(**kwargs)

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False
    ) -> torch.Tensor:
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        assert x is not None
        return self.b4(x, img, cmap)

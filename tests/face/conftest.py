"""Tiny face models built in code (32 px, a few channels) so the face tests run in seconds."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

TINY_KWARGS: dict[str, Any] = {
    "z_dim": 32,
    "w_dim": 32,
    "c_dim": 0,
    "img_resolution": 32,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 512, "channel_max": 32},
}


@pytest.fixture(autouse=True)
def _face_torch_threads() -> Iterator[None]:
    """One thread: the test machine is shared, and tiny convolutions gain nothing from more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs = {**TINY_KWARGS, **{k: v for k, v in overrides.items() if not k.endswith("_kwargs")}}
    for key in ("mapping_kwargs", "synthesis_kwargs"):
        kwargs[key] = {**TINY_KWARGS[key], **overrides.get(key, {})}
    return kwargs


def make_tiny_generator(seed: int = 0, **overrides: Any) -> Any:
    """A tiny generator with every parameter and buffer set to something non-trivial
    (noise strengths, biases and w_avg are zero after a fresh init)."""
    from studio.face.generator import Generator

    torch.manual_seed(seed)
    G = Generator(**tiny_kwargs(**overrides))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.2)
            elif name.endswith(".bias") and ".affine." not in name and "mapping" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        z = torch.randn(256, G.z_dim, generator=gen)
        c = torch.zeros(256, G.c_dim) if G.c_dim else None
        G.mapping.w_avg.copy_(G.mapping(z, c).mean(dim=(0, 1)))
    return G.eval().requires_grad_(False)


@pytest.fixture
def tiny_G() -> Any:
    return make_tiny_generator()


@pytest.fixture
def tiny_model_path(tmp_path: Path, tiny_G: Any) -> Path:
    from studio.face.model_file import save_face_model

    path = tmp_path / "tiny.safetensors"
    save_face_model(
        path, tiny_G, name="Tiny test face", source="built in tests", license="CC0-1.0",
        training={"untrained": True},
    )
    return path


def expected_nvidia_g_keys(kwargs: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """NVIDIA StyleGAN2-ADA ``G_ema.state_dict()`` keys, shapes and order (REFERENCE.md)."""
    syn = kwargs["synthesis_kwargs"]
    base, cmax = syn["channel_base"], syn["channel_max"]
    arch = syn.get("architecture", "skip")
    w, c_img, res = kwargs["w_dim"], kwargs["img_channels"], kwargs["img_resolution"]

    def ch(r: int) -> int:
        return min(base // r, cmax)

    def layer(prefix: str, cin: int, cout: int, r: int) -> list[tuple[str, tuple[int, ...]]]:
        return [
            (f"{prefix}.weight", (cout, cin, 3, 3)),
            (f"{prefix}.noise_strength", ()),
            (f"{prefix}.bias", (cout,)),
            (f"{prefix}.resample_filter", (4, 4)),
            (f"{prefix}.noise_const", (r, r)),
            (f"{prefix}.affine.weight", (cin, w)),
            (f"{prefix}.affine.bias", (cin,)),
        ]

    def torgb(prefix: str, cin: int) -> list[tuple[str, tuple[int, ...]]]:
        return [
            (f"{prefix}.weight", (c_img, cin, 1, 1)),
            (f"{prefix}.bias", (c_img,)),
            (f"{prefix}.affine.weight", (cin, w)),
            (f"{prefix}.affine.bias", (cin,)),
        ]

    keys: list[tuple[str, tuple[int, ...]]] = [
        ("synthesis.b4.const", (ch(4), 4, 4)),
        ("synthesis.b4.resample_filter", (4, 4)),
        *layer("synthesis.b4.conv1", ch(4), ch(4), 4),
    ]
    if arch == "skip" or res == 4:
        keys += torgb("synthesis.b4.torgb", ch(4))
    r = 8
    while r <= res:
        b = f"synthesis.b{r}"
        keys.append((f"{b}.resample_filter", (4, 4)))
        keys += layer(f"{b}.conv0", ch(r // 2), ch(r), r)
        keys += layer(f"{b}.conv1", ch(r), ch(r), r)
        if arch == "skip" or r == res:
            keys += torgb(f"{b}.torgb", ch(r))
        if arch == "resnet":
            keys += [(f"{b}.skip.weight", (ch(r), ch(r // 2), 1, 1)),
                     (f"{b}.skip.resample_filter", (4, 4))]
        r *= 2
    keys.append(("mapping.w_avg", (w,)))
    if kwargs["c_dim"]:
        keys += [("mapping.embed.weight", (w, kwargs["c_dim"])), ("mapping.embed.bias", (w,))]
    n = kwargs["mapping_kwargs"].get("num_layers", 8)
    feats = [kwargs["z_dim"] + (w if kwargs["c_dim"] else 0)] + [w] * n
    for i in range(n):
        keys += [(f"mapping.fc{i}.weight", (feats[i + 1], feats[i])), (f"mapping.fc{i}.bias", (w,))]
    return keys


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def to_u8(img: torch.Tensor) -> np.ndarray:
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


class FaceTestKit:
    """Helpers for the face tests, handed out by the ``kit`` fixture (test modules cannot
    import this conftest by name: ``tests/conftest.py`` has the same module name)."""

    kwargs = staticmethod(tiny_kwargs)
    make_G = staticmethod(make_tiny_generator)
    nvidia_keys = staticmethod(expected_nvidia_g_keys)
    psnr = staticmethod(psnr_u8)
    to_u8 = staticmethod(to_u8)


@pytest.fixture
def kit() -> type[FaceTestKit]:
    return FaceTestKit

"""rosinality/stylegan2-pytorch checkpoints (``.pt``) converted to our generator's format.

A training checkpoint is ``{g, d, g_ema, g_optim, d_optim, args, ada_aug_p}``; a converted
or exported one is ``{g_ema, latent_avg}``. Both are read with ``torch.load(...,
weights_only=True)``, with ``argparse.Namespace`` (the ``args`` entry) as the only extra
class allowed. Everything about the network is inferred from tensor shapes.

Name mapping (rosinality -> NVIDIA/ours; the arithmetic of both is the same: equalised
learning rate with weights stored unscaled, modulation biases stored with their +1):

=====================================  ==========================================
``style.{i+1}.weight/bias``            ``mapping.fc{i}.weight/bias``
``input.input [1,C,4,4]``              ``synthesis.b4.const [C,4,4]``
``conv1.*``, ``to_rgb1.*``             ``synthesis.b4.conv1.*``, ``synthesis.b4.torgb.*``
``convs.{2k}``, ``convs.{2k+1}``       ``synthesis.b{8*2^k}.conv0``, ``.conv1``
``to_rgbs.{k}``                        ``synthesis.b{8*2^k}.torgb``
``*.conv.weight [1,O,I,k,k]``          ``*.weight [O,I,k,k]`` (no flip)
``*.conv.modulation.*``                ``*.affine.*``
``*.noise.weight [1]``                 ``*.noise_strength []``
``*.activate.bias``                    ``*.bias``
``to_rgb*.bias [1,C,1,1]``             ``*.torgb.bias [C]``
``noises.noise_0``                     ``synthesis.b4.conv1.noise_const``
``noises.noise_{2k+1}/{2k+2}``         ``synthesis.b{8*2^k}.conv0/conv1.noise_const``
``latent_avg``                         ``mapping.w_avg``
=====================================  ==========================================

Blur and upsampling kernels are not copied: our layers rebuild the same [1,3,3,1] filter.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import FileFormatError

__all__ = [
    "RosinalityConfig",
    "convert_discriminator",
    "convert_generator",
    "infer_config",
    "is_rosinality_state",
    "load_checkpoint",
    "nvidia_channel_config",
]

NVIDIA_MAPPING_LR = 0.01
W_AVG_SAMPLES = 8192
W_AVG_SEED = 0
_STANDARD_BASES = (32768, 16384)
MAX_RESOLUTION = 4096  # the largest published StyleGAN2 models are 1024 (a few 2048) px


@dataclass
class RosinalityConfig:
    size: int
    style_dim: int
    n_mlp: int
    img_channels: int
    channels: dict[int, int]  # resolution -> width
    z_dim: int
    extra_keys: list[str] = field(default_factory=list)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``; only ``argparse.Namespace`` is let in.

    The file is checked first (a regular file of a sane size; every storage and tensor it
    declares really in it, see :mod:`.torch_checkpoint`), so a small hostile file cannot make
    us allocate what it claims."""
    from studio.face.importers.detect import check_checkpoint_file
    from studio.face.importers.torch_checkpoint import load_torch_checkpoint

    path = Path(path)
    size = check_checkpoint_file(path)
    ckpt = load_torch_checkpoint(path, size)
    if not isinstance(ckpt, dict):
        raise FileFormatError(
            f"holds a {type(ckpt).__name__}, not a checkpoint dict", path
        )
    return ckpt


def is_rosinality_state(sd: Any) -> bool:
    return isinstance(sd, dict) and "input.input" in sd and "style.1.weight" in sd


def pick_generator(ckpt: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The generator state dict in a rosinality checkpoint: ``g_ema``, else ``g``, else the
    checkpoint itself when it is a bare state dict."""
    for key in ("g_ema", "g"):
        if is_rosinality_state(ckpt.get(key)):
            return key, ckpt[key]
    if is_rosinality_state(ckpt):
        return "", ckpt
    raise FileFormatError("holds no rosinality StyleGAN2 generator (no 'g_ema' or 'g')")


# --------------------------------------------------------------------------- inference


def _shape(sd: dict[str, Any], key: str) -> tuple[int, ...]:
    import torch

    t = sd.get(key)
    if not isinstance(t, torch.Tensor):
        raise FileFormatError(f"the generator lacks {key}")
    return tuple(t.shape)


def infer_config(sd: dict[str, Any]) -> RosinalityConfig:
    """Read the network's configuration from the shapes in a rosinality state dict."""
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    if n_mlp == 0:
        raise FileFormatError("the generator has no mapping layers (style.1.weight)")
    style_dim, z_dim = _shape(sd, "style.1.weight")
    const = _shape(sd, "input.input")
    if len(const) != 4 or const[0] != 1 or const[2:] != (4, 4):
        raise FileFormatError(f"input.input has shape {list(const)}, expected [1, C, 4, 4]")
    n_rgbs = 0
    while f"to_rgbs.{n_rgbs}.conv.weight" in sd:
        n_rgbs += 1
    size = 4 * 2**n_rgbs
    if size > MAX_RESOLUTION:
        raise FileFormatError(
            f"the generator has {n_rgbs} upsampling blocks ({size}x{size} pixels); this "
            f"importer supports StyleGAN2 generators up to {MAX_RESOLUTION}x{MAX_RESOLUTION}"
        )
    channels = {4: const[1]}
    for k in range(n_rgbs):
        w = _shape(sd, f"convs.{2 * k}.conv.weight")
        if len(w) != 5:
            raise FileFormatError(f"convs.{2 * k}.conv.weight has an unexpected shape {list(w)}")
        channels[8 * 2**k] = w[1]
    img_channels = _shape(sd, "to_rgb1.conv.weight")[1]
    return RosinalityConfig(
        size=size, style_dim=style_dim, n_mlp=n_mlp, img_channels=img_channels,
        channels=channels, z_dim=z_dim,
    )


def nvidia_channel_config(channels: dict[int, int]) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(channel_base // r, channel_max)`` equal to
    ``channels[r]`` at every resolution, preferring NVIDIA's usual bases."""
    cmax = max(channels.values())
    top = max(channels)
    candidates = list(_STANDARD_BASES) + sorted(
        {r * c for r, c in channels.items()} | {cmax * top}
    )
    for base in candidates:
        if all(min(base // r, cmax) == c for r, c in channels.items()):
            return base, cmax
    widths = ", ".join(f"{r}px: {c}" for r, c in sorted(channels.items()))
    raise FileFormatError(
        f"its channel widths ({widths}) follow no NVIDIA-style schedule "
        "min(channel_base / resolution, channel_max), so our generator cannot hold them"
    )


# --------------------------------------------------------------------------- conversion


def generator_kwargs(cfg: RosinalityConfig, lr_mlp: float = NVIDIA_MAPPING_LR) -> dict[str, Any]:
    """Our ``Generator`` constructor arguments for an inferred rosinality configuration."""
    channel_base, channel_max = nvidia_channel_config(cfg.channels)
    mapping_kwargs: dict[str, Any] = {"num_layers": cfg.n_mlp}
    if not math.isclose(lr_mlp, NVIDIA_MAPPING_LR):
        mapping_kwargs["lr_multiplier"] = float(lr_mlp)
    return {
        "z_dim": cfg.style_dim,
        "w_dim": cfg.style_dim,
        "c_dim": 0,
        "img_resolution": cfg.size,
        "img_channels": cfg.img_channels,
        "mapping_kwargs": mapping_kwargs,
        "synthesis_kwargs": {
            "channel_base": channel_base,
            "channel_max": channel_max,
            "num_fp16_res": 0,
            "conv_clamp": None,
            "architecture": "skip",
        },
    }


def _blur_ok(t: Any) -> bool:
    import torch

    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k2 = torch.outer(k, k)
    k2 = k2 / k2.sum() * 4.0
    return tuple(t.shape) == (4, 4) and torch.allclose(t.float(), k2, atol=1e-6)


def convert_generator(
    sd: dict[str, Any],
    *,
    latent_avg: Any = None,
    lr_mlp: float = NVIDIA_MAPPING_LR,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``(init_kwargs, state_dict, notes)`` for our ``Generator`` from a rosinality
    generator state dict. Refuses (``FileFormatError``) what our generator cannot hold."""
    import torch

    cfg = infer_config(sd)
    if cfg.z_dim != cfg.style_dim:
        raise FileFormatError(
            f"the mapping's input ({cfg.z_dim}) and style ({cfg.style_dim}) sizes differ"
        )
    kwargs = generator_kwargs(cfg, lr_mlp)
    notes: list[str] = []

    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        t = sd.get(key)
        if not isinstance(t, torch.Tensor):
            raise FileFormatError(f"the generator lacks {key}")
        used.add(key)
        return t.detach().float()

    def put(key: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
        if tuple(t.shape) != shape:
            raise FileFormatError(
                f"{key} would get shape {list(t.shape)}, expected {list(shape)}"
            )
        out[key] = t.clone(memory_format=torch.contiguous_format)

    sdim = cfg.style_dim
    for i in range(cfg.n_mlp):
        put(f"mapping.fc{i}.weight", take(f"style.{i + 1}.weight"), (sdim, sdim))
        put(f"mapping.fc{i}.bias", take(f"style.{i + 1}.bias"), (sdim,))

    def styled(src: str, dst: str, cin: int, cout: int, res: int, noise: str) -> None:
        w = take(f"{src}.conv.weight")
        if w.ndim != 5 or w.shape[0] != 1:
            raise FileFormatError(f"{src}.conv.weight has an unexpected shape {list(w.shape)}")
        put(f"{dst}.weight", w[0], (cout, cin, 3, 3))
        put(f"{dst}.affine.weight", take(f"{src}.conv.modulation.weight"), (cin, sdim))
        put(f"{dst}.affine.bias", take(f"{src}.conv.modulation.bias"), (cin,))
        put(f"{dst}.noise_strength", take(f"{src}.noise.weight").reshape(()), ())
        put(f"{dst}.bias", take(f"{src}.activate.bias"), (cout,))
        nkey = f"noises.{noise}"
        if nkey in sd:
            n = take(nkey)
            if n.numel() != res * res:
                raise FileFormatError(f"{nkey} has shape {list(n.shape)}, expected {res}x{res}")
            put(f"{dst}.noise_const", n.reshape(res, res), (res, res))
        else:
            g = torch.Generator().manual_seed(hash_seed(dst))
            out[f"{dst}.noise_const"] = torch.randn(res, res, generator=g)
            notes.append(f"{nkey} was missing; made a fixed noise image for {dst}")
        blur = f"{src}.conv.blur.kernel"
        if blur in sd:
            used.add(blur)
            if not _blur_ok(sd[blur]):
                raise FileFormatError(f"{blur} is not the [1,3,3,1] filter our generator uses")

    def torgb(src: str, dst: str, cin: int) -> None:
        w = take(f"{src}.conv.weight")
        if w.ndim != 5 or w.shape[0] != 1:
            raise FileFormatError(f"{src}.conv.weight has an unexpected shape {list(w.shape)}")
        put(f"{dst}.weight", w[0], (cfg.img_channels, cin, 1, 1))
        put(f"{dst}.affine.weight", take(f"{src}.conv.modulation.weight"), (cin, sdim))
        put(f"{dst}.affine.bias", take(f"{src}.conv.modulation.bias"), (cin,))
        put(f"{dst}.bias", take(f"{src}.bias").reshape(-1), (cfg.img_channels,))
        up = f"{src}.upsample.kernel"
        if up in sd:
            used.add(up)
            if not _blur_ok(sd[up]):
                raise FileFormatError(f"{up} is not the [1,3,3,1] filter our generator uses")

    c4 = cfg.channels[4]
    put("synthesis.b4.const", take("input.input")[0], (c4, 4, 4))
    styled("conv1", "synthesis.b4.conv1", c4, c4, 4, "noise_0")
    torgb("to_rgb1", "synthesis.b4.torgb", c4)
    cin = c4
    for k in range(int(math.log2(cfg.size)) - 2):
        res = 8 * 2**k
        cout = cfg.channels[res]
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0", cin, cout, res, f"noise_{2 * k + 1}")
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", cout, cout, res, f"noise_{2 * k + 2}")
        torgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb", cout)
        cin = cout

    leftover = sorted(k for k in sd if k not in used and not k.startswith("noises."))
    if leftover:
        raise FileFormatError(
            "the generator has parts this importer does not know (a modified model?): "
            + ", ".join(leftover[:6])
            + (" ..." if len(leftover) > 6 else "")
        )

    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != sdim:
            raise FileFormatError(f"latent_avg does not have {sdim} values")
        w_avg = latent_avg.detach().float().reshape(sdim).clone()
    else:
        w_avg = mapping_mean(out, cfg.n_mlp, sdim, lr_mlp)
        notes.append(
            f"the checkpoint has no latent_avg; the average w was computed from "
            f"{W_AVG_SAMPLES} random latents (seed {W_AVG_SEED})"
        )
    out["mapping.w_avg"] = w_avg
    _add_resample_filters(out, cfg.size)
    return kwargs, out, notes


def _plain_kernel_ok(t: Any) -> bool:
    import torch

    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k2 = torch.outer(k, k)
    return tuple(t.shape) == (4, 4) and torch.allclose(t.float(), k2 / k2.sum(), atol=1e-6)


def is_rosinality_discriminator(sd: Any) -> bool:
    return isinstance(sd, dict) and "final_conv.0.weight" in sd and "convs.0.0.weight" in sd


def convert_discriminator(sd: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(init_kwargs, state_dict)`` for our (NVIDIA-layout, resnet) ``Discriminator`` from
    rosinality's. Same arithmetic: ``ConvLayer`` = equalised conv + fused leaky ReLU,
    ``ResBlock`` = conv, blur + strided conv, blurred 1x1 skip, sum / sqrt(2); minibatch
    stddev over groups of 4; two equalised linear layers."""
    import torch

    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def take(key: str, ndim: int) -> torch.Tensor:
        t = sd.get(key)
        if not isinstance(t, torch.Tensor) or t.ndim != ndim:
            raise FileFormatError(f"the discriminator lacks {key} or it has an unexpected shape")
        used.add(key)
        return t.detach().float().clone(memory_format=torch.contiguous_format)

    def kernel(key: str) -> None:
        if key in sd:
            used.add(key)
            if not _plain_kernel_ok(sd[key]):
                raise FileFormatError(f"{key} is not the [1,3,3,1] filter our networks use")

    n_blocks = 0
    while f"convs.{n_blocks + 1}.conv1.0.weight" in sd:
        n_blocks += 1
    if n_blocks == 0:
        raise FileFormatError("the discriminator has no residual blocks")
    size = 4 * 2**n_blocks
    fromrgb = take("convs.0.0.weight", 4)
    img_channels = fromrgb.shape[1]
    channels = {size: fromrgb.shape[0]}
    out[f"b{size}.fromrgb.weight"] = fromrgb
    out[f"b{size}.fromrgb.bias"] = take("convs.0.1.bias", 1)
    for j in range(1, n_blocks + 1):
        r = size // 2 ** (j - 1)
        b, src = f"b{r}", f"convs.{j}"
        out[f"{b}.conv0.weight"] = take(f"{src}.conv1.0.weight", 4)
        out[f"{b}.conv0.bias"] = take(f"{src}.conv1.1.bias", 1)
        out[f"{b}.conv1.weight"] = take(f"{src}.conv2.1.weight", 4)
        out[f"{b}.conv1.bias"] = take(f"{src}.conv2.2.bias", 1)
        out[f"{b}.skip.weight"] = take(f"{src}.skip.1.weight", 4)
        kernel(f"{src}.conv2.0.kernel")
        kernel(f"{src}.skip.0.kernel")
        channels[r // 2] = out[f"{b}.conv1.weight"].shape[0]
    out["b4.conv.weight"] = take("final_conv.0.weight", 4)
    out["b4.conv.bias"] = take("final_conv.1.bias", 1)
    out["b4.fc.weight"] = take("final_linear.0.weight", 2)
    out["b4.fc.bias"] = take("final_linear.0.bias", 1)
    out["b4.out.weight"] = take("final_linear.1.weight", 2)
    out["b4.out.bias"] = take("final_linear.1.bias", 1)
    leftover = sorted(k for k in sd if k not in used)
    if leftover:
        raise FileFormatError(
            "the discriminator has parts this importer does not know: " + ", ".join(leftover[:4])
        )
    if out["b4.out.weight"].shape[0] != 1:
        raise FileFormatError("the discriminator is conditional, which rosinality's never is")
    base, cmax = nvidia_channel_config(channels)
    f = _filter()
    for r in (size // 2**i for i in range(n_blocks)):
        for name in ([f"b{r}"] + [f"b{r}.{m}" for m in ("conv0", "conv1", "skip")]
                     + ([f"b{r}.fromrgb"] if r == size else [])):
            out[f"{name}.resample_filter"] = f.clone()
    out["b4.conv.resample_filter"] = f.clone()
    kwargs = {
        "c_dim": 0, "img_resolution": size, "img_channels": img_channels,
        "architecture": "resnet", "channel_base": base, "channel_max": cmax,
        "num_fp16_res": 0, "conv_clamp": None,
        "epilogue_kwargs": {"mbstd_group_size": 4, "mbstd_num_channels": 1},
    }
    return kwargs, out


def _filter() -> Any:
    import torch

    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(k, k)
    return f / f.sum()


def hash_seed(text: str) -> int:
    """A stable seed from a name (Python's ``hash`` of a string changes between runs)."""
    h = 0
    for ch in text.encode():
        h = (h * 131 + ch) % (2**31 - 1)
    return h


def _add_resample_filters(out: dict[str, Any], size: int) -> None:
    f = _filter()
    for r in (2**i for i in range(2, int(math.log2(size)) + 1)):
        out[f"synthesis.b{r}.resample_filter"] = f.clone()
        if r > 4:
            out[f"synthesis.b{r}.conv0.resample_filter"] = f.clone()
        out[f"synthesis.b{r}.conv1.resample_filter"] = f.clone()


def mapping_mean(
    sd: dict[str, Any], n_mlp: int, dim: int, lr_mlp: float, samples: int = W_AVG_SAMPLES
) -> Any:
    """Mean of the mapping network's output over seeded random latents (rosinality's
    ``mean_latent``), computed from converted mapping weights."""
    import torch

    g = torch.Generator().manual_seed(W_AVG_SEED)
    total = torch.zeros(dim, dtype=torch.float64)
    done = 0
    with torch.no_grad():
        while done < samples:
            n = min(1024, samples - done)
            x = torch.randn(n, dim, generator=g)
            x = x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
            for i in range(n_mlp):
                w = sd[f"mapping.fc{i}.weight"] * (lr_mlp / math.sqrt(dim))
                b = sd[f"mapping.fc{i}.bias"] * lr_mlp
                x = torch.nn.functional.leaky_relu(x @ w.t() + b, 0.2) * math.sqrt(2)
            total += x.double().sum(dim=0)
            done += n
    return (total / samples).float()


def checkpoint_lr_mlp(ckpt: dict[str, Any]) -> float:
    args = ckpt.get("args")
    lr = getattr(args, "lr_mlp", None) if isinstance(args, argparse.Namespace) else None
    return float(lr) if isinstance(lr, int | float) and lr > 0 else NVIDIA_MAPPING_LR


def checkpoint_args(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The training arguments saved in the checkpoint, as plain JSON-able values."""
    args = ckpt.get("args")
    if not isinstance(args, argparse.Namespace):
        return {}
    out = {}
    for k, v in vars(args).items():
        if isinstance(v, bool | int | float | str) or v is None:
            out[str(k)] = v
    return out

"""Tiny StyleGAN2 checkpoints built in code, in the exact formats artists have on disk.

NVIDIA pickles are written without NVIDIA's code: throwaway modules named
``torch_utils.persistence`` and ``dnnlib.util`` are put in ``sys.modules`` only while
pickling, so the pickler emits the same global references as the real files, and each
network is an object whose ``__reduce__`` gives ``(_reconstruct_persistent_obj, (meta,),
None)`` with ``meta = {type, version, module_src, class_name, state}`` as
``torch_utils/persistence.py`` writes it. ``module_src`` holds code that would create a
marker file if anything ever executed it.

rosinality checkpoints are plain state dicts with the key names and shapes of
``rosinality/stylegan2-pytorch/model.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import pickle
import re
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

PERSISTENCE_VERSION = 6

BUFFER_NAMES = {"resample_filter", "noise_const", "w_avg"}


# --------------------------------------------------------------------------- fake NVIDIA modules


def _fake_reconstruct(meta: Any) -> Any:  # never called: only its name gets pickled
    raise AssertionError("the fixture reconstructor must never run")


class FakeEasyDict(dict):
    """Same pickled form as ``dnnlib.util.EasyDict`` (a dict subclass with attribute access)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


_fake_reconstruct.__module__ = "torch_utils.persistence"
_fake_reconstruct.__name__ = _fake_reconstruct.__qualname__ = "_reconstruct_persistent_obj"
FakeEasyDict.__module__ = "dnnlib.util"
FakeEasyDict.__name__ = FakeEasyDict.__qualname__ = "EasyDict"


@contextlib.contextmanager
def fake_nvidia_modules() -> Iterator[None]:
    """Make ``torch_utils.persistence`` and ``dnnlib.util`` importable by name, briefly."""
    tu = types.ModuleType("torch_utils")
    tup = types.ModuleType("torch_utils.persistence")
    tup._reconstruct_persistent_obj = _fake_reconstruct
    tu.persistence = tup
    dn = types.ModuleType("dnnlib")
    dnu = types.ModuleType("dnnlib.util")
    dnu.EasyDict = FakeEasyDict
    dn.util = dnu
    dn.EasyDict = FakeEasyDict
    names = {"torch_utils": tu, "torch_utils.persistence": tup, "dnnlib": dn, "dnnlib.util": dnu}
    saved = {k: sys.modules.get(k) for k in names}
    sys.modules.update(names)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def easy(value: Any) -> Any:
    if isinstance(value, dict):
        return FakeEasyDict({k: easy(v) for k, v in value.items()})
    return value


def marker_source(marker: Path) -> str:
    """Module source that, if executed, creates ``marker`` (it never must be)."""
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('module_src was executed')\n"
        "class Generator: pass\n"
    )


class Persistent:
    """Pickles exactly like a ``@persistent_class`` module instance."""

    def __init__(self, class_name: str, state: dict[str, Any], module_src: str) -> None:
        self.meta = {
            "type": "class",
            "version": PERSISTENCE_VERSION,
            "module_src": module_src,
            "class_name": class_name,
            "state": state,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_fake_reconstruct, (self.meta,), None)


def module_state(
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    modules: dict[str, Any],
    init_kwargs: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A module ``__dict__`` as recent torch versions have it."""
    state: dict[str, Any] = {
        "training": False,
        "_parameters": OrderedDict(
            (k, torch.nn.Parameter(v.detach().clone(), requires_grad=False))
            for k, v in params.items()
        ),
        "_buffers": OrderedDict((k, v.detach().clone()) for k, v in buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_pre_hooks": OrderedDict(),
        "_backward_hooks": OrderedDict(),
        "_is_full_backward_hook": None,
        "_forward_hooks": OrderedDict(),
        "_forward_hooks_with_kwargs": OrderedDict(),
        "_forward_hooks_always_called": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_forward_pre_hooks_with_kwargs": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_state_dict_pre_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_load_state_dict_post_hooks": OrderedDict(),
        "_modules": OrderedDict(modules),
        "_init_args": (),
        "_init_kwargs": dict(init_kwargs or {}),
    }
    state.update(extra or {})
    return state


def _class_name(path: list[str], top: str) -> str:
    name = path[-1] if path else ""
    parent = path[-2] if len(path) >= 2 else ""
    if not path:
        return top
    if top == "Generator":
        if name == "synthesis":
            return "SynthesisNetwork"
        if name == "mapping":
            return "MappingNetwork"
        if re.fullmatch(r"b\d+", name):
            return "SynthesisBlock"
        if name in ("conv0", "conv1"):
            return "SynthesisLayer"
        if name == "torgb":
            return "ToRGBLayer"
        if name == "skip":
            return "Conv2dLayer"
    else:
        if name == "mapping":
            return "MappingNetwork"
        if name == "b4" and len(path) == 1:
            return "DiscriminatorEpilogue"
        if re.fullmatch(r"b\d+", name):
            return "DiscriminatorBlock"
        if name in ("fromrgb", "conv0", "conv1", "skip", "conv"):
            return "Conv2dLayer"
        if name == "mbstd":
            return "MinibatchStdLayer"
    if name in ("affine", "embed", "fc", "out") or re.fullmatch(r"fc\d+", name):
        return "FullyConnectedLayer"
    raise AssertionError(f"no NVIDIA class for {'.'.join(path)} ({parent})")


def network_from_state_dict(
    sd: dict[str, torch.Tensor],
    top: str,
    init_kwargs: dict[str, Any],
    module_src: str,
    non_persistent: dict[str, set[str]] | None = None,
) -> Persistent:
    """Nest a flat NVIDIA ``state_dict`` into persistent module objects (order kept)."""
    tree: dict[str, Any] = {"params": {}, "buffers": {}, "children": {}}
    for key, t in sd.items():
        *mods, leaf = key.split(".")
        node = tree
        for m in mods:
            node = node["children"].setdefault(m, {"params": {}, "buffers": {}, "children": {}})
        (node["buffers"] if leaf in BUFFER_NAMES else node["params"])[leaf] = t

    def build(node: dict[str, Any], path: list[str]) -> Persistent:
        children = {k: build(v, [*path, k]) for k, v in node["children"].items()}
        extra: dict[str, Any] = {}
        cls = _class_name(path, top)
        if cls == "FullyConnectedLayer":
            w = node["params"]["weight"]
            extra = {"activation": "linear", "weight_gain": np.float64(1 / math.sqrt(w.shape[1])),
                     "bias_gain": 1.0}
        if cls == "SynthesisLayer":
            extra = {"resolution": int(node["buffers"]["noise_const"].shape[-1]), "up": 1,
                     "act_gain": np.float32(math.sqrt(2)), "padding": 1, "conv_clamp": None}
        state = module_state(
            node["params"], node["buffers"], children,
            init_kwargs=init_kwargs if not path else {}, extra=extra,
        )
        if non_persistent and ".".join(path) in non_persistent:
            state["_non_persistent_buffers_set"] = set(non_persistent[".".join(path)])
        return Persistent(cls, state, module_src)

    return build(tree, [])


def nvidia_g_init_kwargs(kwargs: dict[str, Any], flat: bool = False) -> dict[str, Any]:
    """``_init_kwargs`` as stylegan2-ada-pytorch's train.py builds them (EasyDicts), or
    flattened as the stylegan3 repository passes them to its StyleGAN2 generator."""
    out: dict[str, Any] = {
        "z_dim": kwargs["z_dim"],
        "w_dim": kwargs["w_dim"],
        "mapping_kwargs": easy(kwargs.get("mapping_kwargs", {})),
    }
    if flat:
        out.update(kwargs.get("synthesis_kwargs", {}))
        out["fused_modconv_default"] = "inference_only"
    else:
        out["synthesis_kwargs"] = easy(kwargs.get("synthesis_kwargs", {}))
    out.update(c_dim=kwargs["c_dim"], img_resolution=kwargs["img_resolution"],
               img_channels=kwargs["img_channels"])
    return out


def nvidia_pickle_bytes(
    networks: dict[str, Any],
    protocol: int,
    training_set_kwargs: dict[str, Any] | None = None,
    old_numpy_names: bool = False,
) -> bytes:
    """``pickle.dump`` of the snapshot dict, the way NVIDIA's training loop writes it."""
    data = dict(networks)
    if training_set_kwargs is not None:
        data["training_set_kwargs"] = dict(training_set_kwargs)
    with fake_nvidia_modules():
        raw = pickle.dumps(data, protocol=protocol)
    if old_numpy_names:
        assert protocol <= 3, "rewriting names is only safe with text GLOBAL opcodes"
        raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    return raw


def augment_pipe(module_src: str) -> Persistent:
    state = module_state(
        {}, {"p": torch.tensor(0.25), "Hz_geom": torch.randn(12)}, {},
        init_kwargs={"xflip": 1, "rotate90": 1, "xint": 1},
        extra={"xflip": 1.0, "rotate90": 1.0},
    )
    return Persistent("AugmentPipe", state, module_src)


def write_nvidia_pkl(
    path: Path,
    G_state: dict[str, torch.Tensor] | None,
    G_kwargs: dict[str, Any],
    *,
    marker: Path,
    protocol: int = 4,
    D_state: dict[str, torch.Tensor] | None = None,
    D_kwargs: dict[str, Any] | None = None,
    flat: bool = False,
    include: tuple[str, ...] = ("G", "D", "G_ema", "augment_pipe"),
    old_numpy_names: bool = False,
) -> Path:
    src = marker_source(marker)
    nets: dict[str, Any] = {}
    gk = nvidia_g_init_kwargs(G_kwargs, flat=flat)
    if G_state is not None:
        if "G" in include:
            g_train = {k: v + 0.01 if v.is_floating_point() and "filter" not in k else v
                       for k, v in G_state.items()}
            nets["G"] = network_from_state_dict(g_train, "Generator", gk, src)
        if D_state is not None and "D" in include:
            nets["D"] = network_from_state_dict(D_state, "Discriminator", easy(D_kwargs or {}), src)
        if "G_ema" in include:
            nets["G_ema"] = network_from_state_dict(G_state, "Generator", gk, src)
    if "augment_pipe" in include:
        nets["augment_pipe"] = augment_pipe(src)
    tsk = {"class_name": "training.dataset.ImageFolderDataset", "path": "faces.zip",
           "use_labels": bool(G_kwargs.get("c_dim")), "max_size": 200, "xflip": False,
           "resolution": G_kwargs["img_resolution"]}
    path.write_bytes(nvidia_pickle_bytes(nets, protocol, tsk, old_numpy_names=old_numpy_names))
    return path


# --------------------------------------------------------------------------- our networks


TINY_G = {
    "z_dim": 8, "w_dim": 8, "c_dim": 0, "img_resolution": 16, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 128, "channel_max": 16, "num_fp16_res": 4,
                         "conv_clamp": 256},
}
TINY_D = {
    "c_dim": 0, "img_resolution": 16, "img_channels": 3, "architecture": "resnet",
    "channel_base": 128, "channel_max": 16, "num_fp16_res": 4, "conv_clamp": 256,
    "cmap_dim": None, "block_kwargs": {"freeze_layers": 0}, "mapping_kwargs": {},
    "epilogue_kwargs": {"mbstd_group_size": 4},
}


def randomized(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every parameter non-trivial values (zero biases and noise strengths hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if "affine" in name else 0.0))
        for name, b in net.named_buffers():
            if name.endswith("w_avg"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    return net.eval().requires_grad_(False)


def tiny_generator(seed: int = 0, **overrides: Any) -> Any:
    from studio.face.generator import Generator

    kwargs = {**TINY_G, **overrides}
    torch.manual_seed(seed)
    return randomized(Generator(**kwargs), seed + 1), kwargs


def tiny_discriminator(seed: int = 0, **overrides: Any) -> Any:
    from studio.face.discriminator import Discriminator

    kwargs = {**TINY_D, **overrides}
    torch.manual_seed(seed + 100)
    return randomized(Discriminator(**kwargs), seed + 101), kwargs


def expected_g_keys(kwargs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """NVIDIA ``G_ema.state_dict()`` keys and shapes for a skip generator, from the
    layout in REFERENCE.md (independent of our Generator's code)."""
    syn = kwargs["synthesis_kwargs"]
    base, cmax = syn["channel_base"], syn["channel_max"]
    w, C, R = kwargs["w_dim"], kwargs["img_channels"], kwargs["img_resolution"]

    def ch(r: int) -> int:
        return min(base // r, cmax)

    out: dict[str, tuple[int, ...]] = {}
    f = (4, 4)
    for r in (2**i for i in range(2, int(math.log2(R)) + 1)):
        b = f"synthesis.b{r}"
        if r == 4:
            out[f"{b}.const"] = (ch(4), 4, 4)
        out[f"{b}.resample_filter"] = f
        convs = [("conv1", ch(4), ch(4))] if r == 4 else [
            ("conv0", ch(r // 2), ch(r)), ("conv1", ch(r), ch(r))]
        for name, cin, cout in convs:
            out[f"{b}.{name}.weight"] = (cout, cin, 3, 3)
            out[f"{b}.{name}.noise_strength"] = ()
            out[f"{b}.{name}.bias"] = (cout,)
            out[f"{b}.{name}.resample_filter"] = f
            out[f"{b}.{name}.noise_const"] = (r, r)
            out[f"{b}.{name}.affine.weight"] = (cin, w)
            out[f"{b}.{name}.affine.bias"] = (cin,)
        out[f"{b}.torgb.weight"] = (C, ch(r), 1, 1)
        out[f"{b}.torgb.bias"] = (C,)
        out[f"{b}.torgb.affine.weight"] = (ch(r), w)
        out[f"{b}.torgb.affine.bias"] = (ch(r),)
    n = kwargs["mapping_kwargs"]["num_layers"]
    for i in range(n):
        fin = kwargs["z_dim"] if i == 0 else w
        out[f"mapping.fc{i}.weight"] = (w, fin)
        out[f"mapping.fc{i}.bias"] = (w,)
    out["mapping.w_avg"] = (w,)
    return out


# --------------------------------------------------------------------------- rosinality


ROS_SIZE = 16
ROS_STYLE = 8
ROS_MLP = 2
ROS_CHANNELS = {4: 16, 8: 16, 16: 8}  # rosinality hard-codes 512s; a fork-sized tiny net


def _blur_kernel() -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


def rosinality_generator_state(
    seed: int = 0,
    size: int = ROS_SIZE,
    style_dim: int = ROS_STYLE,
    n_mlp: int = ROS_MLP,
    channels: dict[int, int] | None = None,
    lr_mlp: float = 0.01,
) -> dict[str, torch.Tensor]:
    """A state dict with every key of rosinality's ``Generator`` (model.py), in its order.

    Values follow rosinality's initialisation conventions (``EqualLinear`` weights divided by
    ``lr_mul``, modulation biases initialised at 1), perturbed so nothing is trivial."""
    channels = dict(channels or ROS_CHANNELS)
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int, s: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    sd: dict[str, torch.Tensor] = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = randn(style_dim, style_dim) / lr_mlp
        sd[f"style.{i}.bias"] = randn(style_dim, s=0.1 / lr_mlp)
    sd["input.input"] = randn(1, channels[4], 4, 4)

    def styled(prefix: str, cin: int, cout: int, up: bool) -> None:
        sd[f"{prefix}.conv.weight"] = randn(1, cout, cin, 3, 3)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = _blur_kernel() * 4
        sd[f"{prefix}.conv.modulation.weight"] = randn(cin, style_dim)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + randn(cin, s=0.2)
        sd[f"{prefix}.noise.weight"] = randn(1, s=0.3)
        sd[f"{prefix}.activate.bias"] = randn(cout, s=0.2)

    def to_rgb(prefix: str, cin: int, up: bool) -> None:
        if up:
            sd[f"{prefix}.upsample.kernel"] = _blur_kernel() * 4
        sd[f"{prefix}.conv.weight"] = randn(1, 3, cin, 1, 1)
        sd[f"{prefix}.conv.modulation.weight"] = randn(cin, style_dim)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + randn(cin, s=0.2)
        sd[f"{prefix}.bias"] = randn(1, 3, 1, 1, s=0.2)

    styled("conv1", channels[4], channels[4], False)
    to_rgb("to_rgb1", channels[4], False)
    log_size = int(math.log2(size))
    num_layers = (log_size - 2) * 2 + 1
    for i in range(num_layers):
        res = (i + 5) // 2
        sd[f"noises.noise_{i}"] = randn(1, 1, 2**res, 2**res)
    cin = channels[4]
    for j, i in enumerate(range(3, log_size + 1)):
        cout = channels[2**i]
        styled(f"convs.{2 * j}", cin, cout, True)
        styled(f"convs.{2 * j + 1}", cout, cout, False)
        cin = cout
    for j, i in enumerate(range(3, log_size + 1)):
        to_rgb(f"to_rgbs.{j}", channels[2**i], True)
    return _rosinality_order(sd)


def _rosinality_order(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Module registration order of rosinality's Generator: style, input, conv1, to_rgb1,
    convs, to_rgbs, noises."""
    groups = ["style.", "input.", "conv1.", "to_rgb1.", "convs.", "to_rgbs.", "noises."]
    return {k: sd[k] for grp in groups for k in sd if k.startswith(grp)}


def rosinality_discriminator_state(
    seed: int = 1, size: int = ROS_SIZE, channels: dict[int, int] | None = None
) -> dict[str, torch.Tensor]:
    """Every key of rosinality's ``Discriminator`` (model.py): ``convs.0`` = ConvLayer(3, ch,
    1), ``convs.{j}`` = ResBlocks (conv1 / blur+conv2 / blur+skip), ``final_conv``,
    ``final_linear``."""
    channels = dict(channels or ROS_CHANNELS)
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int, s: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    sd: dict[str, torch.Tensor] = {
        "convs.0.0.weight": randn(channels[size], 3, 1, 1),
        "convs.0.1.bias": randn(channels[size], s=0.2),
    }
    in_ch = channels[size]
    for j, i in enumerate(range(int(math.log2(size)), 2, -1), start=1):
        out_ch = channels[2 ** (i - 1)]
        sd[f"convs.{j}.conv1.0.weight"] = randn(in_ch, in_ch, 3, 3)
        sd[f"convs.{j}.conv1.1.bias"] = randn(in_ch, s=0.2)
        sd[f"convs.{j}.conv2.0.kernel"] = _blur_kernel()
        sd[f"convs.{j}.conv2.1.weight"] = randn(out_ch, in_ch, 3, 3)
        sd[f"convs.{j}.conv2.2.bias"] = randn(out_ch, s=0.2)
        sd[f"convs.{j}.skip.0.kernel"] = _blur_kernel()
        sd[f"convs.{j}.skip.1.weight"] = randn(out_ch, in_ch, 1, 1)
        in_ch = out_ch
    c4 = channels[4]
    sd["final_conv.0.weight"] = randn(c4, in_ch + 1, 3, 3)
    sd["final_conv.1.bias"] = randn(c4, s=0.2)
    sd["final_linear.0.weight"] = randn(c4, c4 * 16)
    sd["final_linear.0.bias"] = randn(c4, s=0.2)
    sd["final_linear.1.weight"] = randn(1, c4)
    sd["final_linear.1.bias"] = randn(1, s=0.2)
    return sd


def rosinality_args(**overrides: Any) -> argparse.Namespace:
    args = argparse.Namespace(
        path="faces_lmdb", arch="stylegan2", iter=800000, batch=16, n_sample=64,
        size=ROS_SIZE, r1=10.0, path_regularize=2.0, path_batch_shrink=2, d_reg_every=16,
        g_reg_every=4, mixing=0.9, ckpt=None, lr=0.002, channel_multiplier=2, wandb=False,
        local_rank=0, augment=True, augment_p=0.0, ada_target=0.6, ada_length=500000,
        ada_every=256, latent=ROS_STYLE, n_mlp=ROS_MLP, start_iter=0, distributed=False,
    )
    for k, v in overrides.items():
        setattr(args, k, v)
    return args


def write_rosinality_training_ckpt(
    path: Path, g_ema: dict[str, torch.Tensor], d: dict[str, torch.Tensor] | None = None, **kw: Any
) -> Path:
    """``train.py``'s checkpoint: ``{g, d, g_ema, g_optim, d_optim, args, ada_aug_p}``."""
    g = {k: v + 0.01 if not k.endswith("kernel") else v for k, v in g_ema.items()}
    d = rosinality_discriminator_state() if d is None else d
    torch.save(
        {"g": g, "d": d, "g_ema": g_ema, "g_optim": adam_state(list(g.values())),
         "d_optim": adam_state(list(d.values())), "args": rosinality_args(**kw), "ada_aug_p": 0.125},
        path,
    )
    return path


def adam_state(params: list[torch.Tensor]) -> dict[str, Any]:
    """What ``torch.optim.Adam(...).state_dict()`` holds after some steps."""
    state = {
        i: {"step": torch.tensor(1000.0), "exp_avg": p * 0.01, "exp_avg_sq": p.square() * 1e-4}
        for i, p in enumerate(params)
    }
    group = {"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
             "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
             "fused": None, "params": list(range(len(params)))}
    return {"state": state, "param_groups": [group]}


def write_rosinality_export(path: Path, g_ema: dict[str, torch.Tensor], latent_avg: torch.Tensor) -> Path:
    """``convert_weight.py``'s output: ``{g_ema, latent_avg}``."""
    torch.save({"g_ema": g_ema, "latent_avg": latent_avg}, path)
    return path


def torch_save_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()

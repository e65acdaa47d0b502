"""NVIDIA StyleGAN2 network pickles (stylegan2-ada-pytorch, and the StyleGAN2 networks of
the stylegan3 repository) read as data and converted to our generator's format.

The file is a pickled dict ``{G, D, G_ema, augment_pipe, training_set_kwargs}``; every
network in it is a persistent object whose state is the module ``__dict__``. We read it with
:mod:`studio.face.importers.safe_pickle` (nothing executed), rebuild each network's
``state_dict()`` by walking ``_parameters``, ``_buffers`` (less the non-persistent ones) and
``_modules``, and turn ``_init_kwargs`` into our constructor arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import FileFormatError
from studio.face.importers.safe_pickle import (
    NumpyDType,
    PersistentObject,
    PickleRefused,
    load_restricted,
)

__all__ = [
    "NvidiaPickle",
    "convert_discriminator",
    "convert_generator",
    "discriminator_kwargs",
    "generator_kwargs",
    "module_state_dict",
    "network_kind",
    "read_nvidia_pickle",
]

NETWORK_KEYS = ("G", "D", "G_ema", "augment_pipe")

# NVIDIA Generator.__init__(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs,
# synthesis_kwargs): the order ``_init_args`` would follow if a network was built positionally.
_G_POSITIONAL = (
    "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
    "synthesis_kwargs",
)
_G_TOP = frozenset(_G_POSITIONAL)
_D_POSITIONAL = (
    "c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
    "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs",
    "epilogue_kwargs",
)

# Options our generator understands, by where NVIDIA passes them.
MAPPING_OPTIONS = frozenset(
    {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}
)
SYNTHESIS_OPTIONS = frozenset(
    {
        "channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
        "resample_filter", "use_noise", "activation", "kernel_size", "fp16_channels_last",
    }
)
# Performance switches of NVIDIA's training code with no effect on the output.
IGNORED_SYNTHESIS_OPTIONS = frozenset({"fused_modconv_default"})
# Names that only StyleGAN3 (alias-free) synthesis networks take.
STYLEGAN3_OPTIONS = frozenset(
    {
        "channels_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
        "last_stopband_rel", "margin_size", "output_scale", "magnitude_ema_beta",
        "conv_kernel", "use_radial_filters",
    }
)
STYLEGAN3_CLASSES = frozenset({"SynthesisInput"})


@dataclass
class NvidiaPickle:
    """What a network pickle holds, read as data."""

    networks: dict[str, PersistentObject]
    training_set_kwargs: dict[str, Any] | None = None
    other_keys: list[str] = field(default_factory=list)

    @property
    def generator(self) -> PersistentObject | None:
        return self.networks.get("G_ema") or self.networks.get("G")

    @property
    def generator_key(self) -> str | None:
        return "G_ema" if "G_ema" in self.networks else ("G" if "G" in self.networks else None)


def read_nvidia_pickle(path: str | Path) -> NvidiaPickle:
    """Read a network pickle without executing anything in it (see ``safe_pickle``)."""
    from studio.face.importers.detect import check_checkpoint_file

    path = Path(path)
    size = check_checkpoint_file(path)  # a regular file of a size we can hold
    try:
        with path.open("rb") as f:
            raw = f.read(size + 1)  # (asking for the size limit would allocate all of it)
    except OSError as exc:
        raise FileFormatError(f"cannot be read ({exc.strerror or exc})", path) from None
    if len(raw) != size:
        raise FileFormatError("changed while being read; try again", path)
    try:
        data = load_restricted(raw)
    except PickleRefused as exc:
        raise FileFormatError(f"refused as a StyleGAN network pickle: {exc.reason}", path) from None
    if not isinstance(data, dict):
        raise FileFormatError(
            f"is a pickle of a {type(data).__name__}, not of a StyleGAN network dict", path
        )
    networks = {k: v for k, v in data.items() if isinstance(v, PersistentObject)}
    if "G_ema" not in networks and "G" not in networks:
        raise FileFormatError(
            "holds no generator network (no 'G_ema' or 'G' entry); keys: "
            + ", ".join(sorted(map(str, data)))[:200],
            path,
        )
    tsk = data.get("training_set_kwargs")
    return NvidiaPickle(
        networks=networks,
        training_set_kwargs=plain_data(tsk) if isinstance(tsk, dict) else None,
        other_keys=[str(k) for k in data if k not in networks and k != "training_set_kwargs"],
    )


# --------------------------------------------------------------------------- module states


def plain_data(value: Any, _depth: int = 0) -> Any:
    """JSON-ready copy of kwargs read from a pickle (EasyDict/OrderedDict -> dict, numpy
    scalars -> Python numbers, tuples -> lists). Anything else becomes its ``repr``."""
    if _depth > 32:
        raise FileFormatError("its network settings are nested too deeply")
    if isinstance(value, dict):
        return {str(k): plain_data(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v, _depth + 1) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= 4096:
        return value.tolist()
    if isinstance(value, NumpyDType):
        return str(value.dtype)
    return f"<{type(value).__name__}>"


def _state(obj: PersistentObject, what: str) -> dict[str, Any]:
    if not isinstance(obj, PersistentObject):
        raise FileFormatError(f"{what} is not a network module")
    return obj.state


def _children(o: PersistentObject, where: str) -> dict[str, Any]:
    modules = o.state.get("_modules") or {}
    if not isinstance(modules, dict):
        raise FileFormatError(f"module {where or '(root)'} has a malformed state")
    return modules


def module_state_dict(obj: PersistentObject, prefix: str = "") -> dict[str, Any]:
    """The ``state_dict()`` of a pickled module, keys and order as torch would give them."""
    import torch

    out: dict[str, Any] = {}
    seen: set[int] = set()

    def walk(o: PersistentObject, pre: str, depth: int) -> None:
        where = pre.rstrip(".")
        if depth > 64:
            raise FileFormatError("its network modules are nested too deeply")
        if id(o) in seen:
            raise FileFormatError(f"module {where or '(root)'} appears twice in the network")
        seen.add(id(o))
        st = _state(o, where or "the network")
        params = st.get("_parameters") or {}
        buffers = st.get("_buffers") or {}
        skip = st.get("_non_persistent_buffers_set") or set()
        if not isinstance(params, dict) or not isinstance(buffers, dict):
            raise FileFormatError(f"module {where or '(root)'} has a malformed state")
        if not isinstance(skip, set | frozenset | list | tuple):
            raise FileFormatError(f"module {where or '(root)'} has a malformed state")
        for kind, entries in (("parameter", params), ("buffer", buffers)):
            for name, t in entries.items():
                if t is None or (kind == "buffer" and name in skip):
                    continue
                if not isinstance(t, torch.Tensor):
                    raise FileFormatError(f"{kind} {pre}{name} is not a tensor")
                out[f"{pre}{name}"] = t
        for name, child in _children(o, where).items():
            if child is None:
                continue
            if not isinstance(child, PersistentObject):
                raise FileFormatError(f"submodule {pre}{name} is not a network module")
            walk(child, f"{pre}{name}.", depth + 1)

    walk(obj, prefix, 0)
    return out


def _class_names(obj: PersistentObject) -> set[str]:
    names: set[str] = set()
    seen: set[int] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or len(seen) > 100_000:
            continue
        seen.add(id(o))
        names.add(o.class_name)
        modules = o.state.get("_modules") or {}
        if isinstance(modules, dict):
            stack.extend(c for c in modules.values() if isinstance(c, PersistentObject))
    return names


def _raw_kwargs(obj: PersistentObject, positional: tuple[str, ...]) -> dict[str, Any]:
    st = obj.state
    kwargs = st.get("_init_kwargs") or {}
    args = st.get("_init_args") or ()
    if not isinstance(kwargs, dict) or not isinstance(args, tuple | list):
        raise FileFormatError(f"the {obj.class_name} network's constructor arguments are malformed")
    out = dict(kwargs)
    for name, value in zip(positional, args, strict=False):
        out.setdefault(name, value)
    return out


def network_kind(obj: PersistentObject) -> str:
    """``'stylegan2'``, ``'stylegan3'`` or ``'unknown'`` for a pickled generator."""
    if _class_names(obj) & STYLEGAN3_CLASSES:
        return "stylegan3"
    kwargs = _raw_kwargs(obj, _G_POSITIONAL)
    synth = kwargs.get("synthesis_kwargs") or {}
    flat = set(kwargs) | (set(synth) if isinstance(synth, dict) else set())
    if flat & STYLEGAN3_OPTIONS:
        return "stylegan3"
    syn = _children(obj, "").get("synthesis")
    if isinstance(syn, PersistentObject):
        mods = _children(syn, "synthesis")
        if "input" in mods:
            return "stylegan3"
        b4 = mods.get("b4")
        params = b4.state.get("_parameters") if isinstance(b4, PersistentObject) else None
        if isinstance(params, dict) and "const" in params:
            return "stylegan2"
    return "unknown"


# --------------------------------------------------------------------------- generator


def generator_kwargs(obj: PersistentObject) -> tuple[dict[str, Any], list[str]]:
    """Our ``Generator`` constructor arguments for a pickled NVIDIA StyleGAN2 generator,
    plus notes on what was dropped. Raises ``FileFormatError`` for what we cannot run."""
    kind = network_kind(obj)
    if kind == "stylegan3":
        raise FileFormatError(
            "holds a StyleGAN3 (alias-free) generator; StyleGAN3 networks are not supported "
            "yet, only StyleGAN2 / StyleGAN2-ADA ones"
        )
    if kind != "stylegan2":
        raise FileFormatError(
            f"holds a '{obj.class_name}' generator that is not a StyleGAN2 network "
            "(no synthesis.b4.const)"
        )
    raw = plain_data(_raw_kwargs(obj, _G_POSITIONAL))
    st = obj.state
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if key not in raw and isinstance(st.get(key), int | np.integer):
            raw[key] = int(st[key])
    missing = [k for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k not in raw]
    if missing:
        raise FileFormatError(f"the generator does not record {', '.join(missing)}")
    mapping = dict(raw.pop("mapping_kwargs", None) or {})
    synthesis = dict(raw.pop("synthesis_kwargs", None) or {})
    # The stylegan3 repository passes synthesis options to its StyleGAN2 generator flat.
    for key in [k for k in raw if k not in _G_TOP]:
        synthesis.setdefault(key, raw.pop(key))
    notes: list[str] = []
    if synthesis.get("init_res") == [4, 4]:  # some forks record the (standard) first block size
        synthesis.pop("init_res")
    for key in sorted(set(synthesis) & IGNORED_SYNTHESIS_OPTIONS):
        synthesis.pop(key)
        notes.append(f"dropped the training speed option {key}")
    unknown = sorted(set(synthesis) - SYNTHESIS_OPTIONS)
    if unknown:
        raise FileFormatError(
            f"the generator uses synthesis options this studio does not support: {', '.join(unknown)}"
        )
    unknown = sorted(set(mapping) - MAPPING_OPTIONS)
    if unknown:
        raise FileFormatError(
            f"the generator uses mapping options this studio does not support: {', '.join(unknown)}"
        )
    kwargs = {
        "z_dim": raw["z_dim"],
        "w_dim": raw["w_dim"],
        "c_dim": raw["c_dim"],
        "img_resolution": raw["img_resolution"],
        "img_channels": raw["img_channels"],
        "mapping_kwargs": mapping,
        "synthesis_kwargs": synthesis,
    }
    for key in ("z_dim", "w_dim", "c_dim", "img_resolution", "img_channels"):
        if not isinstance(kwargs[key], int) or isinstance(kwargs[key], bool) or kwargs[key] < 0:
            raise FileFormatError(f"the generator's {key} is not a whole number: {kwargs[key]!r}")
    return kwargs, notes


def convert_generator(obj: PersistentObject) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(init_kwargs, state_dict)`` for our ``Generator`` from a pickled NVIDIA generator.

    The state dict keys are NVIDIA's, which are ours; tensors are fresh float32 copies.
    """
    kwargs, _ = generator_kwargs(obj)
    return kwargs, _fresh(module_state_dict(obj))


# --------------------------------------------------------------------------- discriminator


def discriminator_kwargs(obj: PersistentObject) -> dict[str, Any]:
    """Our ``Discriminator`` constructor arguments (NVIDIA's are accepted as they are)."""
    raw = plain_data(_raw_kwargs(obj, _D_POSITIONAL))
    st = obj.state
    for key in ("c_dim", "img_resolution", "img_channels"):
        if key not in raw and isinstance(st.get(key), int | np.integer):
            raw[key] = int(st[key])
    missing = [k for k in ("c_dim", "img_resolution", "img_channels") if k not in raw]
    if missing:
        raise FileFormatError(f"the discriminator does not record {', '.join(missing)}")
    return raw


def convert_discriminator(obj: PersistentObject) -> tuple[dict[str, Any], dict[str, Any]]:
    return discriminator_kwargs(obj), _fresh(module_state_dict(obj))


def _fresh(sd: dict[str, Any]) -> dict[str, Any]:
    """Own, contiguous copies (nothing shared with the unpickled storages)."""
    import torch

    out = {}
    for k, t in sd.items():
        t = t.detach()
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.float()
        out[k] = t.clone(memory_format=torch.contiguous_format)
    return out

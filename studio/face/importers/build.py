"""Our networks built from converted weights, strictly: the settings are checked against
the weights the file really holds before anything is built, and every tensor must be
accounted for with the right shape and finite values."""

from __future__ import annotations

from typing import Any

from studio.core.errors import FileFormatError
from studio.face.importers.convert import ConvertedCheckpoint

__all__ = ["build_networks", "estimated_size", "load_strict", "normalized_d_kwargs"]


def _shape_problem(what: str, own: dict[str, tuple[int, ...]], given: dict[str, Any]) -> str | None:
    missing = [k for k in own if k not in given]
    extra = [k for k in given if k not in own]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}" + (" ..." if len(missing) > 4 else ""))
        if extra:
            parts.append(f"unexpected {', '.join(extra[:4])}" + (" ..." if len(extra) > 4 else ""))
        return f"the {what} does not match a StyleGAN2 network: " + "; ".join(parts)
    for k, shape in own.items():
        if tuple(given[k].shape) != shape:
            return f"the {what}'s {k} has shape {list(given[k].shape)}, expected {list(shape)}"
    return None


def _int(kwargs: dict[str, Any], key: str, default: Any) -> int:
    value = kwargs.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FileFormatError(f"its network setting {key}={value!r} is not a whole number")
    return value


def estimated_size(kwargs: dict[str, Any], what: str) -> int:
    """Roughly how many numbers a StyleGAN2 network with these arguments holds (NVIDIA's
    channel schedule), so a file cannot make us build something far bigger than itself."""
    syn = kwargs.get("synthesis_kwargs") if what == "generator" else kwargs
    syn = syn if isinstance(syn, dict) else {}
    base, cmax = _int(syn, "channel_base", 32768), _int(syn, "channel_max", 512)
    res = _int(kwargs, "img_resolution", 0)
    c, img_c = _int(kwargs, "c_dim", 0), _int(kwargs, "img_channels", 3)
    if res < 4 or res & (res - 1) or res > 2**16:
        raise FileFormatError(f"its image resolution {res} is not a power of two from 4 to 65536")

    def ch(r: int) -> int:
        return min(base // r, cmax)

    rs = [2**i for i in range(2, res.bit_length())]
    if what == "generator":
        w, z = _int(kwargs, "w_dim", 512), _int(kwargs, "z_dim", 512)
        total = _mapping_size(kwargs.get("mapping_kwargs"), z, c, w)
        for r in rs:
            cin, cout = (ch(r // 2) if r > 4 else ch(4)), ch(r)
            total += (cin + cout) * (9 * cout + w + 1) + cout * (img_c + w + 1) + 2 * r * r + cin * cout
        return total
    cmap = kwargs.get("cmap_dim")
    cmap = ch(4) if cmap is None else _int(kwargs, "cmap_dim", 0)
    total = _mapping_size(kwargs.get("mapping_kwargs"), 0, c, cmap) if c else 0
    for r in rs:
        total += ch(r) * (ch(r) * 9 + ch(r // 2) * 10 + img_c + 2)
    return total + ch(4) * (ch(4) * 26 + 2)


def _mapping_size(mapping: Any, z: int, c: int, w: int) -> int:
    mapping = mapping if isinstance(mapping, dict) else {}
    layers = _int(mapping, "num_layers", 8)
    embed = _int(mapping, "embed_features", w) if mapping.get("embed_features") is not None else w
    feats = _int(mapping, "layer_features", w) if mapping.get("layer_features") is not None else w
    widest = max(z + (embed if c else 0), feats, w, 1)
    return (layers + 1) * widest * (widest + 1) + c * embed


def _check_activations(value: Any, what: str) -> None:
    """Our layers know linear, relu and lrelu (NVIDIA's code knows a few more that no
    published StyleGAN2 uses); refuse the rest now rather than at the first render."""
    from studio.face.layers import ACTIVATION_GAIN

    if isinstance(value, dict):
        for k, v in value.items():
            if k == "activation" and v not in ACTIVATION_GAIN:
                raise FileFormatError(
                    f"its {what} uses the activation {v!r}, which this studio does not support "
                    f"(only {', '.join(sorted(ACTIVATION_GAIN))})"
                )
            _check_activations(v, what)


def normalized_d_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """An unconditional discriminator builds no label mapping: drop its (unused) settings."""
    if kwargs.get("c_dim") == 0 and "mapping_kwargs" in kwargs:
        kwargs = {k: v for k, v in kwargs.items() if k != "mapping_kwargs"}
    return kwargs


def load_strict(cls: type, kwargs: dict[str, Any], state: dict[str, Any], what: str) -> Any:
    """``cls(**kwargs)`` with ``state`` loaded strictly, after checking that the settings
    describe a network about as big as the weights the file holds."""
    import torch

    _check_activations(kwargs, what)

    held = sum(int(t.numel()) for t in state.values())
    claimed = estimated_size(kwargs, what)
    if claimed > 2 * held + 10_000_000:
        raise FileFormatError(
            f"its {what} settings describe a network of about {claimed:,} numbers but the file "
            f"holds {held:,}; the file is inconsistent"
        )
    try:
        net = cls(**kwargs)
    except Exception as exc:  # the constructor's own checks: TypeError, ValueError, ...
        raise FileFormatError(
            f"its {what} configuration cannot be built here ({type(exc).__name__}: {exc})"
        ) from None
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    problem = _shape_problem(what, own, state)
    if problem:
        raise FileFormatError(problem)
    _check_finite(what, state)
    with torch.no_grad():
        net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def build_networks(conv: ConvertedCheckpoint) -> tuple[Any, Any, list[str]]:
    """Our ``Generator`` (and ``Discriminator``) with the converted weights loaded strictly.

    A discriminator that does not fit is dropped with a note; a generator that does not fit
    is a ``FileFormatError``."""
    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

    notes: list[str] = []
    G = load_strict(Generator, conv.G_kwargs, conv.G_state, "generator")
    D = None
    if conv.D_kwargs is not None and conv.D_state is not None:
        try:
            D = load_strict(
                Discriminator, normalized_d_kwargs(conv.D_kwargs), conv.D_state, "discriminator"
            )
        except FileFormatError as exc:
            notes.append(f"discriminator not imported ({exc.reason}); fine-tuning starts a fresh one")
    return G, D, notes


def _check_finite(what: str, sd: dict[str, Any]) -> None:
    import torch

    for k, t in sd.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise FileFormatError(f"the {what}'s {k} contains NaN or infinity")

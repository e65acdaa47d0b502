"""A rough memory estimate for a training run, before it starts.

Counts the parameters of G, D and the EMA copy (built on the meta device: no memory, no
time) and adds optimiser state and the activations of one micro-batch.
"""

from __future__ import annotations

from pathlib import Path

from studio.core.errors import StudioError

BYTES_PER_TRAINED_PARAM = 4 + 4 + 8  # fp32 weight, gradient, Adam's two moments
DEFAULT_KWARGS = {"resolution": 256, "channel_base": 16384, "channel_max": 512}


def _kwargs_for(base: str | Path | None) -> tuple[dict, dict | None]:
    if base is None:
        r = DEFAULT_KWARGS["resolution"]
        return ({"z_dim": 512, "w_dim": 512, "img_resolution": r, "img_channels": 3,
                 "mapping_kwargs": {"num_layers": 2},
                 "synthesis_kwargs": {"channel_base": DEFAULT_KWARGS["channel_base"],
                                      "channel_max": DEFAULT_KWARGS["channel_max"]}}, None)
    from studio.face.model_file import read_face_model_meta

    meta = read_face_model_meta(base)
    return meta["G_kwargs"], meta.get("D_kwargs")


def estimate_memory(base: str | Path | None, batch: int) -> dict[str, float]:
    import torch

    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

    g_kwargs, d_kwargs = _kwargs_for(base)
    try:
        with torch.device("meta"):
            G = Generator.from_kwargs(g_kwargs)
            d_kwargs = d_kwargs or {"c_dim": G.c_dim, "img_resolution": G.img_resolution,
                                    "img_channels": g_kwargs.get("img_channels", 3)}
            D = Discriminator.from_kwargs(d_kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise StudioError(f"cannot size this model ({exc})", base) from None
    n_g = sum(p.numel() for p in G.parameters())
    n_d = sum(p.numel() for p in D.parameters())
    res = G.img_resolution
    # activations: each block keeps a few tensors of res^2 x channels for the backward pass
    act = 0
    r = 4
    syn = g_kwargs.get("synthesis_kwargs", {})
    base_ch, max_ch = syn.get("channel_base", 32768), syn.get("channel_max", 512)
    while r <= res:
        act += r * r * min(base_ch // r, max_ch) * 4 * 12  # G and D, forward + backward
        r *= 2
    total = (n_g + n_d) * BYTES_PER_TRAINED_PARAM + n_g * 4 + act * batch
    return {"params_m": (n_g + n_d) / 1e6, "total_gb": total / 2**30,
            "resolution": float(res)}

"""Benchmark the face engine against a straightforward reference renderer; prints JSON.

For a 256 px model (channel_base 16384) and a 1024 px model (channel_base 32768), both
channel_max 512 with random weights, it times:

* ``reference``: a plain implementation written here (per-sample weights through a grouped
  convolution, transposed convolution + FIR filter for upsampling, fp32, no caching);
* ``engine_fp32``: the FaceEngine in fp32 (caches off);
* ``engine_fast``: the FaceEngine as a user gets it on this CPU (bf16 with AMX; caches off);
* ``late_edit``: the fast engine re-rendering when only the last few w+ rows change (cache on),

at batch 1 (ms/frame) and batch 8 (frames/s), plus PSNR (8-bit images) of fast vs fp32 and
of fp32 vs the reference. Variants run interleaved and the best of the repeats is reported,
so noise from other processes on the machine hurts all of them alike.

    python bench/face_engine.py [--quick] [--device cuda] [--out result.json]

With ``--device cuda`` every variant runs on the GPU (the fast engine in bf16) and each timing
waits for the GPU to finish.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.core.devices import DeviceChoice, cpu_has_fast_bf16  # noqa: E402
from studio.face.engine import FaceEngine, to_uint8  # noqa: E402
from studio.face.generator import Generator  # noqa: E402
from studio.face.model_file import FaceModel  # noqa: E402

# --------------------------------------------------------------------------- reference


def _fir(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float) -> torch.Tensor:
    c = x.shape[1]
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, [pad[0], pad[1], pad[0], pad[1]]), k, groups=c)


def _ref_layer(layer: Any, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    n, in_ch, h, _ = x.shape
    aff = layer.affine
    styles = w @ (aff.weight * aff.weight_gain).t() + aff.bias * aff.bias_gain
    wt = layer.weight[None] * styles[:, None, :, None, None]  # [N, O, I, 3, 3]
    wt = wt * (wt.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    out_ch = wt.shape[1]
    xg = x.reshape(1, n * in_ch, h, h)
    if layer.up == 2:
        wg = wt.transpose(1, 2).reshape(n * in_ch, out_ch, 3, 3)
        y = F.conv_transpose2d(xg, wg, stride=2, groups=n)
        y = _fir(y, layer.resample_filter, (1, 1), 4.0)
    else:
        y = F.conv2d(xg, wt.reshape(n * out_ch, in_ch, 3, 3), padding=1, groups=n)
    y = y.reshape(n, out_ch, *y.shape[2:])
    y = y + layer.noise_const * layer.noise_strength + layer.bias[None, :, None, None]
    y = F.leaky_relu(y, 0.2) * math.sqrt(2)
    return y.clamp(-layer.conv_clamp, layer.conv_clamp) if layer.conv_clamp else y


def _ref_torgb(layer: Any, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    aff = layer.affine
    styles = (w @ (aff.weight * aff.weight_gain).t() + aff.bias * aff.bias_gain) * layer.weight_gain
    k = layer.weight[None, :, :, 0, 0] * styles[:, None, :]  # [N, C, I]
    return torch.einsum("nihw,nci->nchw", x, k) + layer.bias[None, :, None, None]


def reference_synthesis(G: Generator, ws: torch.Tensor) -> torch.Tensor:
    """Plain fp32 StyleGAN2 ('skip' architecture) synthesis with const noise."""
    syn = G.synthesis
    x = img = None
    for block, (a, _) in zip(syn.blocks(), syn.block_ws_ranges(), strict=True):
        if x is None:
            x = block.const[None].repeat(ws.shape[0], 1, 1, 1)
            x = _ref_layer(block.conv1, x, ws[:, a])
            i = a + 1
        else:
            x = _ref_layer(block.conv0, x, ws[:, a])
            x = _ref_layer(block.conv1, x, ws[:, a + 1])
            i = a + 2
        if img is not None:
            n, c, h, _ = img.shape
            up = torch.zeros(n, c, h, 2, h, 2, device=img.device, dtype=img.dtype)
            up[:, :, :, 0, :, 0] = img
            img = _fir(up.reshape(n, c, 2 * h, 2 * h), block.resample_filter, (2, 1), 4.0)
        y = _ref_torgb(block.torgb, x, ws[:, i])
        img = y if img is None else img + y
    assert img is not None
    return img


# --------------------------------------------------------------------------- helpers


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fns: dict[str, Any], repeats: int) -> dict[str, float]:
    """Best wall time (ms) per function, running them interleaved (waiting for the GPU)."""
    best = {k: float("inf") for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    _sync()
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync()
            best[k] = min(best[k], (time.perf_counter() - t0) * 1000)
    return best


def make_generator(resolution: int, channel_base: int, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    G = Generator(
        z_dim=512, w_dim=512, img_resolution=resolution,
        synthesis_kwargs={"channel_base": channel_base, "channel_max": 512},
    )
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    return G.eval().requires_grad_(False)


def bench_model(resolution: int, channel_base: int, repeats: int, batch: int,
                device: str = "cpu") -> dict[str, Any]:
    G = make_generator(resolution, channel_base)
    model = FaceModel(G=G, D=None, meta={"name": f"random-{resolution}"})
    if device == "cpu":
        fast_prec = "bf16" if cpu_has_fast_bf16() else "fp32"
    else:
        fast_prec = "bf16"
    e32 = FaceEngine(model, DeviceChoice(device, "fp32", "benchmark"))
    efast = FaceEngine(model, DeviceChoice(device, fast_prec, "benchmark"))
    ws1 = torch.from_numpy(e32.ws_for(1, 0.7))[None].to(device)
    wsb = torch.from_numpy(np.stack([e32.ws_for(s, 0.7) for s in range(batch)])).to(device)

    def frames(fn: Any) -> np.ndarray:
        return to_uint8(fn())

    with torch.no_grad():
        ref1 = frames(lambda: reference_synthesis(G, ws1))
        f32 = frames(lambda: e32.synthesize(ws1, use_cache=False))
        fast = frames(lambda: efast.synthesize(ws1, use_cache=False))
        fastb = frames(lambda: efast.synthesize(wsb, use_cache=False))
        f32b = frames(lambda: e32.synthesize(wsb, use_cache=False))

        # Late edit: only the last 4 w+ rows change between renders (cache on; the other
        # variants run without the cache, so they do not disturb it).
        late = [ws1.clone(), ws1.clone()]
        late[1][:, -4:] += 0.5
        state = {"i": 0}

        def late_edit() -> None:
            state["i"] ^= 1
            efast.synthesize(late[state["i"]])

        t1 = timed({
            "reference": lambda: reference_synthesis(G, ws1),
            "engine_fp32": lambda: e32.synthesize(ws1, use_cache=False),
            "engine_fast": lambda: efast.synthesize(ws1, use_cache=False),
            "late_edit": late_edit,
        }, repeats)
        tb = timed({
            "reference": lambda: reference_synthesis(G, wsb),
            "engine_fp32": lambda: e32.synthesize(wsb, use_cache=False),
            "engine_fast": lambda: efast.synthesize(wsb, use_cache=False),
        }, max(1, repeats // 2))

    fps = {k: round(batch * 1000.0 / v, 2) for k, v in tb.items()}
    return {
        "device": device,
        "resolution": resolution,
        "channel_base": channel_base,
        "channel_max": 512,
        "fast_precision": fast_prec,
        "batch1_ms_per_frame": {k: round(v, 1) for k, v in t1.items() if k != "late_edit"},
        "late_edit_ms_per_frame_fast_cached": round(t1["late_edit"], 1),
        f"batch{batch}_frames_per_s": fps,
        "speedup_fast_vs_reference_batch1": round(t1["reference"] / t1["engine_fast"], 2),
        "speedup_fp32_vs_reference_batch1": round(t1["reference"] / t1["engine_fp32"], 2),
        f"speedup_fast_vs_reference_batch{batch}": round(fps["engine_fast"] / fps["reference"], 2),
        "psnr_db_fast_vs_fp32": round(psnr_u8(fast, f32), 2),
        f"psnr_db_fast_vs_fp32_batch{batch}": round(psnr_u8(fastb, f32b), 2),
        "psnr_db_fp32_vs_reference": round(psnr_u8(f32, ref1), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 256 px only")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 is steadier on a busy machine")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where to run every variant (default cpu)")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = [(256, 16384)] if args.quick else [(256, 16384), (1024, 32768)]
    results = {
        "benchmark": "face_engine",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_fast_bf16": cpu_has_fast_bf16(),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "models": [],
    }
    for res, base in configs:
        repeats = (3 if args.quick else 7) if res <= 256 else 2
        if args.device == "cuda":
            repeats *= 3  # cheap on a GPU, and steadier
        results["models"].append(bench_model(res, base, repeats, batch=8, device=args.device))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The face engine: seed/z -> w -> image, fast on the CPU, deterministic, with caches.

Speed on the CPU comes from:

* bf16 convolutions with channels-last tensors when the CPU has AMX (DeviceChoice says bf16);
* the 2x upsampling convolutions rewritten as one dense 3x3 convolution with 4x the output
  channels plus an interleave (polyphase form, filter folded in), instead of a transposed
  convolution and a depthwise filter;
* per layer, the cheaper way to apply a style: modulate/demodulate the (small) kernel once and
  run a plain convolution, or scale the activations before and after a shared convolution
  (chosen from the tensor sizes: the kernel at high resolutions, the activations at low ones);
* demodulation from a precomputed ``sum_k w^2`` matrix (a mat-vec, not a pass over the kernel);
* caches: the mapping by (z, psi), and every block's output for the last rendered w+, so that
  when only late-layer styles change only the later blocks run again.

All arithmetic matches :class:`~studio.face.generator.SynthesisNetwork` (the fp32 reference)
up to rounding; the tests check the PSNR between the two.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from studio.core.devices import DeviceChoice, select_device
from studio.face.fast_synthesis import FastSynthesis, resize_frames, to_uint8
from studio.face.generator import Generator
from studio.face.model_file import FaceModel

MAPPING_CACHE_SIZE = 256


class FaceEngine:
    """Renders faces from one :class:`FaceModel`. One worker thread at a time (a lock guards
    every call). Same inputs give identical bytes on the CPU."""

    def __init__(self, model: FaceModel, device_choice: DeviceChoice | None = None,
                 use_fast_path: bool = True) -> None:
        self.model = model
        self.device_choice = device_choice or select_device()
        self.device = self.device_choice.torch_device
        self._lock = threading.RLock()
        G: Generator = model.G
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.z_dim, self.w_dim, self.c_dim = G.z_dim, G.w_dim, G.c_dim
        self.num_ws = G.num_ws
        self.resolution = G.img_resolution
        precision = self.device_choice.precision
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
        self._fast: FastSynthesis | None = None
        # fp16 needs NVIDIA's per-block scheme (pre-normalised weights, clamped layers):
        # the module path does that; bf16 and fp32 run the fast path.
        if use_fast_path and self.dtype != torch.float16 and FastSynthesis.supports(G.synthesis):
            self._fast = FastSynthesis(G.synthesis, self.dtype, self.device)
        self._map_cache: OrderedDict[tuple[bytes, float, bytes], np.ndarray] = OrderedDict()

    # ------------------------------------------------------------------ latents

    @property
    def w_avg(self) -> np.ndarray:
        return self.G.mapping.w_avg.detach().float().cpu().numpy().copy()

    def z_from_seed(self, seed: int) -> np.ndarray:
        """``RandomState(seed).randn(z_dim)`` as in NVIDIA's generate.py."""
        return np.random.RandomState(int(seed) % (2**32)).randn(self.z_dim)

    def _check_z(self, z: Any) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if z.ndim == 2 and z.shape[0] == 1:
            z = z[0]
        if z.shape != (self.z_dim,):
            raise ValueError(f"z must have shape ({self.z_dim},), not {z.shape}")
        if not np.isfinite(z).all():
            raise ValueError("z contains NaN or infinity")
        return z

    def mapping(self, z: Any, truncation_psi: float = 1.0, c: Any = None) -> np.ndarray:
        """z -> w+ ``[num_ws, w_dim]`` float32 (cached by z, psi and label)."""
        z = self._check_z(z)
        c_arr = np.zeros(self.c_dim, np.float32) if c is None else np.asarray(c, np.float32)
        key = (z.tobytes(), float(truncation_psi), c_arr.tobytes())
        with self._lock:
            hit = self._map_cache.get(key)
            if hit is not None:
                self._map_cache.move_to_end(key)
                return hit.copy()
            with torch.no_grad():
                zt = torch.from_numpy(z).float()[None].to(self.device)
                ct = torch.from_numpy(c_arr)[None].to(self.device) if self.c_dim else None
                w = self.G.mapping(zt, ct, truncation_psi=float(truncation_psi))
            w_np = w[0].float().cpu().numpy()
            self._map_cache[key] = w_np
            while len(self._map_cache) > MAPPING_CACHE_SIZE:
                self._map_cache.popitem(last=False)
            return w_np.copy()

    def ws_for(self, seed_or_z: int | np.ndarray, truncation_psi: float = 1.0,
               mix_seed: int | None = None, mix_layers: tuple[int, int] | None = None) -> np.ndarray:
        """w+ for a seed (or z), with style mixing: layers ``a..b-1`` from ``mix_seed``."""
        z = self.z_from_seed(seed_or_z) if isinstance(seed_or_z, int | np.integer) else seed_or_z
        ws = self.mapping(z, truncation_psi)
        if mix_seed is not None:
            a, b = mix_layers if mix_layers is not None else (self.num_ws // 2, self.num_ws)
            if not 0 <= a < b <= self.num_ws:
                raise ValueError(f"mix layers must satisfy 0 <= a < b <= {self.num_ws}, got {a}:{b}")
            ws[a:b] = self.mapping(self.z_from_seed(mix_seed), truncation_psi)[a:b]
        return ws

    # ------------------------------------------------------------------ rendering

    def _ws_tensor(self, ws_list: Sequence[Any], edits: Any) -> torch.Tensor:
        out = []
        per_frame = isinstance(edits, list | tuple)
        if per_frame and len(edits) != len(ws_list):
            raise ValueError("edits: give one offset, or one per frame")
        for i, ws in enumerate(ws_list):
            ws = np.asarray(ws, dtype=np.float32)
            if ws.shape == (self.w_dim,):
                ws = np.broadcast_to(ws, (self.num_ws, self.w_dim))
            if ws.shape != (self.num_ws, self.w_dim):
                raise ValueError(f"ws must have shape ({self.num_ws}, {self.w_dim}), not {ws.shape}")
            e = edits[i] if per_frame else edits
            if e is not None:
                e = np.asarray(e, dtype=np.float32)
                if e.shape not in ((self.w_dim,), (self.num_ws, self.w_dim)):
                    raise ValueError(f"edit offset must have shape ({self.w_dim},) or "
                                     f"({self.num_ws}, {self.w_dim}), not {e.shape}")
                ws = ws + e
            out.append(torch.from_numpy(np.ascontiguousarray(ws, dtype=np.float32)))
        return torch.stack(out).to(self.device)

    def synthesize(self, ws: torch.Tensor, noise_mode: str = "const", seed_for_noise: int = 0,
                   use_cache: bool = True) -> torch.Tensor:
        """``ws [N, num_ws, w_dim]`` tensor -> float image ``[N, C, R, R]`` (about -1..1)."""
        with self._lock, torch.no_grad():
            ws = ws.to(self.device, torch.float32)
            if self._fast is not None:
                return self._fast(ws, noise_mode, seed_for_noise, use_cache=use_cache)
            return self.G.synthesis(ws, noise_mode=noise_mode, noise_seed=seed_for_noise)

    def render_preview(self, ws: Any, noise_mode: str = "const", edits: Any = None,
                       size: int | None = None, seed_for_noise: int = 0) -> np.ndarray:
        """A quick coarse frame: for 'skip' models the image accumulated at a quarter of the
        resolution (at least 32 px); the blocks it ran stay cached for the full render that
        usually follows. Other architectures render the full frame. ``size`` resizes."""
        arch = self.G.synthesis.blocks()[0].architecture
        res = max(32, self.resolution // 4)
        if self._fast is None or arch != "skip" or res >= self.resolution:
            return self.render(ws, noise_mode, edits, size, seed_for_noise)
        wst = self._ws_tensor([ws], None if edits is None else [edits])
        stop = self.G.synthesis.block_resolutions.index(res)
        with self._lock, torch.no_grad():
            img = self._fast(wst, noise_mode, seed_for_noise, stop_block=stop)
        frames = to_uint8(img)
        return resize_frames(frames, int(size))[0] if size is not None else frames[0]

    def render(self, ws: Any, noise_mode: str = "const", edits: Any = None, size: int | None = None,
               seed_for_noise: int = 0) -> np.ndarray:
        """w+ ``[num_ws, w_dim]`` (or ``[w_dim]``) -> ``H x W x 3`` uint8."""
        return self.render_batch([ws], noise_mode, None if edits is None else [edits], size,
                                 seed_for_noise)[0]

    def render_batch(self, ws_list: Sequence[Any], noise_mode: str = "const", edits: Any = None,
                     size: int | None = None, seed_for_noise: int = 0) -> np.ndarray:
        """Several w+ at once -> ``N x H x W x 3`` uint8. ``edits``: one offset for all frames
        or a list with one per frame. Random noise uses the same seed for every frame."""
        if len(ws_list) == 0:
            return np.zeros((0, size or self.resolution, size or self.resolution, 3), np.uint8)
        if size is not None and not 8 <= int(size) <= 8192:
            raise ValueError("size must be between 8 and 8192 pixels")
        wst = self._ws_tensor(ws_list, edits)
        img = self.synthesize(wst, noise_mode, seed_for_noise)
        frames = to_uint8(img)
        if size is not None and size != self.resolution:
            frames = resize_frames(frames, int(size))
        return frames

    def clear_cache(self) -> None:
        with self._lock:
            self._map_cache.clear()
            if self._fast is not None:
                self._fast.clear_cache()

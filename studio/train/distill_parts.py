"""The parts of the distillation trainer (:mod:`studio.train.distill`): the encoding of
renderer parameters, the small networks beside the generator (parameter encoder, w critic,
patch critic), the background face renderer with its replay pool, and the losses."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.face.param_encoder import ParamEncoder  # noqa: F401 - the distiller's encoder

# --------------------------------------------------------------------------- encoding


def param_layout() -> list[tuple[str, int]]:
    """(name, width) of each parameter in the encoded vector."""
    from studio.synthetic.params import PARAM_SPECS

    return [(s.name, len(s.choices) if s.categorical else 1) for s in PARAM_SPECS]


POSE_PARAMS = ("head_yaw", "head_pitch", "head_roll", "gaze_x", "gaze_y")


def sample_training_params(n: int, rng: np.random.Generator, pose_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Renderer parameters for distillation, with one fixed texture seed. ``pose_scale`` < 1
    narrows head pose and gaze: with the eyes and mouth in nearly the same place in every
    image, regression learns them sharp far sooner (a budget choice for a CPU-trained
    default model)."""
    from studio.synthetic.params import sample_params

    params = sample_params(n, rng)
    # one strand/pore/freckle noise pattern for all: a per-face random pattern cannot be
    # predicted from the params, so L1 would only learn its blurred average
    params["texture_seed"] = np.full(n, 1234.0)
    if pose_scale != 1.0:
        for name in POSE_PARAMS:
            params[name] = params[name] * pose_scale
    return params


def encode_params(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(N, D)`` float32: continuous parameters in [-1, 1], categoricals one-hot."""
    from studio.synthetic.params import SPECS

    cols = []
    for name, width in param_layout():
        spec = SPECS[name]
        v = np.asarray(params[name]).reshape(-1)
        if spec.categorical:
            cols.append(np.eye(width, dtype=np.float32)[np.clip(v.astype(np.int64), 0, width - 1)])
        else:
            span = max(spec.high - spec.low, 1e-9)
            cols.append((2.0 * (v.astype(np.float64) - spec.low) / span - 1.0)[:, None])
    return np.concatenate(cols, axis=1).astype(np.float32)


class WCritic(nn.Module):
    def __init__(self, w_dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(w_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2), nn.Linear(hidden, 1),
        )

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.net(w).squeeze(1)


class PatchCritic(nn.Module):
    """A small PatchGAN-style discriminator: a realism logit per ~22 px patch. Added to the
    L1 loss with a small weight it sharpens what L1 alone leaves blurred (the averaging of
    details the params barely determine), while L1 keeps the structure."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.GroupNorm(8, 2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 3, 1, 1), nn.GroupNorm(8, 4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


# --------------------------------------------------------------------------- data


class FaceFeeder:
    """Renders random faces in a background thread into a bounded queue."""

    def __init__(self, size: int, batch: int, seed: int, budget: int = 1 << 62,
                 pose_scale: float = 1.0) -> None:
        self.size, self.batch, self.pose_scale = size, batch, pose_scale
        self.rng = np.random.default_rng(seed)
        self.q: queue.Queue[tuple[np.ndarray, np.ndarray]] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self.rendered = 0
        self.got = 0
        self.budget = budget  # faces to render in all; the trainer raises it as it goes
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="distill-render", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from studio.synthetic.renderer import render_faces

        try:
            while not self._stop.is_set():
                if self.rendered >= self.budget:  # throttled: the trainer shares the CPU
                    time.sleep(0.05)
                    continue
                params = sample_training_params(self.batch, self.rng, self.pose_scale)
                imgs = render_faces(params, self.size)
                item = (encode_params(params), imgs)
                self.rendered += len(imgs)
                while not self._stop.is_set():
                    try:
                        self.q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - reported by the training loop
            self.error = exc

    def get(self, block: bool) -> tuple[np.ndarray, np.ndarray] | None:
        if self.error is not None:
            raise RuntimeError(f"face renderer failed: {self.error}") from self.error
        try:
            item = self.q.get(block=block, timeout=30 if block else None)
        except queue.Empty:
            return None
        self.got += len(item[0])
        return item

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=60)


class ReplayPool:
    """Ring buffer of rendered faces (uint8 NHWC) and their encoded params."""

    def __init__(self, capacity: int, vec_dim: int, size: int) -> None:
        self.vecs = torch.zeros(capacity, vec_dim)
        self.imgs = torch.zeros(capacity, size, size, 3, dtype=torch.uint8)
        self.count = 0
        self.head = 0

    def add(self, vecs: np.ndarray, imgs: np.ndarray) -> None:
        for v, im in zip(torch.from_numpy(vecs), torch.from_numpy(imgs), strict=True):
            self.vecs[self.head] = v
            self.imgs[self.head] = im
            self.head = (self.head + 1) % len(self.vecs)
            self.count = min(self.count + 1, len(self.vecs))

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, self.count, (n,), generator=gen)
        img = self.imgs[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.vecs[idx], img

    def state_dict(self) -> dict[str, Any]:
        return {"vecs": self.vecs[: self.count].clone(), "imgs": self.imgs[: self.count].clone(),
                "head": self.head}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        n = min(len(s["vecs"]), len(self.vecs))
        self.vecs[:n] = s["vecs"][:n]
        self.imgs[:n] = s["imgs"][:n]
        self.count = n
        self.head = int(s["head"]) % len(self.vecs)


# --------------------------------------------------------------------------- losses


def _grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def recon_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 + L1 of image gradients, at full and half resolution."""
    total = fake.new_zeros(())
    for scale in (1, 2):
        f = F.avg_pool2d(fake, scale) if scale > 1 else fake
        r = F.avg_pool2d(real, scale) if scale > 1 else real
        fx, fy = _grads(f)
        rx, ry = _grads(r)
        total = total + (f - r).abs().mean() + (fx - rx).abs().mean() + (fy - ry).abs().mean()
    return total


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_proj: int, gen: torch.Generator) -> torch.Tensor:
    proj = torch.randn(a.shape[1], n_proj, generator=gen)
    proj = proj / proj.norm(dim=0, keepdim=True)
    pa = torch.sort(a @ proj, dim=0).values
    pb = torch.sort(b @ proj, dim=0).values
    return (pa - pb).square().mean()

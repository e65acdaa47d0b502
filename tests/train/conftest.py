"""Tiny data sets and networks for the training tests (16 px, a few channels)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

TINY_NET = {"z_dim": 16, "w_dim": 16, "mapping_layers": 2, "channel_base": 256,
            "channel_max": 16, "conv_clamp": 256.0}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _render(n: int, size: int, seed: int, **overrides: Any) -> np.ndarray:
    """Procedural faces from the synthetic renderer."""
    from studio.synthetic.params import sample_params
    from studio.synthetic.renderer import render_faces

    return render_faces(sample_params(n, np.random.default_rng(seed), **overrides), size)


def write_folder(folder: Path, images: np.ndarray) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture(scope="session")
def faces16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 varied procedural faces, 16 x 16."""
    return write_folder(tmp_path_factory.mktemp("faces16"), _render(24, 16, seed=0))


@pytest.fixture(scope="session")
def red_faces16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A biased subset: red hair, glasses, a red background."""
    imgs = _render(16, 16, seed=1, hair_color="red", glasses="round", bg_r=0.85, bg_g=0.1,
                   bg_b=0.08, bg2_r=0.8, bg2_g=0.12, bg2_b=0.1)
    return write_folder(tmp_path_factory.mktemp("red16"), imgs)


def tiny_config(data: Path, tmp: Path, **overrides: Any) -> Any:
    from studio.train.config import TrainConfig

    values: dict[str, Any] = {
        **TINY_NET, "data": str(data), "runs_root": str(tmp / "runs"), "resolution": 16,
        "kimg": 0.064, "batch": 8, "batch_gpu": 8, "precision": "fp32", "device": "cpu",
        "fd_samples": 0, "preview_every": 32, "checkpoint_every": 10_000, "preview_grid": [2, 2],
        "r1_interval": 4, "ada_kimg": 0.2, "lr_g": 0.004, "lr_d": 0.004,
    }
    values.update(overrides)
    return TrainConfig(**values)


def drive(gen: Any) -> tuple[list[Any], Any]:
    """Run a job generator to the end: (progress events, result)."""
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def tiny_base_model(path: Path, seed: int = 0, controls: dict[str, Any] | None = None) -> Path:
    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.manual_seed(seed)
    G = Generator(z_dim=16, w_dim=16, img_resolution=16, mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 256, "channel_max": 16})
    D = Discriminator(img_resolution=16, channel_base=256, channel_max=16)
    save_face_model(path, G, D=D, name="tiny base", source="tests", license="CC0-1.0",
                    controls=controls)
    return path


class TrainKit:
    config = staticmethod(tiny_config)
    drive = staticmethod(drive)
    base_model = staticmethod(tiny_base_model)
    write_folder = staticmethod(write_folder)
    render = staticmethod(_render)


@pytest.fixture
def tk() -> type[TrainKit]:
    return TrainKit

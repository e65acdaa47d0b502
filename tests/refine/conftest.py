import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pixel_refiner(tmp_path_factory):
    """A tiny default-style refiner folder (2x, 16 px -> 32 px), random weights."""
    from studio.refine.pixel import PixelRefinerSpec, build_unet, save_pixel_refiner

    torch.manual_seed(0)
    spec = PixelRefinerSpec(channels=(8, 16), scale=2, input_size=16, norm_groups=4)
    unet = build_unet(spec)
    folder = tmp_path_factory.mktemp("refiners") / "tiny"
    return save_pixel_refiner(folder, unet, spec, {"note": "random weights (tests)"})


@pytest.fixture()
def face16():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:16, 0:16]
    img = np.stack([x * 15, y * 15, (x + y) * 7], axis=2).astype(np.uint8)
    img[6:10, 6:10] = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    return img


@pytest.fixture(autouse=True)
def _one_thread():
    """The test machine is shared; tiny convolutions gain nothing from more threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session")
def tiny_face_files(tmp_path_factory):
    """A tiny face model (16 px GAN) and a parameter encoder for it (random weights)."""
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model
    from studio.train.controls_fit import renderer_layout
    from studio.train.distill_parts import ParamEncoder
    from studio.train.encoder_fit import save_encoder

    folder = tmp_path_factory.mktemp("face")
    torch.manual_seed(0)
    G = Generator(z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3,
                  mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 256, "channel_max": 16})
    model = save_face_model(folder / "face.safetensors", G, name="tiny")
    E = ParamEncoder(renderer_layout().dim, G.w_dim, 16)
    enc = save_encoder(folder / "encoder.safetensors", E, {"hidden": 16})
    return model, enc

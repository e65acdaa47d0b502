"""The user's Stable Diffusion 1.x: a tiny pipeline built here, saved as one original-layout
.safetensors file, loads back offline through the studio's single-file path and refines."""

import json
import shutil

import numpy as np
import pytest
import sd_tiny
import torch
from PIL import Image
from refine_helpers import CPU32

from studio.cli import main
from studio.core.errors import StudioError
from studio.refine.base import RefineParams
from studio.refine.sd import SDRefiner, load_sd_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd")
    pipe = sd_tiny.tiny_sd_pipeline(root / "folder")
    single = sd_tiny.export_single_file(pipe, root / "tiny-sd15.safetensors")
    # the config folder holds only what resources/sd15 holds: configs and the tokenizer
    cfg = root / "config"
    for rel in ("model_index.json", "unet/config.json", "vae/config.json",
                "text_encoder/config.json", "scheduler/scheduler_config.json"):
        (cfg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "folder" / rel, cfg / rel)
    shutil.copytree(root / "folder" / "tokenizer", cfg / "tokenizer")
    return pipe, root / "folder", single, cfg


def test_single_file_loads_offline_with_identical_weights(tiny_sd, no_network):
    pipe, _, single, cfg = tiny_sd
    loaded = load_sd_pipeline(single, CPU32, cfg)
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k].reshape(a[k].shape)), (name, k)


def test_single_file_refines_an_image_and_strength_zero_is_the_input(tiny_sd, no_network):
    _, _, single, cfg = tiny_sd
    r = SDRefiner(load_sd_pipeline(single, CPU32, cfg), "tiny", CPU32)
    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    steps = []
    p = RefineParams(strength=0.5, steps=4, prompt="a face", negative_prompt="blur",
                     guidance=3.0, seed=1)
    out = r.refine(img, p, lambda i, n: steps.append((i, n)))
    assert out.shape == (64, 64, 3) and steps == [(1, 2), (2, 2)]
    assert np.array_equal(out, r.refine(img, p))  # deterministic
    assert not np.array_equal(out, img)
    assert np.array_equal(r.refine(img, RefineParams(strength=0.0, steps=4)), img)
    dpm = r.refine(img, RefineParams(strength=0.5, steps=4, scheduler="dpm++", seed=1))
    assert dpm.shape == out.shape


def test_cli_refines_with_a_diffusers_folder(tiny_sd, tmp_path, no_network):
    _, folder, _, _ = tiny_sd
    img = (np.random.default_rng(1).random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    assert main(["refine", str(tmp_path / "in.png"), "-o", str(out), "--model", str(folder),
                 "--strength", "0.5", "--steps", "2", "--prompt", "portrait", "--device",
                 "cpu", "--precision", "fp32"]) == 0
    assert np.asarray(Image.open(out)).shape == (40, 48, 3)


def test_single_file_without_tokenizer_says_what_is_missing(tiny_sd, tmp_path):
    _, _, single, cfg = tiny_sd
    bare = tmp_path / "cfg"
    shutil.copytree(cfg, bare)
    shutil.rmtree(bare / "tokenizer")
    with pytest.raises(StudioError, match="tokenizer"):
        load_sd_pipeline(single, CPU32, bare)


def test_not_an_sd_checkpoint_is_refused(tmp_path, tiny_pixel_refiner):
    from safetensors.torch import save_file

    f = tmp_path / "sdxl.safetensors"
    save_file({"conditioner.embedders.0.x": torch.zeros(1),
               "model.diffusion_model.x": torch.zeros(1)}, str(f))
    with pytest.raises(StudioError, match="SDXL"):
        load_sd_pipeline(f, CPU32)
    g = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(1)}, str(g))
    with pytest.raises(StudioError, match="other.safetensors.*not a Stable Diffusion"):
        load_sd_pipeline(g, CPU32)


def test_shipped_sd15_configs_describe_sd15():
    from studio.core.paths import resources_dir

    d = resources_dir() / "sd15"
    unet = json.loads((d / "unet" / "config.json").read_text())
    assert unet["cross_attention_dim"] == 768 and unet["block_out_channels"][0] == 320
    te = json.loads((d / "text_encoder" / "config.json").read_text())
    assert te["hidden_size"] == 768 and te["num_hidden_layers"] == 12

"""The default (pixel-space) refiner: strength semantics, determinism, files, errors."""

import numpy as np
import pytest
from refine_helpers import CPU32

from studio.core.errors import StudioError
from studio.refine.base import RefineParams
from studio.refine.images import resize_image
from studio.refine.pixel import load_pixel_refiner


def test_strength_zero_returns_the_input_upsampled(tiny_pixel_refiner, face16):
    r = load_pixel_refiner(tiny_pixel_refiner, CPU32)
    steps = []
    out = r.refine(face16, RefineParams(strength=0.0, steps=10), lambda i, n: steps.append(i))
    assert out.shape == (32, 32, 3)
    assert np.array_equal(out, resize_image(face16, (32, 32)))
    assert steps == []  # no denoising step ran


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++"])
def test_strength_runs_int_steps_times_strength_and_is_deterministic(
        tiny_pixel_refiner, face16, scheduler):
    r = load_pixel_refiner(tiny_pixel_refiner, CPU32)
    p = RefineParams(strength=0.5, steps=8, seed=3, scheduler=scheduler)
    steps = []
    a = r.refine(face16, p, lambda i, n: steps.append((i, n)))
    b = r.refine(face16, p)
    assert steps == [(i, 4) for i in range(1, 5)]
    assert np.array_equal(a, b)  # same model, seed and settings: same pixels
    base = resize_image(face16, (32, 32))
    assert not np.array_equal(a, base)  # the model changed something
    c = r.refine(face16, RefineParams(strength=0.5, steps=8, seed=4, scheduler=scheduler))
    assert not np.array_equal(a, c)  # another seed, other noise


def test_full_strength_starts_from_noise_and_keeps_the_conditioning(tiny_pixel_refiner, face16):
    r = load_pixel_refiner(tiny_pixel_refiner, CPU32)
    full = r.refine(face16, RefineParams(strength=1.0, steps=4))
    other = face16[::-1].copy()
    assert not np.array_equal(full, r.refine(other, RefineParams(strength=1.0, steps=4)))


def test_output_size_option_and_odd_sizes(tiny_pixel_refiner):
    r = load_pixel_refiner(tiny_pixel_refiner, CPU32)
    img = np.full((13, 11, 3), 100, np.uint8)
    out = r.refine(img, RefineParams(strength=0.3, steps=10))
    assert out.shape == (26, 22, 3)  # padded to the UNet's multiple inside, cropped back
    out = r.refine(img, RefineParams(strength=0.3, steps=10, size=40))
    assert out.shape[0] == 40


def test_saved_folder_is_a_diffusers_folder_with_a_model_card(tiny_pixel_refiner):
    import json

    from safetensors import safe_open

    f = tiny_pixel_refiner
    index = json.loads((f / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DModel"]
    assert (f / "scheduler" / "scheduler_config.json").is_file()
    with safe_open(str(f / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as sf:
        assert len(list(sf.keys())) > 10
    assert "refiner" in (f / "README.md").read_text()


def test_broken_refiner_folders_name_the_file(tmp_path, tiny_pixel_refiner):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_pixel_refiner, bad)
    (bad / "refiner.json").write_text("{not json")
    with pytest.raises(StudioError, match="refiner.json"):
        load_pixel_refiner(bad, CPU32)
    (bad / "refiner.json").write_text('{"format": "dhs-pixel-refiner", "scale": 2, '
                                      '"residual_scale": 4}')
    (bad / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(StudioError, match="bad"):
        load_pixel_refiner(bad, CPU32)


def test_params_out_of_range_are_refused():
    with pytest.raises(StudioError, match="strength"):
        RefineParams(strength=1.5)
    with pytest.raises(StudioError, match="scheduler"):
        RefineParams(scheduler="euler")

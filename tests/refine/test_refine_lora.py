"""LoRA files merged into a tiny Stable Diffusion: kohya and peft layouts, weight, errors."""

import numpy as np
import pytest
import sd_tiny
import torch
from PIL import Image
from safetensors.torch import save_file

from studio.cli import main
from studio.core.errors import StudioError
from studio.refine.lora import apply_loras

pytestmark = pytest.mark.slow

UNET_LAYER = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    pipe = sd_tiny.tiny_sd_pipeline(root / "sd")
    return pipe, root


def _te_layer(pipe):
    return next(n for n, m in pipe.text_encoder.named_modules()
                if n.endswith("layers.0.self_attn.q_proj"))


def test_kohya_lora_adds_weight_times_alpha_over_rank_up_down(tiny, tmp_path):
    pipe, _ = tiny
    g = torch.Generator().manual_seed(0)
    up, down = torch.randn(32, 2, generator=g), torch.randn(2, 32, generator=g)
    te_up, te_down = torch.randn(32, 2, generator=g), torch.randn(2, 32, generator=g)
    te = "text_model_encoder_layers_0_self_attn_q_proj"  # A1111 files name it like this
    f = tmp_path / "style.safetensors"
    save_file({f"lora_unet_{UNET_LAYER.replace('.', '_')}.lora_up.weight": up,
               f"lora_unet_{UNET_LAYER.replace('.', '_')}.lora_down.weight": down,
               f"lora_unet_{UNET_LAYER.replace('.', '_')}.alpha": torch.tensor(1.0),
               f"lora_te_{te}.lora_up.weight": te_up,
               f"lora_te_{te}.lora_down.weight": te_down}, str(f))
    unet_w = pipe.unet.get_submodule(UNET_LAYER).weight.clone()
    te_w = pipe.text_encoder.get_submodule(_te_layer(pipe)).weight.clone()
    assert apply_loras(pipe, [(f, 0.5)]) == 2
    got = pipe.unet.get_submodule(UNET_LAYER).weight
    assert torch.allclose(got, unet_w + 0.5 * (1.0 / 2) * up @ down, atol=1e-5)
    te_got = pipe.text_encoder.get_submodule(_te_layer(pipe)).weight
    assert torch.allclose(te_got, te_w + 0.5 * te_up @ te_down, atol=1e-5)  # alpha = rank
    with torch.no_grad():  # put the weights back for the other tests
        pipe.unet.get_submodule(UNET_LAYER).weight.copy_(unet_w)
        pipe.text_encoder.get_submodule(_te_layer(pipe)).weight.copy_(te_w)


def test_peft_layout_and_foreign_loras(tiny, tmp_path):
    pipe, _ = tiny
    w0 = pipe.unet.get_submodule(UNET_LAYER).weight.clone()
    f = tmp_path / "peft.safetensors"
    save_file({f"unet.{UNET_LAYER}.lora_A.weight": torch.ones(1, 32),
               f"unet.{UNET_LAYER}.lora_B.weight": torch.ones(32, 1)}, str(f))
    apply_loras(pipe, [(f, 1.0)])
    assert torch.allclose(pipe.unet.get_submodule(UNET_LAYER).weight, w0 + 1.0)
    with torch.no_grad():
        pipe.unet.get_submodule(UNET_LAYER).weight.copy_(w0)
    bad = tmp_path / "sdxl-lora.safetensors"
    save_file({"lora_unet_input_blocks_4_1_proj_in.lora_up.weight": torch.ones(4, 1),
               "lora_unet_input_blocks_4_1_proj_in.lora_down.weight": torch.ones(1, 4)},
              str(bad))
    with pytest.raises(StudioError, match="sdxl-lora.safetensors.*matches no layer"):
        apply_loras(pipe, [(bad, 1.0)])
    junk = tmp_path / "junk.safetensors"
    save_file({"weight": torch.ones(1)}, str(junk))
    with pytest.raises(StudioError, match="junk.safetensors.*not a LoRA"):
        apply_loras(pipe, [(junk, 1.0)])


def test_cli_lora_changes_the_result(tiny, tmp_path):
    _, root = tiny
    f = tmp_path / "strong.safetensors"  # a convolution LoRA on the UNet's input layer
    save_file({"unet.conv_in.lora_A.weight": torch.full((1, 4, 3, 3), 0.3),
               "unet.conv_in.lora_B.weight": torch.ones(32, 1, 1, 1)}, str(f))
    img = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    outs = []
    for extra in ([], ["--lora", f"{f}:2"]):
        out = tmp_path / f"out{len(outs)}.png"
        assert main(["refine", str(tmp_path / "in.png"), "-o", str(out), "--model",
                     str(root / "sd"), "--strength", "1", "--steps", "2", "--device", "cpu",
                     "--precision", "fp32", *extra]) == 0
        outs.append(np.asarray(Image.open(out)))
    assert not np.array_equal(outs[0], outs[1])

"""A tiny Stable Diffusion 1.x pipeline built in code (random weights, offline tokenizer),
and an exporter to the original single-file layout, for the refiner's tests.

The UNet and VAE have SD's four levels (the single-file key conversion assumes them), with
tiny channel counts; the tokenizer is byte-level with no merges.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars), strict=True))


def write_tokenizer(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")


def tiny_sd_pipeline(folder: Path):
    """Build, save (diffusers folder) and return a tiny SD 1.x img2img pipeline."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 32, 32, 32), layers_per_block=2, sample_size=8,
        in_channels=4, out_channels=4, cross_attention_dim=32, attention_head_dim=4,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    vae = AutoencoderKL(block_out_channels=[8, 8, 16, 16], layers_per_block=2,
                        down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4,
                        norm_num_groups=4, sample_size=64)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=37, vocab_size=1000,
                                        max_position_embeddings=77, bos_token_id=512,
                                        eos_token_id=513, pad_token_id=513))
    write_tokenizer(folder / "tokenizer")
    tok = CLIPTokenizer(str(folder / "tokenizer" / "vocab.json"),
                        str(folder / "tokenizer" / "merges.txt"), model_max_length=77)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                          clip_sample=False, set_alpha_to_one=False)
    pipe = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                          scheduler=sched, safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return pipe


# ------------------------------------------------------------- diffusers -> original layout


def _unet_to_ldm(sd: dict[str, torch.Tensor], layers: int = 2) -> dict[str, torch.Tensor]:
    rules: list[tuple[str, str]] = [
        ("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
        ("mid_block.resnets.0.", "middle_block.0."), ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.1.", "middle_block.2."),
    ]
    for i in range(4):
        for j in range(layers):
            rules.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{3 * i + j + 1}.0."))
            rules.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{3 * i + j + 1}.1."))
        rules.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{3 * i + 3}.0.op."))
        for j in range(layers + 1):
            rules.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{3 * i + j}.0."))
            rules.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{3 * i + j}.1."))
    resnet = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."),
              ("time_emb_proj.", "emb_layers.1."), ("norm2.", "out_layers.0."),
              ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]
    has_attn = {m.group(1) for k in sd if (m := re.match(r"(up_blocks\.\d+)\.attentions", k))}
    out = {}
    for k, v in sd.items():
        m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", k)
        if m:
            i = int(m.group(1))
            slot = 2 if f"up_blocks.{i}" in has_attn else 1
            out[f"output_blocks.{3 * i + 2}.{slot}.conv.{m.group(2)}"] = v
            continue
        new = k
        for a, b in rules:
            if new.startswith(a):
                new = b + new[len(a):]
                if ".resnets." in a or "mid_block.resnets" in a:
                    for ra, rb in resnet:
                        new = new.replace("." + b.rstrip(".").split(".")[-1] + "." + ra,
                                          "." + b.rstrip(".").split(".")[-1] + "." + rb)
                break
        else:
            raise KeyError(f"unmapped UNet key {k}")
        out[new] = v
    return out


def _vae_to_ldm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    n = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"decoder\.up_blocks\.(\d+)", k)))
    for k, v in sd.items():
        new = k
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2.",
                     new)
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.",
                     r"encoder.down.\1.downsample.", new)
        new = re.sub(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.",
                     lambda m: f"decoder.up.{n - 1 - int(m.group(1))}.block.{m.group(2)}.", new)
        new = re.sub(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.",
                     lambda m: f"decoder.up.{n - 1 - int(m.group(1))}.upsample.", new)
        new = re.sub(r"mid_block\.resnets\.(\d+)\.", lambda m: f"mid.block_{int(m.group(1)) + 1}.",
                     new)
        if "mid_block.attentions.0." in new:
            new = new.replace("mid_block.attentions.0.", "mid.attn_1.")
            for a, b in (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."),
                         ("to_v.", "v."), ("to_out.0.", "proj_out.")):
                new = new.replace(a, b)
            if v.ndim == 2:
                v = v[:, :, None, None]
        new = new.replace("conv_shortcut.", "nin_shortcut.").replace("conv_norm_out.", "norm_out.")
        out[new] = v
    return out


def export_single_file(pipe, path: Path) -> Path:
    """Write ``pipe`` as an original-layout SD 1.x .safetensors file."""
    from safetensors.torch import save_file

    tensors = {}
    for k, v in _unet_to_ldm(pipe.unet.state_dict()).items():
        tensors["model.diffusion_model." + k] = v
    for k, v in _vae_to_ldm(pipe.vae.state_dict()).items():
        tensors["first_stage_model." + k] = v
    for k, v in pipe.text_encoder.state_dict().items():
        # original checkpoints name the CLIP text model's tensors text_model.*
        k = k if k.startswith("text_model.") else "text_model." + k
        tensors["cond_stage_model.transformer." + k] = v
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path

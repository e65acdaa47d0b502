"""Importing rosinality/stylegan2-pytorch checkpoints.

``rosinality_forward`` below is an independent re-statement of what rosinality's
``model.py`` computes (PixelNorm + EqualLinear mapping, ModulatedConv2d with transposed
convolution + blur for upsampling, NoiseInjection, FusedLeakyReLU, ToRGB with upsampled
skips), written from reading that file. The imported model must render the same image.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from import_fixtures import (
    ROS_STYLE,
    expected_g_keys,
    rosinality_discriminator_state,
    rosinality_generator_state,
    torch_save_bytes,
    write_rosinality_export,
    write_rosinality_training_ckpt,
)

from studio.core.errors import FileFormatError
from studio.face.importers import import_checkpoint, inspect_checkpoint
from studio.face.importers.rosinality import (
    convert_generator,
    infer_config,
    nvidia_channel_config,
)
from studio.face.model_file import load_face_model

SQRT2 = math.sqrt(2)


# --------------------------------------------------------------------------- reference forward


def _blur4() -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k)
    return k / k.sum() * 4  # make_kernel(k) * factor**2


def upfirdn(x: torch.Tensor, k: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    n, c, h, w = x.shape
    if up > 1:
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    kernel = torch.flip(k, [0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, kernel, groups=c)


def equal_linear(x, weight, bias, lr_mul=1.0, act=False):
    scale = lr_mul / math.sqrt(weight.shape[1])
    if act:
        return F.leaky_relu(F.linear(x, weight * scale) + bias * lr_mul, 0.2) * SQRT2
    return F.linear(x, weight * scale, bias * lr_mul)


def rosinality_mapping(sd, z, lr_mlp=0.01):
    x = z * torch.rsqrt(torch.mean(z**2, dim=1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        x = equal_linear(x, sd[f"style.{i}.weight"], sd[f"style.{i}.bias"], lr_mlp, act=True)
        i += 1
    return x


def modulated_conv(sd, prefix, x, style, demodulate=True, upsample=False):
    weight = sd[f"{prefix}.weight"]
    _, out_ch, in_ch, k, _ = weight.shape
    scale = 1 / math.sqrt(in_ch * k * k)
    s = equal_linear(style, sd[f"{prefix}.modulation.weight"], sd[f"{prefix}.modulation.bias"])
    outs = []
    for b in range(x.shape[0]):
        w = scale * weight[0] * s[b].view(1, in_ch, 1, 1)
        if demodulate:
            w = w * torch.rsqrt(w.pow(2).sum([1, 2, 3]) + 1e-8).view(out_ch, 1, 1, 1)
        if upsample:
            o = F.conv_transpose2d(x[b : b + 1], w.transpose(0, 1), padding=0, stride=2)
            o = upfirdn(o, _blur4(), pad=(1, 1))  # p = (4-2)-(3-1) = 0: pads (1, 1)
        else:
            o = F.conv2d(x[b : b + 1], w, padding=k // 2)
        outs.append(o)
    return torch.cat(outs)


def styled_conv(sd, prefix, x, style, noise, upsample=False):
    out = modulated_conv(sd, f"{prefix}.conv", x, style, upsample=upsample)
    out = out + sd[f"{prefix}.noise.weight"] * noise
    bias = sd[f"{prefix}.activate.bias"].view(1, -1, 1, 1)
    return F.leaky_relu(out + bias, 0.2) * SQRT2


def to_rgb(sd, prefix, x, style, skip=None):
    out = modulated_conv(sd, f"{prefix}.conv", x, style, demodulate=False)
    out = out + sd[f"{prefix}.bias"]
    if skip is not None:
        out = out + upfirdn(skip, _blur4(), up=2, pad=(2, 1))
    return out


def rosinality_forward(sd, z, lr_mlp=0.01, truncation=1.0, truncation_latent=None):
    """``g_ema([z], randomize_noise=False, truncation=..., truncation_latent=...)``."""
    w = rosinality_mapping(sd, z, lr_mlp)
    if truncation < 1:
        w = truncation_latent + truncation * (w - truncation_latent)
    n_rgbs = sum(1 for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    n_latent = 2 * (n_rgbs + 2) - 2
    latent = w.unsqueeze(1).repeat(1, n_latent, 1)
    noise = [sd[f"noises.noise_{i}"] for i in range(2 * n_rgbs + 1)]
    out = sd["input.input"].repeat(z.shape[0], 1, 1, 1)
    out = styled_conv(sd, "conv1", out, latent[:, 0], noise[0])
    skip = to_rgb(sd, "to_rgb1", out, latent[:, 1])
    i = 1
    for k in range(n_rgbs):
        out = styled_conv(sd, f"convs.{2 * k}", out, latent[:, i], noise[2 * k + 1], upsample=True)
        out = styled_conv(sd, f"convs.{2 * k + 1}", out, latent[:, i + 1], noise[2 * k + 2])
        skip = to_rgb(sd, f"to_rgbs.{k}", out, latent[:, i + 2], skip)
        i += 2
    return skip


def conv_layer(x, weight, bias=None, act=True, down=False):
    """rosinality ``ConvLayer``: [Blur] + EqualConv2d + [FusedLeakyReLU]."""
    k = weight.shape[-1]
    scale = 1 / math.sqrt(weight.shape[1] * k * k)
    if down:
        p = (4 - 2) + (k - 1)
        x = upfirdn(x, _blur4() / 4, pad=((p + 1) // 2, p // 2))
        x = F.conv2d(x, weight * scale, stride=2)
    else:
        x = F.conv2d(x, weight * scale, padding=k // 2)
    if act:
        x = F.leaky_relu(x + bias.view(1, -1, 1, 1), 0.2) * SQRT2
    return x


def rosinality_discriminator(sd, img):
    out = conv_layer(img, sd["convs.0.0.weight"], sd["convs.0.1.bias"])
    j = 1
    while f"convs.{j}.conv1.0.weight" in sd:
        p = f"convs.{j}"
        y = conv_layer(out, sd[f"{p}.conv1.0.weight"], sd[f"{p}.conv1.1.bias"])
        y = conv_layer(y, sd[f"{p}.conv2.1.weight"], sd[f"{p}.conv2.2.bias"], down=True)
        skip = conv_layer(out, sd[f"{p}.skip.1.weight"], act=False, down=True)
        out = (y + skip) / SQRT2
        j += 1
    batch, channel, height, width = out.shape
    group = min(batch, 4)
    stddev = out.view(group, -1, 1, channel, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
    stddev = stddev.repeat(group, 1, height, width)
    out = torch.cat([out, stddev], 1)
    out = conv_layer(out, sd["final_conv.0.weight"], sd["final_conv.1.bias"])
    out = out.view(batch, -1)
    out = equal_linear(out, sd["final_linear.0.weight"], sd["final_linear.0.bias"], act=True)
    return equal_linear(out, sd["final_linear.1.weight"], sd["final_linear.1.bias"])


def _z(n=2, seed=9):
    return torch.randn(n, ROS_STYLE, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- tests


def test_training_checkpoint_renders_like_rosinality(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=1)
    src = write_rosinality_training_ckpt(tmp_path / "550000.pt", sd)
    out = import_checkpoint(src, tmp_path / "ros.safetensors")
    model = load_face_model(out)
    G = model.G
    z = _z()
    with torch.no_grad():
        ws = G.mapping(z, None)
        torch.testing.assert_close(ws[:, 0], rosinality_mapping(sd, z), rtol=1e-5, atol=1e-5)
        img = G(z, None, noise_mode="const")
        ref = rosinality_forward(sd, z)
    assert img.shape == ref.shape == (2, 3, 16, 16)
    assert ref.abs().mean() > 0.1  # a non-trivial image
    torch.testing.assert_close(img, ref, rtol=1e-4, atol=1e-4)
    meta = model.meta
    assert meta["training"]["imported_from"]["format"] == "rosinality-pt"
    assert meta["training"]["imported_from"]["network"] == "g_ema"
    assert meta["training"]["imported_from"]["args"]["n_mlp"] == 2
    notes = " ".join(meta["training"]["notes"])
    assert "discriminator" not in notes  # it was imported
    assert "no latent_avg" in notes
    assert meta["G_kwargs"]["synthesis_kwargs"] == {
        "channel_base": 128, "channel_max": 16, "num_fp16_res": 0, "conv_clamp": None,
        "architecture": "skip",
    }


def test_discriminator_judges_like_rosinality(tmp_path: Path) -> None:
    d = rosinality_discriminator_state(seed=4)
    src = write_rosinality_training_ckpt(tmp_path / "d.pt", rosinality_generator_state(), d)
    model = load_face_model(import_checkpoint(src, tmp_path / "d.safetensors"))
    assert model.D is not None
    assert model.meta["D_kwargs"]["architecture"] == "resnet"
    img = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model.D(img, None)
    ref = rosinality_discriminator(d, img)
    assert logits.shape == ref.shape == (8, 1)
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)


def test_odd_discriminator_is_dropped_with_a_note(tmp_path: Path) -> None:
    d = rosinality_discriminator_state(seed=4)
    d["final_linear.2.weight"] = torch.zeros(1, 1)
    src = write_rosinality_training_ckpt(tmp_path / "d2.pt", rosinality_generator_state(), d)
    model = load_face_model(import_checkpoint(src, tmp_path / "d2.safetensors"))
    assert model.D is None
    assert any("final_linear.2.weight" in n for n in model.meta["training"]["notes"])


def test_export_with_latent_avg_and_truncation(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=2)
    latent_avg = rosinality_mapping(sd, _z(4096, seed=0)).mean(0)
    src = write_rosinality_export(tmp_path / "stylegan2-ffhq-config-f.pt", sd, latent_avg)
    model = load_face_model(import_checkpoint(src, tmp_path / "exp.safetensors"))
    assert torch.equal(model.G.mapping.w_avg, latent_avg)
    z = _z(seed=4)
    with torch.no_grad():
        img = model.G(z, None, truncation_psi=0.5, noise_mode="const")
    ref = rosinality_forward(sd, z, truncation=0.5, truncation_latent=latent_avg)
    torch.testing.assert_close(img, ref, rtol=1e-4, atol=1e-4)
    assert not any("latent_avg" in n for n in model.meta["training"]["notes"])


def test_name_mapping_and_value_transforms() -> None:
    sd = rosinality_generator_state(seed=3)
    kwargs, out, notes = convert_generator(sd, latent_avg=torch.zeros(ROS_STYLE))
    assert notes == []
    assert {k: tuple(v.shape) for k, v in out.items()} == expected_g_keys(kwargs)
    eq = torch.equal
    assert eq(out["mapping.fc0.weight"], sd["style.1.weight"])
    assert eq(out["mapping.fc1.bias"], sd["style.2.bias"])
    assert eq(out["synthesis.b4.const"], sd["input.input"][0])
    assert eq(out["synthesis.b4.conv1.weight"], sd["conv1.conv.weight"][0])
    assert eq(out["synthesis.b4.conv1.affine.bias"], sd["conv1.conv.modulation.bias"])  # keeps +1
    assert eq(out["synthesis.b4.conv1.bias"], sd["conv1.activate.bias"])
    assert out["synthesis.b4.conv1.noise_strength"].shape == ()
    assert out["synthesis.b4.conv1.noise_strength"] == sd["conv1.noise.weight"][0]
    assert eq(out["synthesis.b4.conv1.noise_const"], sd["noises.noise_0"][0, 0])
    assert eq(out["synthesis.b4.torgb.bias"], sd["to_rgb1.bias"].reshape(3))
    assert eq(out["synthesis.b8.conv0.weight"], sd["convs.0.conv.weight"][0])  # no flip
    assert eq(out["synthesis.b8.conv0.noise_const"], sd["noises.noise_1"][0, 0])
    assert eq(out["synthesis.b8.conv1.noise_const"], sd["noises.noise_2"][0, 0])
    assert eq(out["synthesis.b16.conv1.affine.weight"], sd["convs.3.conv.modulation.weight"])
    assert eq(out["synthesis.b16.torgb.weight"], sd["to_rgbs.1.conv.weight"][0])
    f = out["synthesis.b16.conv0.resample_filter"]
    assert torch.allclose(f * 4, _blur4()) and abs(float(f.sum()) - 1) < 1e-6


def test_computed_w_avg_is_the_mapping_mean() -> None:
    sd = rosinality_generator_state(seed=5)
    _, out, notes = convert_generator(sd)
    assert any("computed" in n for n in notes)
    empirical = rosinality_mapping(sd, _z(20000, seed=123)).mean(0)
    spread = rosinality_mapping(sd, _z(2000, seed=7)).std(0)
    assert torch.all((out["mapping.w_avg"] - empirical).abs() < 0.05 * spread + 1e-6)


def test_other_mapping_learning_rate(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=6, lr_mlp=0.1)
    src = write_rosinality_training_ckpt(tmp_path / "fork.pt", sd, lr_mlp=0.1)
    model = load_face_model(import_checkpoint(src, tmp_path / "fork.safetensors"))
    assert model.meta["G_kwargs"]["mapping_kwargs"]["lr_multiplier"] == 0.1
    z = _z()
    with torch.no_grad():
        img = model.G(z, None, noise_mode="const")
    torch.testing.assert_close(img, rosinality_forward(sd, z, lr_mlp=0.1), rtol=1e-4, atol=1e-4)


def test_legacy_torch_format_and_bare_state_dict(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=8)
    old = tmp_path / "old.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(ROS_STYLE)}, old,
               _use_new_zipfile_serialization=False)
    assert import_checkpoint(old, tmp_path / "old.safetensors").exists()
    bare = tmp_path / "bare.pt"
    torch.save(sd, bare)
    model = load_face_model(import_checkpoint(bare, tmp_path / "bare.safetensors"))
    z = _z()
    with torch.no_grad():
        torch.testing.assert_close(model.G(z, None, noise_mode="const"), rosinality_forward(sd, z),
                                   rtol=1e-4, atol=1e-4)


def test_channel_schedules() -> None:
    standard = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    assert nvidia_channel_config(standard) == (32768, 512)  # channel_multiplier 2
    cm1 = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}
    assert nvidia_channel_config(cm1) == (16384, 512)
    assert nvidia_channel_config({4: 512, 8: 512}) == (32768, 512)
    with pytest.raises(FileFormatError, match="channel widths"):
        nvidia_channel_config({4: 16, 8: 32, 16: 8})


def test_unfitting_channels_are_refused(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=1, channels={4: 8, 8: 16, 16: 8})
    assert infer_config(sd).channels == {4: 8, 8: 16, 16: 8}
    src = tmp_path / "weird.pt"
    torch.save({"g_ema": sd}, src)
    with pytest.raises(FileFormatError, match=r"weird\.pt.*channel widths"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    info = inspect_checkpoint(src)
    assert info["supported"] is False and "channel widths" in info["problem"]
    assert not (tmp_path / "out.safetensors").exists()


def test_modified_models_are_refused(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=1)
    sd["convs.0.extra.weight"] = torch.ones(3)
    src = tmp_path / "mod.pt"
    torch.save({"g_ema": sd}, src)
    with pytest.raises(FileFormatError, match=r"mod\.pt.*convs\.0\.extra\.weight"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    nv = tmp_path / "nvidia-sd.pt"
    torch.save({"synthesis.b4.const": torch.zeros(4, 4, 4)}, nv)
    with pytest.raises(FileFormatError, match=r"nvidia-sd\.pt.*configuration"):
        import_checkpoint(nv, tmp_path / "out.safetensors")


def test_missing_noise_buffers_are_made_up(tmp_path: Path) -> None:
    sd = {k: v for k, v in rosinality_generator_state(seed=1).items() if not k.startswith("noises.")}
    kwargs, out, notes = convert_generator(sd, latent_avg=torch.zeros(ROS_STYLE))
    assert out["synthesis.b16.conv1.noise_const"].shape == (16, 16)
    assert sum("was missing" in n for n in notes) == 5
    again = convert_generator(sd, latent_avg=torch.zeros(ROS_STYLE))[1]
    assert torch.equal(again["synthesis.b16.conv1.noise_const"], out["synthesis.b16.conv1.noise_const"])


class Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "EXECUTED"
    cases = {
        "module.pt": ({"g_ema": torch.nn.Linear(2, 2)}, "torch.nn.modules.linear.Linear"),
        "evil.pt": ({"g_ema": Evil(os.system, f"touch {marker}")}, "posix.system"),
        "evil2.pt": ({"args": Evil(eval, f"open({str(marker)!r}, 'w')")}, "eval"),
    }
    for name, (obj, needle) in cases.items():
        src = tmp_path / name
        src.write_bytes(torch_save_bytes(obj))
        with pytest.raises(FileFormatError) as info:
            import_checkpoint(src, tmp_path / "out.safetensors")
        assert name in str(info.value) and needle in str(info.value)
        assert "not plain weights" in str(info.value)
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_damaged_checkpoints_are_refused(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=1)
    data = torch_save_bytes({"g_ema": sd, "latent_avg": torch.zeros(ROS_STYLE)})
    src = tmp_path / "torn.pt"
    for n in (10, len(data) // 2, len(data) - 10):
        src.write_bytes(data[:n])
        with pytest.raises(FileFormatError, match=r"torn\.pt"):
            import_checkpoint(src, tmp_path / "out.safetensors")
    src.write_bytes(torch_save_bytes([1, 2, 3]))
    with pytest.raises(FileFormatError, match="not a checkpoint dict"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    src.write_bytes(torch_save_bytes({"model": {"a": torch.zeros(1)}}))
    with pytest.raises(FileFormatError, match="no rosinality StyleGAN2 generator"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_inspect_rosinality(tmp_path: Path) -> None:
    sd = rosinality_generator_state(seed=1)
    src = write_rosinality_training_ckpt(tmp_path / "ckpt.pt", sd)
    info = inspect_checkpoint(src)
    assert info["format"] == "rosinality-pt" and info["supported"]
    assert info["networks"] == ["d", "g", "g_ema"]
    g = info["generator"]
    assert (g["img_resolution"], g["z_dim"], g["mapping_layers"]) == (16, ROS_STYLE, 2)
    assert g["channels"] == {"4": 16, "8": 16, "16": 8}
    assert info["discriminator"] == {"present": True, "imported": True}
    assert info["info"]["args"]["size"] == 16
    assert pickle.dumps(info)  # plain data

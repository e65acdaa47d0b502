"""The StyleGAN2 networks: NVIDIA-compatible layout, and the behaviour of their math."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from studio.face import layers as L
from studio.face.discriminator import Discriminator
from studio.face.generator import Generator


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"synthesis_kwargs": {"architecture": "resnet"}},
        {"synthesis_kwargs": {"architecture": "orig"}},
        {"c_dim": 4, "mapping_kwargs": {"num_layers": 3}},
        {"img_channels": 1, "img_resolution": 64},
    ],
)
def test_state_dict_matches_nvidia_layout(kit, overrides):
    kwargs = kit.kwargs(**overrides)
    G = Generator(**kwargs)
    got = [(k, tuple(v.shape)) for k, v in G.state_dict().items()]
    assert got == kit.nvidia_keys(kwargs)
    assert all(v.dtype == torch.float32 for v in G.state_dict().values())


@pytest.mark.parametrize("res", [32, 64, 128, 256, 512, 1024])
def test_resolutions_and_num_ws(res):
    G = Generator(z_dim=8, w_dim=8, img_resolution=res, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 4096, "channel_max": 4})
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    assert G.synthesis.b4.const.shape == (4, 4, 4)
    ranges = G.synthesis.block_ws_ranges()
    assert ranges[0] == (0, 2) and ranges[-1][1] == G.num_ws
    if res <= 64:
        img = G.eval()(torch.randn(1, 8), noise_mode="const")
        assert img.shape == (1, 3, res, res)


def test_init_kwargs_are_plain_json_and_rebuild_the_network(kit):
    kwargs = kit.kwargs(synthesis_kwargs={"conv_clamp": 256, "num_fp16_res": 2,
                                          "resample_filter": (1, 3, 3, 1)})
    G = Generator(**kwargs)
    text = json.dumps(G.init_kwargs)
    G2 = Generator(**json.loads(text))
    assert G2.init_kwargs == G.init_kwargs
    assert G.init_kwargs["synthesis_kwargs"]["resample_filter"] == [1, 3, 3, 1]
    assert {k: v.shape for k, v in G2.state_dict().items()} == {
        k: v.shape for k, v in G.state_dict().items()
    }
    for name in ("mapping", "synthesis"):
        assert hasattr(G, name)
    assert (G.z_dim, G.w_dim, G.img_resolution) == (32, 32, 32)


def test_unknown_options_are_refused(kit):
    with pytest.raises(TypeError):
        Generator(**kit.kwargs(synthesis_kwargs={"no_such_option": 1}))
    with pytest.raises(ValueError):
        Generator(**kit.kwargs(synthesis_kwargs={"architecture": "stylegan3"}))
    with pytest.raises(ValueError):
        Generator(**kit.kwargs(img_resolution=48))


def test_strict_load_round_trip_renders_identically(kit):
    G1 = kit.make_G(seed=1)
    G2 = Generator(**G1.init_kwargs).eval()
    G2.load_state_dict(G1.state_dict(), strict=True)
    z = torch.randn(3, 32)
    with torch.no_grad():
        assert torch.equal(G1(z, noise_mode="const"), G2(z, noise_mode="const"))


def test_truncation_zero_gives_the_average_face_for_every_seed(kit):
    G = kit.make_G()
    with torch.no_grad():
        ws = G.mapping(torch.randn(5, 32), truncation_psi=0.0)
        assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws))
        imgs = G.synthesis(ws, noise_mode="const")
    assert (imgs - imgs[:1]).abs().max() < 1e-5
    assert imgs.std() > 0.01  # a real image, not a blank


def test_truncation_cutoff_only_touches_early_layers(kit):
    G = kit.make_G()
    z = torch.randn(2, 32)
    with torch.no_grad():
        full = G.mapping(z)
        cut = G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.equal(cut[:, 3:], full[:, 3:])
    assert torch.allclose(cut[:, :3], G.mapping.w_avg.lerp(full[:, :3], 0.5))


def test_z_is_normalised_to_unit_second_moment(kit):
    G = kit.make_G()
    z = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.allclose(G.mapping(z), G.mapping(z * 7.5), atol=1e-5)


def test_w_avg_is_tracked_in_training_mode_only(kit):
    G = kit.make_G()
    before = G.mapping.w_avg.clone()
    z = torch.randn(4, 32)
    with torch.no_grad():
        G.mapping(z)
        assert torch.equal(G.mapping.w_avg, before)
        G.mapping.train()
        w = G.mapping(z)[:, 0].mean(0)
        G.mapping.train(False)
    assert torch.allclose(G.mapping.w_avg, w.lerp(before, 0.995))


def test_noise_modes(kit):
    G = kit.make_G()
    ws = G.mapping(torch.randn(1, 32))
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        none = G.synthesis(ws, noise_mode="none")
        r1 = G.synthesis(ws, noise_mode="random", noise_seed=3)
        r2 = G.synthesis(ws, noise_mode="random", noise_seed=3)
        r3 = G.synthesis(ws, noise_mode="random", noise_seed=4)
    assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
    assert torch.equal(r1, r2)
    assert not torch.equal(r1, r3) and not torch.equal(const, none)
    with pytest.raises(ValueError):
        G.synthesis(ws, noise_mode="loud")


def test_fused_and_unfused_modulation_agree(kit):
    G = kit.make_G()
    ws = G.mapping(torch.randn(3, 32))
    with torch.no_grad():
        a = G.synthesis(ws, noise_mode="const", fused_modconv=True)
        b = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    assert (a - b).abs().max() < 1e-4


def test_conditional_generator_uses_its_label(kit):
    G = kit.make_G(c_dim=3)
    z = torch.randn(1, 32)
    with torch.no_grad():
        a = G(z, torch.tensor([[1.0, 0, 0]]), noise_mode="const")
        b = G(z, torch.tensor([[0, 1.0, 0]]), noise_mode="const")
    assert (a - b).abs().max() > 1e-3


# --------------------------------------------------------------------------- resampling


def test_resampling_filters_keep_dc_and_shapes():
    f = L.make_resample_filter()
    assert f.shape == (4, 4) and math.isclose(float(f.sum()), 1.0, rel_tol=1e-6)
    ones = torch.ones(1, 2, 8, 8)
    up = L.upsample_2x(ones, f)
    down = L.downsample_2x(ones, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1), atol=1e-6)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1), atol=1e-6)


def test_polyphase_upsampling_equals_transposed_convolution():
    torch.manual_seed(0)
    f = L.make_resample_filter()
    w = torch.randn(5, 7, 3, 3)
    x = torch.randn(2, 7, 6, 6)
    ref = L.resampled_conv2d(x, w, f, up=2, padding=1, flip_weight=False)
    k = L.up_conv_polyphase_kernel(w, f).float()
    got = L.phase_shuffle(F.conv2d(x.contiguous(memory_format=torch.channels_last),
                                   k.contiguous(memory_format=torch.channels_last), padding=1))
    assert got.shape == ref.shape == (2, 5, 12, 12)
    assert (got - ref).abs().max() < 1e-4
    img = torch.randn(2, 3, 6, 6)
    k = L.upsample_polyphase_kernel(f).float()
    got = F.pixel_shuffle(F.conv2d(img.reshape(6, 1, 6, 6), k, padding=1), 2).reshape(2, 3, 12, 12)
    assert (got - L.upsample_2x(img, f)).abs().max() < 1e-5


# --------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("arch", ["resnet", "skip", "orig"])
def test_discriminator_layout_and_output(arch):
    D = Discriminator(c_dim=0, img_resolution=32, img_channels=3, architecture=arch,
                      channel_base=512, channel_max=32, mbstd_group_size=2)
    keys = list(D.state_dict())
    assert keys[0] == "b32.resample_filter"
    assert "b32.fromrgb.weight" in keys
    assert ("b16.fromrgb.weight" in keys) == (arch == "skip")
    assert ("b16.skip.weight" in keys) == (arch == "resnet")
    assert ("b4.fromrgb.weight" in keys) == (arch == "skip")
    assert keys[-7:] == ["b4.conv.weight", "b4.conv.bias", "b4.conv.resample_filter",
                         "b4.fc.weight", "b4.fc.bias", "b4.out.weight", "b4.out.bias"]
    assert D.state_dict()["b4.conv.weight"].shape == (32, 33, 3, 3)  # + 1 mbstd channel
    assert D.state_dict()["b4.fc.weight"].shape == (32, 32 * 16)
    out = D(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 1) and torch.isfinite(out).all()
    assert json.loads(json.dumps(D.init_kwargs))["architecture"] == arch


def test_conditional_discriminator_and_nested_kwargs():
    D = Discriminator(c_dim=3, img_resolution=32, img_channels=3, channel_base=512, channel_max=32,
                      mapping_kwargs={"num_layers": 2}, epilogue_kwargs={"mbstd_group_size": 2})
    keys = list(D.state_dict())
    assert "mapping.embed.weight" in keys and "mapping.fc1.weight" in keys
    assert "mapping.w_avg" not in keys
    assert keys.index("mapping.embed.weight") < keys.index("b4.conv.weight")
    out = D(torch.randn(2, 3, 32, 32), torch.eye(3)[:2])
    assert out.shape == (2, 1)
    D2 = Discriminator(**D.init_kwargs)
    D2.load_state_dict(D.state_dict(), strict=True)

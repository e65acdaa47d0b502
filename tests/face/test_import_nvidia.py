"""Importing NVIDIA StyleGAN2(-ADA) network pickles built in code in NVIDIA's exact format."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from import_fixtures import (
    TINY_G,
    Persistent,
    expected_g_keys,
    marker_source,
    module_state,
    network_from_state_dict,
    nvidia_g_init_kwargs,
    nvidia_pickle_bytes,
    tiny_discriminator,
    tiny_generator,
    write_nvidia_pkl,
)

from studio.core.errors import FileFormatError, StudioError
from studio.face.importers import (
    convert_checkpoint,
    default_output_path,
    import_checkpoint,
    inspect_checkpoint,
)
from studio.face.importers.nvidia_pkl import convert_generator, read_nvidia_pickle
from studio.face.model_file import load_face_model


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "EXECUTED"


def _render(G, c_dim: int = 0, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2, G.z_dim, generator=g)
    c = torch.eye(c_dim)[[0, c_dim - 1]] if c_dim else None
    with torch.no_grad():
        return G(z, c, noise_mode="const")


def _d_logits(D, c_dim: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    img = torch.randn(4, 3, 16, 16, generator=g)
    c = torch.eye(c_dim)[[0, 1, 2, 0]] if c_dim else None
    with torch.no_grad():
        return D(img, c)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_round_trip_renders_the_same_image(tmp_path: Path, marker: Path, protocol: int) -> None:
    G, gk = tiny_generator(seed=protocol)
    D, dk = tiny_discriminator(seed=protocol)
    src = write_nvidia_pkl(tmp_path / "ffhq-tiny.pkl", G.state_dict(), gk, marker=marker,
                           protocol=protocol, D_state=D.state_dict(), D_kwargs=dk)
    out = import_checkpoint(src, tmp_path / "out" / "tiny.safetensors", name="Tiny face")
    assert out == tmp_path / "out" / "tiny.safetensors" and out.exists()
    assert not marker.exists()

    model = load_face_model(out)
    assert torch.equal(_render(model.G), _render(G))
    assert model.D is not None
    assert torch.equal(_d_logits(model.D), _d_logits(D))
    meta = model.meta
    assert meta["name"] == "Tiny face"
    assert "ffhq-tiny.pkl" in meta["source"]
    imported = meta["training"]["imported_from"]
    assert imported["format"] == "nvidia-pkl" and imported["network"] == "G_ema"
    assert imported["training_set"]["resolution"] == 16
    assert any("licence" in n for n in meta["training"]["notes"])
    assert meta["G_kwargs"]["synthesis_kwargs"]["conv_clamp"] == 256


def test_conditional_networks_are_imported(tmp_path: Path, marker: Path) -> None:
    G, gk = tiny_generator(seed=7, c_dim=3)
    D, dk = tiny_discriminator(seed=7, c_dim=3)
    assert "mapping.embed.weight" in G.state_dict()
    src = write_nvidia_pkl(tmp_path / "cond.pkl", G.state_dict(), gk, marker=marker,
                           D_state=D.state_dict(), D_kwargs=dk)
    model = load_face_model(import_checkpoint(src, tmp_path / "cond.safetensors"))
    assert model.G.c_dim == 3
    assert torch.equal(_render(model.G, 3), _render(G, 3))
    assert torch.equal(_d_logits(model.D, 3), _d_logits(D, 3))


@pytest.mark.parametrize("arch", ["orig", "resnet"])
def test_other_architectures(tmp_path: Path, marker: Path, arch: str) -> None:
    kw = {**TINY_G["synthesis_kwargs"], "architecture": arch}
    G, gk = tiny_generator(seed=11, synthesis_kwargs=kw)
    src = write_nvidia_pkl(tmp_path / f"{arch}.pkl", G.state_dict(), gk, marker=marker,
                           include=("G_ema",))
    model = load_face_model(import_checkpoint(src, tmp_path / f"{arch}.safetensors"))
    assert torch.equal(_render(model.G), _render(G))


def test_official_converted_pickles(tmp_path: Path, marker: Path) -> None:
    # NVIDIA's published pickles were converted from TensorFlow by legacy.py, which writes
    # every option out in full.
    mapping = {"num_layers": 2, "embed_features": None, "layer_features": None,
               "activation": "lrelu", "lr_multiplier": 0.01, "w_avg_beta": 0.995}
    synthesis = {"channel_base": 128, "channel_max": 16, "num_fp16_res": 0, "conv_clamp": None,
                 "architecture": "skip", "resample_filter": [1, 3, 3, 1], "use_noise": True,
                 "activation": "lrelu"}
    G, gk = tiny_generator(seed=12, mapping_kwargs=mapping, synthesis_kwargs=synthesis)
    D, dk = tiny_discriminator(
        seed=12, num_fp16_res=0, conv_clamp=None,
        block_kwargs={"activation": "lrelu", "resample_filter": [1, 3, 3, 1], "freeze_layers": 0},
        mapping_kwargs={"num_layers": 0, "embed_features": None, "layer_features": None,
                        "activation": "lrelu", "lr_multiplier": 0.1},
        epilogue_kwargs={"mbstd_group_size": None, "mbstd_num_channels": 1, "activation": "lrelu"},
    )
    src = write_nvidia_pkl(tmp_path / "ffhq.pkl", G.state_dict(), gk, marker=marker,
                           D_state=D.state_dict(), D_kwargs=dk, protocol=3)
    info = inspect_checkpoint(src)
    assert info["supported"] and info["discriminator"] == {"present": True, "imported": True}
    model = load_face_model(import_checkpoint(src, tmp_path / "ffhq.safetensors"))
    assert torch.equal(_render(model.G), _render(G))
    assert torch.equal(_d_logits(model.D), _d_logits(D))


def test_conditional_label_mapping_without_layers(tmp_path: Path, marker: Path) -> None:
    # TF-converted conditional pickles give D a label mapping with 0 layers (embed only).
    G, gk = tiny_generator(seed=13, c_dim=2)
    D, dk = tiny_discriminator(seed=13, c_dim=2, mapping_kwargs={"num_layers": 0})
    src = write_nvidia_pkl(tmp_path / "c0.pkl", G.state_dict(), gk, marker=marker,
                           D_state=D.state_dict(), D_kwargs=dk)
    model = load_face_model(import_checkpoint(src, tmp_path / "c0.safetensors"))
    assert torch.equal(_render(model.G, 2), _render(G, 2))
    if model.D is not None:  # kept when the model file format accepts it
        assert torch.equal(_d_logits(model.D, 2), _d_logits(D, 2))
    else:
        assert any("discriminator not kept" in n for n in model.meta["training"]["notes"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0.pkl", "c0.safetensors"]


def test_stylegan3_repo_stylegan2_networks(tmp_path: Path, marker: Path) -> None:
    # The stylegan3 repository passes synthesis options flat, plus fused_modconv_default.
    G, gk = tiny_generator(seed=2)
    src = write_nvidia_pkl(tmp_path / "sg3repo.pkl", G.state_dict(), gk, marker=marker,
                           flat=True, include=("G", "G_ema"))
    info = inspect_checkpoint(src)
    assert info["supported"], info["problem"]
    assert info["generator"]["channel_base"] == 128
    model = load_face_model(import_checkpoint(src, tmp_path / "sg3repo.safetensors"))
    assert torch.equal(_render(model.G), _render(G))
    notes = model.meta["training"]["notes"]
    assert any("fused_modconv_default" in n for n in notes)
    assert any("no discriminator" in n for n in notes)
    assert model.D is None


def test_generator_without_g_ema(tmp_path: Path, marker: Path) -> None:
    G, gk = tiny_generator(seed=4)
    net = network_from_state_dict(G.state_dict(), "Generator", nvidia_g_init_kwargs(gk),
                                  marker_source(marker))
    src = tmp_path / "only-g.pkl"
    src.write_bytes(nvidia_pickle_bytes({"G": net}, protocol=3))
    model = load_face_model(import_checkpoint(src, tmp_path / "g.safetensors"))
    assert torch.equal(_render(model.G), _render(G))
    assert model.meta["training"]["imported_from"]["network"] == "G"
    assert any("no G_ema" in n for n in model.meta["training"]["notes"])


def _stylegan3_pickle(marker: Path) -> bytes:
    src = marker_source(marker)
    inp = Persistent("SynthesisInput", module_state(
        {"weight": torch.randn(4, 4)},
        {"transform": torch.eye(3), "freqs": torch.randn(4, 2), "phases": torch.randn(4)},
        {"affine": Persistent("FullyConnectedLayer", module_state(
            {"weight": torch.zeros(4, 8), "bias": torch.tensor([1.0, 0, 0, 0])}, {}, {}), src)},
    ), src)
    syn = Persistent("SynthesisNetwork", module_state({}, {}, {"input": inp}), src)
    mapping = Persistent("MappingNetwork", module_state({}, {"w_avg": torch.zeros(8)}, {}), src)
    kwargs = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16, "img_channels": 3,
              "mapping_kwargs": {"num_layers": 2}, "channel_base": 32768, "channel_max": 512,
              "magnitude_ema_beta": 0.999, "conv_kernel": 1, "use_radial_filters": True}
    g = Persistent("Generator", module_state({}, {}, {"synthesis": syn, "mapping": mapping},
                                             init_kwargs=kwargs), src)
    return nvidia_pickle_bytes({"G_ema": g}, protocol=4)


def test_stylegan3_networks_are_refused_clearly(tmp_path: Path, marker: Path) -> None:
    src = tmp_path / "sg3-t.pkl"
    src.write_bytes(_stylegan3_pickle(marker))
    with pytest.raises(FileFormatError, match=r"sg3-t\.pkl.*StyleGAN3 networks are not supported yet"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    info = inspect_checkpoint(src)
    assert info["supported"] is False and "StyleGAN3" in info["problem"]
    assert info["generator"]["kind"] == "stylegan3"
    assert not (tmp_path / "out.safetensors").exists() and not marker.exists()


def test_converter_gives_nvidia_keys(tmp_path: Path, marker: Path) -> None:
    G, gk = tiny_generator()
    src = write_nvidia_pkl(tmp_path / "k.pkl", G.state_dict(), gk, marker=marker)
    kwargs, sd = convert_generator(read_nvidia_pickle(src).networks["G_ema"])
    assert kwargs == {**gk, "mapping_kwargs": {"num_layers": 2}}
    expected = expected_g_keys(gk)  # REFERENCE.md's layout, not our Generator's code
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert list(sd) == list(G.state_dict())  # NVIDIA's order too
    for k, v in G.state_dict().items():
        assert torch.equal(sd[k], v), k


def test_non_persistent_buffers_are_left_out(tmp_path: Path, marker: Path) -> None:
    G, gk = tiny_generator()
    sd = dict(G.state_dict())
    sd["synthesis.b4.conv1.scratch_filter"] = torch.ones(3)
    net = network_from_state_dict(sd, "Generator", nvidia_g_init_kwargs(gk), "",
                                  non_persistent={"synthesis.b4.conv1": {"scratch_filter"}})
    # network_from_state_dict files unknown names as parameters; make it a buffer.
    conv1 = net.meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"]["b4"]
    st = conv1.meta["state"]["_modules"]["conv1"].meta["state"]
    st["_buffers"]["scratch_filter"] = st["_parameters"].pop("scratch_filter")
    src = tmp_path / "np.pkl"
    src.write_bytes(nvidia_pickle_bytes({"G_ema": net}, protocol=4))
    conv = convert_checkpoint(src)
    assert "synthesis.b4.conv1.scratch_filter" not in conv.G_state
    assert import_checkpoint(src, tmp_path / "np.safetensors").exists()


def test_mismatched_config_is_refused(tmp_path: Path, marker: Path) -> None:
    G, gk = tiny_generator()
    wrong = {**gk, "synthesis_kwargs": {**gk["synthesis_kwargs"], "channel_max": 32}}
    src = write_nvidia_pkl(tmp_path / "liar.pkl", G.state_dict(), wrong, marker=marker)
    with pytest.raises(FileFormatError, match=r"liar\.pkl.*shape"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    # ~3 GB of weights claimed: refused before anything that size is allocated.
    huge = {**gk, "img_resolution": 2048,
            "synthesis_kwargs": {"channel_base": 2**22, "channel_max": 2048}}
    src = write_nvidia_pkl(tmp_path / "huge.pkl", G.state_dict(), huge, marker=marker)
    with pytest.raises(FileFormatError, match=r"huge\.pkl.*about [0-9,]{11} numbers.*holds 11,038"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    silly = {**gk, "img_resolution": 2**20}
    src = write_nvidia_pkl(tmp_path / "silly.pkl", G.state_dict(), silly, marker=marker)
    with pytest.raises(FileFormatError, match=r"silly\.pkl.*resolution 1048576"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    swish = {**gk, "mapping_kwargs": {"num_layers": 2, "activation": "swish"}}
    src = write_nvidia_pkl(tmp_path / "swish.pkl", G.state_dict(), swish, marker=marker)
    with pytest.raises(FileFormatError, match=r"swish\.pkl.*activation 'swish'"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    arch = {**gk, "synthesis_kwargs": {**gk["synthesis_kwargs"], "architecture": "cubist"}}
    src = write_nvidia_pkl(tmp_path / "arch.pkl", G.state_dict(), arch, marker=marker)
    with pytest.raises(FileFormatError, match=r"arch\.pkl.*cannot be built here"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    odd = {**gk, "synthesis_kwargs": {**gk["synthesis_kwargs"], "warp_drive": True}}
    src = write_nvidia_pkl(tmp_path / "odd.pkl", G.state_dict(), odd, marker=marker)
    with pytest.raises(FileFormatError, match=r"odd\.pkl.*does not support: warp_drive"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_broken_discriminator_is_dropped_with_a_note(tmp_path: Path, marker: Path) -> None:
    G, gk = tiny_generator()
    D, dk = tiny_discriminator()
    dk = {**dk, "channel_max": 64}
    src = write_nvidia_pkl(tmp_path / "d.pkl", G.state_dict(), gk, marker=marker,
                           D_state=D.state_dict(), D_kwargs=dk)
    model = load_face_model(import_checkpoint(src, tmp_path / "d.safetensors"))
    assert model.D is None
    assert any("discriminator not imported" in n for n in model.meta["training"]["notes"])


def test_default_output_and_overwrite(tmp_path: Path, marker: Path, studio_home: Path) -> None:
    G, gk = tiny_generator()
    src = write_nvidia_pkl(tmp_path / "my-face.pkl", G.state_dict(), gk, marker=marker)
    out = import_checkpoint(src, models_dir=tmp_path / "models")
    assert out == tmp_path / "models" / "face" / "my-face.safetensors"
    with pytest.raises(StudioError, match="already exists"):
        import_checkpoint(src, models_dir=tmp_path / "models")
    assert import_checkpoint(src, models_dir=tmp_path / "models", overwrite=True) == out
    out2 = import_checkpoint(src)  # the user's models folder (STUDIO_HOME in tests)
    assert out2 == default_output_path(src) and out2.is_relative_to(studio_home)
    with pytest.raises(StudioError, match=r"\.safetensors"):
        import_checkpoint(src, tmp_path / "x.pkl2")


def test_inspect_describes_without_writing(tmp_path: Path, marker: Path) -> None:
    G, gk = tiny_generator(c_dim=2)
    D, dk = tiny_discriminator(c_dim=2)
    src = write_nvidia_pkl(tmp_path / "i.pkl", G.state_dict(), gk, marker=marker,
                           D_state=D.state_dict(), D_kwargs=dk)
    before = sorted(p.name for p in tmp_path.iterdir())
    info = inspect_checkpoint(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert info["format"] == "nvidia-pkl" and info["supported"]
    assert info["networks"] == ["D", "G", "G_ema", "augment_pipe"]
    g = info["generator"]
    assert (g["img_resolution"], g["z_dim"], g["c_dim"], g["mapping_layers"]) == (16, 8, 2, 2)
    assert g["num_params"] == sum(t.numel() for t in G.state_dict().values())
    assert info["discriminator"]["present"]
    json.dumps(info)  # plain data


def _cli(argv: list[str]) -> int:
    from studio.cli import import_cmds

    parser = argparse.ArgumentParser(prog="studio")
    sub = parser.add_subparsers(dest="command")
    import_cmds.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_import_and_inspect(tmp_path: Path, marker: Path, capsys) -> None:
    G, gk = tiny_generator()
    src = write_nvidia_pkl(tmp_path / "cli.pkl", G.state_dict(), gk, marker=marker)
    out = tmp_path / "cli.safetensors"
    assert _cli(["import", str(src), "-o", str(out), "--name", "Ada"]) == 0
    assert load_face_model(out).name == "Ada"
    assert "cli.safetensors" in capsys.readouterr().out
    with pytest.raises(StudioError, match="--force"):
        _cli(["import", str(src), "-o", str(out)])
    assert _cli(["import", str(src), "-o", str(out), "--force", "--name", "Bo"]) == 0
    assert load_face_model(out).name == "Bo"
    capsys.readouterr()
    assert _cli(["import", str(src), "--inspect", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["generator"]["img_resolution"] == 16
    assert _cli(["import", str(src), "--inspect"]) == 0
    assert "can be imported" in capsys.readouterr().out
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    with pytest.raises(FileFormatError, match=r"bad\.pkl"):
        _cli(["import", str(bad), "-o", str(tmp_path / "bad.safetensors")])

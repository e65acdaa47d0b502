"""Training settings, the image folder and the seeded batch order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.train.config import PRESETS, TrainConfig
from studio.train.data import Batches, BatchOrder, ImageFolder


def test_presets_and_json_round_trip():
    for name in PRESETS:
        cfg = TrainConfig.from_preset(name, data="d", kimg=None).validated()
        assert cfg.preset == name and cfg.kimg == PRESETS[name]["kimg"]
    cfg = TrainConfig.from_preset("few", data="d", batch=4)
    assert cfg.batch == 4 and cfg.freeze_d == 3
    again = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    r = TrainConfig(data="d", batch=16).resolved(256)
    assert r.resolution == 256 and r.channel_base == 16384 and r.batch_gpu == 16
    assert r.r1_gamma == pytest.approx(0.0002 * 256**2 / 16) and r.ema_kimg == pytest.approx(5.0)


@pytest.mark.parametrize("change, what", [
    ({"data": ""}, "data"), ({"kimg": 0}, "kimg"), ({"batch": 6, "batch_gpu": 4}, "batch_gpu"),
    ({"augment": "maybe"}, "augment"), ({"augments": ["xflip", "warp"]}, "augments"),
    ({"resolution": 100}, "resolution"), ({"precision": "fp8"}, "precision"),
    ({"aug_p": 1.5}, "aug_p"),
])
def test_bad_settings_name_the_setting(change, what):
    with pytest.raises(StudioError, match=what):
        TrainConfig(**{"data": "d", **change}).validated()
    with pytest.raises(StudioError, match="unknown training setting"):
        TrainConfig.from_dict({"data": "d", "warp_speed": 9})


def test_folder_skips_broken_files_resizes_and_crops(tmp_path, tk):
    imgs = tk.render(3, 32, seed=3)
    folder = tk.write_folder(tmp_path / "f", imgs)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("ignored")
    from PIL import Image

    Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(folder / "wide.jpg")
    f = ImageFolder(folder, resolution=16)
    assert len(f) == 4 and f.source_resolution == 32 and f.resized
    assert [s.file for s in f.skipped] == ["broken.png"]
    assert f.image(0).shape == (16, 16, 3) and f.images([0, 3]).shape == (2, 16, 16, 3)


def test_empty_or_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(StudioError, match="no such folder") as err:
        ImageFolder(tmp_path / "nope")
    assert "nope" in str(err.value)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"garbage")
    with pytest.raises(StudioError, match="no usable PNG or JPG images.*x.png"):
        ImageFolder(tmp_path / "bad")


def test_ingest_dataset_list_is_respected(tmp_path, tk):
    folder = tk.write_folder(tmp_path / "ds", tk.render(3, 16, seed=4))
    (folder / "dataset.json").write_text(json.dumps(
        {"format": "studio.photos.dataset", "images": [{"file": "00000.png"}, {"file": "00002.png"}]}))
    f = ImageFolder(folder)
    assert [p.name for p in f.files] == ["00000.png", "00002.png"]


def test_batch_order_is_seeded_and_resumable():
    order = BatchOrder(10, seed=3, mirror=True)
    idx, flip = order.entries(0, 45)
    idx2, flip2 = BatchOrder(10, seed=3, mirror=True).entries(20, 25)
    assert np.array_equal(idx[20:], idx2) and np.array_equal(flip[20:], flip2)
    # every image appears twice per epoch (plain and mirrored)
    first = sorted(zip(idx[:20].tolist(), flip[:20].tolist(), strict=True))
    assert first == sorted((i, f) for i in range(10) for f in (False, True))
    assert not np.array_equal(BatchOrder(10, seed=4, mirror=True).entries(0, 20)[0], idx[:20])


def test_batches_are_float_images_with_mirroring(tmp_path, tk):
    folder = ImageFolder(tk.write_folder(tmp_path / "b", tk.render(2, 16, seed=5)))
    b = Batches(folder, seed=0, mirror=True)
    x = b.get(0, 4)
    assert x.shape == (4, 3, 16, 16) and float(x.min()) >= -1 and float(x.max()) <= 1
    idx, flip = b.order.entries(0, 4)
    for j in range(4):
        ref = folder.image(int(idx[j]))
        ref = ref[:, ::-1] if flip[j] else ref
        got = ((x[j].permute(1, 2, 0) + 1) * 127.5).round().numpy().astype(np.uint8)
        assert np.array_equal(got, ref)

"""The face engine: latents, determinism, the fast path against the fp32 reference, caches."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from studio.core.devices import DeviceChoice
from studio.face.engine import FaceEngine, FastSynthesis
from studio.face.model_file import FaceModel, load_face_model

FP32 = DeviceChoice("cpu", "fp32", "test")
BF16 = DeviceChoice("cpu", "bf16", "test")


def _engine(G, choice=FP32, **kw) -> FaceEngine:
    return FaceEngine(FaceModel(G=G, D=None, meta={}), choice, **kw)


def _reference(G, ws: np.ndarray, kit, noise_mode="const", seed=0) -> np.ndarray:
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(ws)[None], noise_mode=noise_mode, noise_seed=seed)
    return kit.to_u8(img)[0]


def test_z_from_seed_matches_nvidia_generate(tiny_G):
    e = _engine(tiny_G)
    np.testing.assert_array_equal(e.z_from_seed(7), np.random.RandomState(7).randn(32))
    assert not np.array_equal(e.z_from_seed(7), e.z_from_seed(8))


def test_mapping_matches_the_network_and_is_cached(tiny_G):
    e = _engine(tiny_G)
    z = e.z_from_seed(3)
    w = e.mapping(z, 0.7)
    with torch.no_grad():
        ref = tiny_G.mapping(torch.from_numpy(z).float()[None], None, truncation_psi=0.7)[0]
    np.testing.assert_allclose(w, ref.numpy(), rtol=1e-6, atol=1e-6)
    assert w.shape == (tiny_G.num_ws, 32) and w.dtype == np.float32
    w[:] = 0  # callers get copies: the cache cannot be corrupted
    np.testing.assert_array_equal(e.mapping(z, 0.7), ref.numpy())
    assert len(e._map_cache) == 1
    np.testing.assert_array_equal(e.mapping(z[None], 0.7), ref.numpy())  # (1, z_dim) accepted
    with pytest.raises(ValueError, match="shape"):
        e.mapping(np.zeros(5))


@pytest.mark.parametrize("arch", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_fast_paths_match_the_fp32_reference(kit, arch, noise_mode):
    G = kit.make_G(synthesis_kwargs={"architecture": arch, "conv_clamp": 256})
    e32, e16 = _engine(G, FP32), _engine(G, BF16)
    for seed in (1, 2):
        ws = e32.ws_for(seed)
        ref = _reference(G, ws, kit, noise_mode, seed=5)
        f32 = e32.render(ws, noise_mode=noise_mode, seed_for_noise=5)
        f16 = e16.render(ws, noise_mode=noise_mode, seed_for_noise=5)
        assert np.abs(f32.astype(int) - ref).max() <= 1
        assert kit.psnr(f16, ref) > 35
        assert f16.shape == (32, 32, 3) and f16.dtype == np.uint8


def test_bigger_model_fast_path_psnr(kit):
    G = kit.make_G(img_resolution=64, synthesis_kwargs={"channel_base": 2048, "channel_max": 64})
    e16 = _engine(G, BF16)
    ws = e16.ws_for(11, 0.7)
    assert kit.psnr(e16.render(ws), _reference(G, ws, kit)) > 35


def test_rendering_is_deterministic(tiny_model_path):
    m1, m2 = load_face_model(tiny_model_path), load_face_model(tiny_model_path)
    for choice in (FP32, BF16):
        e1, e2 = FaceEngine(m1, choice), FaceEngine(m2, choice)
        for mode in ("const", "random", "none"):
            a = e1.render(e1.ws_for(4, 0.8), noise_mode=mode, seed_for_noise=9)
            e1.clear_cache()
            b = e1.render(e1.ws_for(4, 0.8), noise_mode=mode, seed_for_noise=9)
            c = e2.render(e2.ws_for(4, 0.8), noise_mode=mode, seed_for_noise=9)
            assert a.tobytes() == b.tobytes() == c.tobytes()


def test_seeds_and_noise_seeds_make_visible_differences(tiny_G):
    e = _engine(tiny_G, BF16)
    a, b = e.render(e.ws_for(1)), e.render(e.ws_for(2))
    assert np.abs(a.astype(int) - b).mean() > 2
    r1 = e.render(e.ws_for(1), noise_mode="random", seed_for_noise=1)
    r2 = e.render(e.ws_for(1), noise_mode="random", seed_for_noise=2)
    assert not np.array_equal(r1, r2)


def test_truncation_zero_gives_the_same_face_for_every_seed(tiny_G):
    e = _engine(tiny_G, BF16)
    frames = [e.render(e.ws_for(s, truncation_psi=0.0)) for s in (1, 2, 3)]
    assert frames[0].tobytes() == frames[1].tobytes() == frames[2].tobytes()
    np.testing.assert_allclose(e.ws_for(5, 0.0), np.broadcast_to(e.w_avg, (e.num_ws, 32)), atol=1e-6)


def test_style_mixing_changes_only_the_mixed_layers(tiny_G):
    e = _engine(tiny_G)
    base, other = e.ws_for(1), e.ws_for(2)
    mixed = e.ws_for(1, mix_seed=2, mix_layers=(4, 8))
    np.testing.assert_array_equal(mixed[:4], base[:4])
    np.testing.assert_array_equal(mixed[4:8], other[4:8])
    assert not np.array_equal(e.render(mixed), e.render(base))
    np.testing.assert_array_equal(e.ws_for(1), base)  # nothing mixed without a mix seed
    default = e.ws_for(1, mix_seed=2)
    np.testing.assert_array_equal(default[e.num_ws // 2 :], other[e.num_ws // 2 :])
    with pytest.raises(ValueError, match="mix layers"):
        e.ws_for(1, mix_seed=2, mix_layers=(5, 3))


def test_late_layer_changes_reuse_the_cached_early_blocks(tiny_G, monkeypatch):
    e = _engine(tiny_G, BF16)
    fast = e._fast
    assert isinstance(fast, FastSynthesis)
    calls: list[int] = []
    run = fast._run_block
    monkeypatch.setattr(fast, "_run_block", lambda j, *a: (calls.append(j), run(j, *a))[1])
    ws = e.ws_for(1)
    first = e.render(ws)
    assert calls == [0, 1, 2, 3]
    calls.clear()
    assert e.render(ws).tobytes() == first.tobytes() and calls == []  # all cached
    edited = ws.copy()
    edited[6:] += 0.5  # rows 6, 7: only the last block (b32 reads rows 5..7) depends on them
    got = e.render(edited)
    assert calls == [3]
    calls.clear()
    fresh = _engine(tiny_G, BF16)
    assert got.tobytes() == fresh.render(edited).tobytes()
    offset = np.zeros((e.num_ws, 32), np.float32)
    offset[4] = 1.0  # row 4 is read by b16's toRGB and b32's conv0
    e.render(ws, edits=offset)
    assert calls == [2, 3]
    calls.clear()
    e.render(ws, noise_mode="random")  # other noise: nothing can be reused
    assert calls == [0, 1, 2, 3]


def test_render_batch_matches_single_renders(kit, tiny_G):
    e = _engine(tiny_G, BF16)
    ws = [e.ws_for(s) for s in (1, 2, 3)]
    batch = e.render_batch(ws)
    assert batch.shape == (3, 32, 32, 3)
    for i, w in enumerate(ws):
        assert kit.psnr(batch[i], e.render(w)) > 40
    # Frames that differ only in late layers share the early blocks.
    late = [ws[0].copy() for _ in range(4)]
    for i, w in enumerate(late):
        w[6:] += 0.2 * i
    frames = e.render_batch(late)
    fresh = _engine(tiny_G, BF16)
    for i, w in enumerate(late):
        assert kit.psnr(frames[i], fresh.render(w)) > 40
    assert not np.array_equal(frames[0], frames[3])
    e32 = _engine(tiny_G, FP32)
    np.testing.assert_array_equal(e32.render_batch([]).shape, (0, 32, 32, 3))


def test_edits_offsets_and_size(kit, tiny_G):
    e = _engine(tiny_G, BF16)
    ws = e.ws_for(1)
    plain = e.render(ws)
    assert e.render(ws, edits=np.zeros(32, np.float32)).tobytes() == plain.tobytes()
    moved = e.render(ws, edits=np.full(32, 0.5, np.float32))
    assert np.abs(moved.astype(int) - plain).mean() > 1
    np.testing.assert_array_equal(e.render(ws + 0.5), moved)
    big = e.render(ws, size=64)
    assert big.shape == (64, 64, 3)
    per_frame = e.render_batch([ws, ws], edits=[None, np.full(32, 0.5, np.float32)])
    assert kit.psnr(per_frame[0], plain) > 40 and kit.psnr(per_frame[1], moved) > 40
    with pytest.raises(ValueError, match="ws must have shape"):
        e.render(np.zeros((3, 32), np.float32))
    with pytest.raises(ValueError, match="edit offset"):
        e.render(ws, edits=np.zeros(5, np.float32))


def test_grayscale_models_render_rgb(kit):
    G = kit.make_G(img_channels=1)
    frame = _engine(G, BF16).render(_engine(G).ws_for(1))
    assert frame.shape == (32, 32, 3)
    assert np.array_equal(frame[..., 0], frame[..., 1])


def test_one_worker_thread_at_a_time(tiny_G):
    e = _engine(tiny_G, BF16)
    seeds = [1, 2, 3, 4]
    expected = {s: _engine(tiny_G, BF16).render(e.ws_for(s)).tobytes() for s in seeds}
    results: dict[int, bytes] = {}

    def work(s: int) -> None:
        for _ in range(3):
            results[s] = e.render(e.ws_for(s)).tobytes()

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


def test_module_path_is_used_when_asked(tiny_G, kit):
    e = _engine(tiny_G, FP32, use_fast_path=False)
    assert e._fast is None
    ws = e.ws_for(1)
    assert np.array_equal(e.render(ws), _reference(tiny_G, ws, kit))


def test_cpu_fast_path_prepares_its_kernels_without_touching_the_global_rng(tiny_G):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    e = _engine(tiny_G, BF16)
    assert torch.equal(torch.rand(3), expected)
    convs = [c for block in e._fast.convs for c in block.values()]
    assert any(not c.modulate_kernel for c in convs)  # low resolutions: shared kernels
    if torch.backends.mkldnn.is_available():
        assert all(c.packed is not None for c in convs if not c.modulate_kernel)


def test_preview_is_a_coarse_frame_whose_blocks_the_full_render_reuses(kit, monkeypatch):
    G = kit.make_G(img_resolution=128, synthesis_kwargs={"channel_base": 1024, "channel_max": 16})
    e = _engine(G, BF16)
    calls: list[int] = []
    run = e._fast._run_block
    monkeypatch.setattr(e._fast, "_run_block", lambda j, *a: (calls.append(j), run(j, *a))[1])
    ws = e.ws_for(3)
    low = e.render_preview(ws)
    assert low.shape == (32, 32, 3) and calls == [0, 1, 2, 3]
    full = e.render(ws)
    assert calls == [0, 1, 2, 3, 4, 5]  # only the blocks above the preview ran again
    assert full.shape == (128, 128, 3)
    from PIL import Image

    small = np.asarray(Image.fromarray(full).resize((32, 32), Image.Resampling.BOX))
    assert np.abs(small.astype(int) - low).mean() < 40  # the same picture, coarser
    assert e.render_preview(ws, size=128).shape == (128, 128, 3)

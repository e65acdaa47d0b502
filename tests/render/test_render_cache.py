"""The render cache: keys cover everything that changes the pixels; LRU within a budget."""

import os

import numpy as np

from studio.face.request import FaceRequest
from studio.render.cache import FrameCache, frame_key


def test_key_changes_with_every_field_that_changes_pixels(tmp_path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x" * 10)
    base = FaceRequest(seed=1, controls={"smile": 0.5})
    k = frame_key(base, model, "cpu", "fp32")
    assert k == frame_key(FaceRequest(seed=1, controls={"smile": 0.5}), model, "cpu", "fp32")
    variants = [
        FaceRequest(seed=2, controls={"smile": 0.5}),
        FaceRequest(seed=1, truncation=0.5, controls={"smile": 0.5}),
        FaceRequest(seed=1, mix_seed=3, controls={"smile": 0.5}),
        FaceRequest(seed=1, mix_seed=3, mix_layers=(0, 2), controls={"smile": 0.5}),
        FaceRequest(seed=1, noise_mode="none", controls={"smile": 0.5}),
        FaceRequest(seed=1, controls={"smile": 0.6}),
        FaceRequest(seed=1, controls={"smile": 0.5, "blink": 1.0}),
        FaceRequest(seed=1, controls={"smile": 0.5}, size=64),
        FaceRequest(seed=1, controls={"smile": 0.5}, z=np.ones(4, np.float32)),
        FaceRequest(seed=1, controls={"smile": 0.5}, latent=np.ones((2, 4), np.float32)),
        FaceRequest(seed=1, controls={"smile": 0.5}, w_offset=np.ones(4, np.float32)),
    ]
    keys = {frame_key(v, model, "cpu", "fp32") for v in variants}
    assert len(keys) == len(variants) and k not in keys
    assert frame_key(base, model, "cuda", "fp32") != k
    assert frame_key(base, model, "cpu", "bf16") != k
    assert frame_key(base, tmp_path / "other.safetensors", "cpu", "fp32") != k
    # a control at zero drives nothing: the same frame as no control
    assert (frame_key(FaceRequest(controls={"a": 0.0}), model, "cpu")
            == frame_key(FaceRequest(), model, "cpu"))
    # the same latent values give the same key; other values another
    a = FaceRequest(latent=np.zeros((2, 4), np.float32))
    assert frame_key(a, model, "cpu") == frame_key(
        FaceRequest(latent=np.zeros((2, 4), np.float32)), model, "cpu")
    # a retrained model file (new contents, new time) misses
    st = model.stat()
    model.write_bytes(b"y" * 11)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert frame_key(base, model, "cpu", "fp32") != k


def test_lru_within_the_byte_budget():
    changes = []
    frame = np.zeros((4, 4, 3), np.uint8)  # 48 bytes
    cache = FrameCache(max_bytes=3 * frame.nbytes, on_change=lambda: changes.append(1))
    for name in "abc":
        cache.put(name, frame.copy())
    assert len(cache) == 3 and cache.nbytes == 3 * frame.nbytes
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", frame.copy())
    assert "b" not in cache and {"a", "c", "d"} == cache.keys()
    assert cache.get("b") is None and cache.misses == 1 and cache.hits == 1
    img = cache.get("a")
    assert not img.flags.writeable  # shared frames cannot be scribbled on
    cache.put("huge", np.zeros((100, 100, 3), np.uint8))  # larger than the budget: not kept
    assert "huge" not in cache and len(cache) == 3
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and len(changes) == 5

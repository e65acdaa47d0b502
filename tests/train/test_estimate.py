"""Estimates before a run: a measured speed (tiny networks), time from it, memory."""

from __future__ import annotations

import math
import os

import pytest
import torch

from studio.core.errors import StudioError
from studio.core.jobs import JobCancelled
from studio.train.estimate import (
    clear_speed_cache,
    estimate_memory,
    estimate_time,
    format_duration,
    measure_speed,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_speed_cache()
    yield
    clear_speed_cache()


def test_measured_speed_from_scratch_and_time_scales_with_kimg(tk, faces16, tmp_path):
    cfg = tk.config(faces16, tmp_path, r1_interval=4)
    before = torch.get_rng_state()
    speed = measure_speed(cfg, steps=2)
    assert torch.equal(before, torch.get_rng_state())  # the global generator is left alone
    ips = speed["images_per_s"]
    assert math.isfinite(ips) and ips > 0
    assert speed["s_per_kimg"] == pytest.approx(1000 / ips)
    assert speed["resolution"] == 16 and speed["device"] == "cpu"
    assert speed["precision"] == "fp32" and speed["batch"] == 8 and not speed["cached"]
    one, ten = estimate_time(ips, 1.0), estimate_time(ips, 10.0)
    assert one > 0 and ten == pytest.approx(10 * one)
    assert estimate_time(0.0, 5.0) == math.inf

    again = measure_speed(cfg, steps=2)  # same settings: from the cache, no new measurement
    assert again["cached"] and again["images_per_s"] == ips
    other = measure_speed(tk.config(faces16, tmp_path, batch=4, batch_gpu=4), steps=1)
    assert not other["cached"] and other["batch"] == 4


def test_without_data_from_scratch_uses_the_configured_resolution(tk, tmp_path):
    cfg = tk.config(tmp_path / "none-yet", tmp_path)
    cfg.data = ""
    speed = measure_speed(cfg, steps=1)
    assert speed["resolution"] == 16 and speed["images_per_s"] > 0


def test_base_model_measured_and_cache_follows_the_file(tk, faces16, tmp_path):
    base = tk.base_model(tmp_path / "base.safetensors")
    cfg = tk.config(faces16, tmp_path, base=str(base), resolution=None, batch=4, batch_gpu=4)
    first = measure_speed(cfg, steps=1)
    assert first["resolution"] == 16 and first["images_per_s"] > 0
    assert measure_speed(cfg, steps=1)["cached"]
    tk.base_model(base, seed=1)  # rewritten: a new file, measured again
    st = base.stat()
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not measure_speed(cfg, steps=1)["cached"]


def test_unreadable_base_model_is_a_clear_error(tk, faces16, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model")
    cfg = tk.config(faces16, tmp_path, base=str(bad), resolution=None)
    with pytest.raises(StudioError) as info:
        measure_speed(cfg)
    assert "broken.safetensors" in str(info.value)
    with pytest.raises(StudioError):
        measure_speed(tk.config(faces16, tmp_path, base=str(tmp_path / "gone.safetensors"),
                                resolution=None))


def test_measurement_can_be_cancelled(tk, faces16, tmp_path):
    def cancel() -> None:
        raise JobCancelled()

    with pytest.raises(JobCancelled):
        measure_speed(tk.config(faces16, tmp_path), check=cancel)
    assert not measure_speed(tk.config(faces16, tmp_path), steps=1)["cached"]


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "about 1 s"), (42, "about 42 s"), (59.4, "about 59 s"), (59.6, "about 1 min"),
    (600, "about 10 min"), (3600, "about 1 h"), (7800, "about 2 h 10 min"),
    (3 * 86400 + 5 * 3600, "about 3 d 5 h"), (math.inf, "an unknown time"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_memory_estimate_still_sizes_a_base_model(tk, tmp_path):
    est = estimate_memory(tk.base_model(tmp_path / "m.safetensors"), 4)
    assert est["resolution"] == 16 and est["total_gb"] > 0 and est["params_m"] > 0

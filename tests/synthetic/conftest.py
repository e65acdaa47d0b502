"""Run the renderer single-threaded in these tests: it issues thousands of small elementwise
ops, and on a busy machine OpenMP threads that spin at every op barrier make it many times
slower (see bench/synth_faces.py). Restored afterwards."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

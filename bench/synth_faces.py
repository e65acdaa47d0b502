"""Throughput of the procedural face renderer: images/s per size, 1 vs all torch threads.

Prints one JSON object. Both thread settings run in the same process, back to back, so
their ratio is meaningful even on a busy machine (absolute numbers are not). The
single-thread run also reports images per CPU-second, which hardly depends on the load:
the dataset job's worker processes (one per core) approach cores x that figure.

    python bench/synth_faces.py [--n 64] [--sizes 64 128 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from studio.synthetic.params import sample_params
from studio.synthetic.renderer import render_faces


def _rate(params, size: int, repeats: int) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU-second of this process), best of runs.
    The second barely depends on what else the machine runs."""
    n = len(params["smile"])
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        render_faces(params, size)
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return n / best_wall, n / best_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    params = sample_params(args.n, np.random.default_rng(0))
    render_faces({k: v[:4] for k, v in params.items()}, 64)  # warm up
    all_threads = torch.get_num_threads()
    out: dict[str, object] = {
        "bench": "synth_faces",
        "n": args.n,
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "threads_all": all_threads,
        "images_per_s": {},
    }
    for size in args.sizes:
        row = {}
        for threads in sorted({1, all_threads}):
            torch.set_num_threads(threads)
            wall, cpu = _rate(params, size, args.repeats)
            row[f"threads_{threads}"] = round(wall, 2)
            if threads == 1:
                row["per_cpu_second"] = round(cpu, 2)
        torch.set_num_threads(all_threads)
        if all_threads > 1:
            row["ratio_all_over_1"] = round(row[f"threads_{all_threads}"] / row["threads_1"], 2)
        out["images_per_s"][str(size)] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

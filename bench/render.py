"""Render speed: the whole render (evaluation, frames, mixing, encoding, writing the MP4)
against the face engine alone on the same frames, side by side in one run.

    .venv/bin/python bench/render.py [--project resources/demo/demo.dhproj] [--seconds S]
                                     [--repeats N]

Prints JSON: for each size (the default model's resolution and 256 px) the frames per
second of both and ``overhead`` = render time / engine time - 1 (the best of ``repeats``
runs of each, alternated, because the machine is noisy).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def engine_alone(engine, ws, edits, noise_mode: str, size: int | None, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(ws), batch):
        engine.render_batch(ws[i:i + batch], noise_mode=noise_mode, edits=edits[i:i + batch],
                            size=size)
    return time.perf_counter() - t0


def whole_render(spec, engine) -> float:
    from studio.core.jobs import Job, JobKind, JobState
    from studio.render.job import render_job

    job = Job("bench render", render_job, spec, engine, kind=JobKind.RENDER)
    t0 = time.perf_counter()
    job.run()
    if job.state is not JobState.DONE:
        raise SystemExit(f"render failed: {job.error}\n{job.details or ''}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=ROOT / "resources/demo/demo.dhproj")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of the range rendered")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from studio.core.devices import select_device
    from studio.core.project import load_project
    from studio.face.request import request_edits, request_ws
    from studio.render.frame import frame_requests
    from studio.render.job import RenderSpec, default_batch, frame_times, load_engine

    project = load_project(args.project)
    choice = select_device()
    base = RenderSpec(project, args.project, device=choice)
    engine = load_engine(base)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in dict.fromkeys([engine.resolution, 256]):
            spec = RenderSpec(project, args.project, output=Path(tmp) / f"bench-{size}.mp4",
                              range=(0.0, min(args.seconds, project.timeline.duration)),
                              size=size, device=choice)
            times, fps, _, _ = frame_times(spec)
            reqs = frame_requests(project, times, args.project, size=size)
            ws = [request_ws(engine, r) for r in reqs]
            edits = [request_edits(engine, r) for r in reqs]
            batch = default_batch(size)
            out_size = None if size == engine.resolution else size
            noise = project.avatar.noise_mode
            engine_alone(engine, ws[:batch], edits[:batch], noise, out_size, batch)  # warm up
            e_best = r_best = float("inf")
            for _ in range(args.repeats):
                e_best = min(e_best, engine_alone(engine, ws, edits, noise, out_size, batch))
                r_best = min(r_best, whole_render(spec, engine))
            n = len(times)
            results.append({
                "size": size, "frames": n, "fps_video": fps, "batch": batch,
                "engine_fps": round(n / e_best, 1), "render_fps": round(n / r_best, 1),
                "overhead": round(r_best / e_best - 1, 3),
            })
    print(json.dumps({"device": choice.label, "project": str(args.project),
                      "model_resolution": engine.resolution, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fine-tuning experiment of the face-training issue, at full scale; prints JSON.

Renders a procedural subset with one look (default: red hair with glasses, 200 faces at the
model's resolution), fine-tunes a face model on it with the ``few`` preset (the same job as
``studio train face``), and measures before and after with :func:`studio.train.look.look_report`:

* ``share``: the share of 500 generated faces (psi 1) that the shipped attribute regressor
  (``models/metrics/attributes.safetensors``) reads as having the look;
* ``share_in_data``: the regressor's reading of the subset itself (its ceiling);
* ``fd``: the Fréchet distance (fixed random features) to the subset.

    python bench/finetune_look.py [--model models/face/default.safetensors] [--kimg 10]
        [--look "hair_color=red,glasses=round|square"] [--out runs/look-experiment]

The run folder keeps the subset, the training run (resumable: run it again to continue)
and ``result.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.core.jobs import JobContext  # noqa: E402
from studio.face.model_file import load_face_model  # noqa: E402
from studio.train.attributes import find_attribute_model, load_attribute_regressor  # noqa: E402
from studio.train.config import TrainConfig  # noqa: E402
from studio.train.data import ImageFolder  # noqa: E402
from studio.train.look import look_mask, look_report, parse_look  # noqa: E402
from studio.train.metrics import real_images  # noqa: E402


def _drive(job, label: str):
    last = 0.0
    while True:
        try:
            ev = next(job)
        except StopIteration as stop:
            return stop.value
        now = time.monotonic()
        if now - last > 30:
            print(f"[{time.strftime('%H:%M:%S')}] {label}: {ev.message}", file=sys.stderr, flush=True)
            last = now


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="models/face/default.safetensors")
    p.add_argument("--look", default="hair_color=red,glasses=round|square")
    p.add_argument("--n-data", type=int, default=200, help="faces in the subset")
    p.add_argument("--kimg", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--n", type=int, default=500, help="generated faces per measurement")
    p.add_argument("--out", default="runs/look-experiment")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    import torch

    from studio.synthetic.dataset import synth_dataset_job

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    look = parse_look(a.look)
    base = load_face_model(a.model)
    reg_path = find_attribute_model(None)
    if reg_path is None:
        print("no attribute model: run studio train attributes first", file=sys.stderr)
        return 2
    reg = load_attribute_regressor(reg_path)
    look_mask(reg, np.zeros((1, 64, 64, 3), np.uint8), look)  # a misspelt look fails now
    overrides = {k: list(v) if len(v) > 1 else v[0] for k, v in look.items()}
    data = out / "data"
    _drive(synth_dataset_job(JobContext(), data, a.n_data, size=base.resolution, seed=7,
                             overrides=overrides, workers=0), "subset")
    real = real_images(ImageFolder(data, resolution=base.resolution), a.n_data)
    before = look_report(base.G, reg, look, real, n=a.n)
    print(f"before: {before}", file=sys.stderr, flush=True)

    from studio.train.loop import resume_config, train_face_job

    run_dir = out / "run"
    model_out = out / "finetuned.safetensors"
    if (run_dir / "config.json").exists():
        cfg = resume_config(run_dir)
    else:
        cfg = TrainConfig.from_preset(
            "few", data=str(data), base=str(a.model), output=str(model_out), kimg=a.kimg,
            batch=a.batch, run_dir=str(run_dir), name="look-experiment", threads=a.threads,
            fd_samples=0, preview_every=2000)
    t0 = time.monotonic()
    _drive(train_face_job(JobContext(), cfg), "fine-tune")
    minutes = (time.monotonic() - t0) / 60
    after = look_report(load_face_model(model_out).G, reg, look, real, n=a.n)
    result = {
        "model": str(a.model), "look": a.look, "subset": a.n_data, "kimg": a.kimg,
        "batch": a.batch, "minutes_this_call": round(minutes, 1),
        "regressor": str(reg_path), "before": before, "after": after,
        "share_gain": after["share"] - before["share"],
        "fd_ratio": after["fd"] / max(before["fd"], 1e-9),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from studio.core.errors import StudioError

    try:
        sys.exit(main())
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

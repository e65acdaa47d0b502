"""Fitting a parameter encoder to a frozen generator: runs, checkpoints, resumes."""

from __future__ import annotations

import json

from safetensors import safe_open

from studio.core.jobs import Job, JobState
from studio.core.paths import shipped_models_dir
from studio.train.checkpoint import load_checkpoint
from studio.train.encoder_fit import ENCODER_FORMAT, EncoderFitConfig, fit_encoder_job


def test_fit_checkpoints_and_resumes(tmp_path):
    cfg = EncoderFitConfig(model=str(shipped_models_dir() / "face" / "default.safetensors"),
                           run_dir=str(tmp_path / "run"), max_steps=2, batch=2, pool_min=8,
                           render_batch=8, val_faces=2, bf16=False)
    job = Job("fit", fit_encoder_job, cfg)
    job.run()
    assert job.state is JobState.DONE, job.details
    # the checkpoint reads back with weights_only (no numpy scalars in the optimiser state)
    assert load_checkpoint(cfg.run_dir)["state"]["step"] == 2
    cfg.max_steps = 3
    job = Job("fit", fit_encoder_job, cfg)
    job.run()
    assert job.state is JobState.DONE, job.details
    assert job.result["steps"] == 3
    with safe_open(job.result["encoder"], "pt") as f:
        meta = json.loads(f.metadata()["studio"])
        assert meta["format"] == ENCODER_FORMAT and meta["fit"]["steps"] == 3
        assert any(k.startswith("E.") for k in f.keys())  # noqa: SIM118 - not a dict

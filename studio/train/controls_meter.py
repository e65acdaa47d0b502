"""The control meter: an attribute regressor (:mod:`studio.train.attributes`) for what the
face controls move and the shipped attribute model does not read: mouth opening, pucker,
blink, brows, gaze, head pose, face width and hair colour channels, plus smile, age, skin
tone and glasses again so one network measures a whole sweep.

Trained on renders of :mod:`studio.synthetic` (exact labels), with the distillation's
parameter sampling at full pose spread, so the slider ranges of the controls are covered.
``studio controls evaluate`` reads generated faces with it (``models/metrics/controls.safetensors``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from studio.train.attributes import AttributeRegressor, AttributeTrainer, _loss, random_blur

METER_ATTRIBUTES = (
    "mouth_open", "pucker", "smile", "blink", "brow_raise", "gaze_x", "gaze_y", "head_yaw",
    "head_pitch", "head_roll", "face_width", "jaw_width", "skin_tone", "age", "hair_r",
    "hair_g", "hair_b", "glasses", "lip_fullness",
)
METER_FILE = "controls.safetensors"


class MeterTrainer(AttributeTrainer):
    """The attribute trainer without its random mirror: head yaw, roll and gaze x change
    sign in a mirror image, so a mirrored face with the same label teaches the meter to
    read |yaw| instead of yaw."""

    def step(self) -> float:
        n = min(self.batch, len(self.train))
        pick = torch.randint(len(self.train), (n,), generator=self.gen)
        idx = torch.from_numpy(self.train)[pick]
        x = self.x_all[idx] * torch.exp2(torch.randn(n, 1, 1, 1, generator=self.gen) * 0.1)
        x = random_blur(x, self.gen, self.blur)
        loss = _loss(self.specs, self.net(x), {k: v[idx] for k, v in self.t_all.items()})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.done < self.steps:
            self.sched.step()
        self.done += 1
        self.loss = float(loss.detach())
        return self.loss


def find_meter(explicit: str | Path | None = None) -> Path:
    """The meter file: ``explicit``, else the user's or the shipped ``metrics/controls``."""
    from studio.core.errors import StudioError

    if explicit:
        return Path(explicit)
    from studio.core.paths import shipped_models_dir, user_models_dir

    for folder in (user_models_dir() / "metrics", shipped_models_dir() / "metrics"):
        if (folder / METER_FILE).is_file():
            return folder / METER_FILE
    raise StudioError(f"no control meter ({METER_FILE}) in the models folders; train one "
                      "with `python -m studio.train.controls_meter OUT`")


def render_meter_data(n: int, size: int = 64, seed: int = 0, pose_scale: float = 0.7,
                      check: Callable[[], None] | None = None,
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n`` labelled renders (uint8 ``[n, size, size, 3]``) and their parameters."""
    from studio.synthetic.renderer import render_faces
    from studio.train.distill_parts import sample_training_params

    rng = np.random.default_rng(seed)
    imgs, labels = [], []
    for i in range(0, n, 64):
        if check is not None:
            check()
        p = sample_training_params(min(64, n - i), rng, pose_scale)
        imgs.append(render_faces(p, size))
        labels.append(p)
    names = labels[0].keys()
    return np.concatenate(imgs), {k: np.concatenate([np.asarray(p[k]) for p in labels])
                                  for k in names}


def train_meter(n: int = 6000, steps: int = 1500, seed: int = 0, width: int = 32,
                check: Callable[[], None] | None = None,
                log: Callable[[str], None] | None = None) -> tuple[AttributeRegressor, dict]:
    """Render ``n`` faces and train the meter on them (held-out tenth scored)."""
    images, labels = render_meter_data(n, 64, seed, check=check)
    trainer = MeterTrainer(images, labels, METER_ATTRIBUTES, steps=steps, batch=64,
                               width=width, seed=seed)
    for i in range(steps):
        if check is not None:
            check()
        loss = trainer.step()
        if log is not None and i % 100 == 0:
            log(f"meter step {i}: loss {loss:.3f}")
    reg, scores = trainer.result()
    reg.meta["trained_on"]["renders"] = int(n)
    return reg, scores


if __name__ == "__main__":  # python -m studio.train.controls_meter OUT [N] [STEPS]
    import json
    import sys
    import time

    import torch

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    t0 = time.time()
    reg, scores = train_meter(int(sys.argv[2]) if len(sys.argv) > 2 else 6000,
                              int(sys.argv[3]) if len(sys.argv) > 3 else 1500,
                              log=lambda s: print(s, flush=True))
    reg.save(out, minutes=round((time.time() - t0) / 60, 1))
    print(json.dumps(scores, indent=1))

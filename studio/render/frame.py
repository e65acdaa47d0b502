"""The project at time t as a frame request: the one place that says what a frame shows.

Timeline playback, ``studio render`` and the Face panel build their requests here or with
:func:`studio.face.request.avatar_request`, and render them with
:func:`studio.face.request.render_request`; nothing else decides how a frame is made.

Each playing track's value at t is added to the avatar's control of the same name (a
channel drives the control it names). Channels the face model has no control for change
nothing yet: the rig of the timeline issue will map lip-sync, blink and head channels onto
the model's controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.core.project import Project
from studio.face.request import FaceRequest, avatar_request
from studio.timeline.evaluate import evaluate, evaluate_many


def frame_request(project: Project, t: float, project_path: Path | None = None,
                  size: int | None = None) -> FaceRequest:
    """The request for the frame at ``t`` seconds."""
    return avatar_request(project, project_path, evaluate(project, t), size)


def frame_requests(project: Project, times: Sequence[float] | np.ndarray,
                   project_path: Path | None = None,
                   size: int | None = None) -> list[FaceRequest]:
    """Requests for many times at once (the curves are evaluated vectorised)."""
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    values = evaluate_many(project, times)
    return [avatar_request(project, project_path,
                           {ch: float(v[i]) for ch, v in values.items()}, size)
            for i in range(len(times))]

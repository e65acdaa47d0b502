"""The project at time t as a frame request: the one place that says what a frame shows.

Timeline playback, ``studio render`` and the Face panel build their requests here or with
:func:`studio.face.request.avatar_request`, and render them with
:func:`studio.face.request.render_request`; nothing else decides how a frame is made.

The playing tracks' values at t are *channels*; the rig (:mod:`studio.animate.rig`) turns
them into control values (lip-sync, blink and head channels onto the model's mouth, eye and
pose controls; expression tracks such as ``smile`` pass through to the control they name),
which are added to the avatar's own control values. Controls the face model lacks change
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.animate.rig import DEFAULT_RIG, Rig
from studio.core.project import Project
from studio.face.request import FaceRequest, avatar_request
from studio.timeline.evaluate import evaluate, evaluate_many


def project_rig(project: Project, model_rig: Rig | None = None) -> Rig:
    """The rig a project animates with: its own (``avatar.rig``), else the model's
    (``model_rig``), else :data:`~studio.animate.rig.DEFAULT_RIG`."""
    own = project.avatar.rig
    if own is not None:
        return Rig.from_json(own.model_dump(), "the project's rig")
    return model_rig if model_rig is not None else DEFAULT_RIG


def frame_request(project: Project, t: float, project_path: Path | None = None,
                  size: int | None = None, rig: Rig | None = None) -> FaceRequest:
    """The request for the frame at ``t`` seconds (``rig``: the model's; the project's own
    rig wins, see :func:`project_rig`)."""
    rig = project_rig(project, rig)
    return avatar_request(project, project_path, rig.controls(evaluate(project, t)), size)


def frame_requests(project: Project, times: Sequence[float] | np.ndarray,
                   project_path: Path | None = None,
                   size: int | None = None, rig: Rig | None = None) -> list[FaceRequest]:
    """Requests for many times at once (the curves are evaluated vectorised)."""
    rig = project_rig(project, rig)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    values = evaluate_many(project, times)
    return [avatar_request(project, project_path,
                           rig.controls({ch: float(v[i]) for ch, v in values.items()}), size)
            for i in range(len(times))]

"""`studio render` refines every frame when the project says so."""

import sys
from pathlib import Path

import numpy as np
import pytest
from refine_helpers import CPU32

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from render_fixtures import engine, project_dir, tiny_model  # noqa: E402, F401

from studio.core.jobs import Job, JobKind, JobState  # noqa: E402
from studio.core.project import load_project  # noqa: E402
from studio.face.request import render_request  # noqa: E402
from studio.refine.images import resize_image  # noqa: E402
from studio.render.frame import frame_request  # noqa: E402
from studio.render.job import RenderSpec, render_job  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("strength", [0.0, 0.5])
def test_render_refines_each_frame(engine, project_dir, tiny_pixel_refiner,  # noqa: F811
                                   strength):
    import shutil

    from PIL import Image

    path = project_dir / "project.dhproj"
    shutil.copytree(tiny_pixel_refiner, project_dir / "tiny-refiner")
    project = load_project(path)
    project.refiner.enabled = True
    project.refiner.model = "tiny-refiner"  # relative to the project
    project.refiner.strength = strength
    project.refiner.steps = 4
    spec = RenderSpec(project, path, png_dir=project_dir / "frames", range=(0.5, 0.8),
                      size=24, device=CPU32)
    job = Job("render", render_job, spec, engine, kind=JobKind.RENDER)
    job.run()
    assert job.state is JobState.DONE, (job.error, job.details)
    assert job.result.size == 48  # the tiny refiner is 2x
    pngs = sorted((project_dir / "frames").iterdir())
    got = np.asarray(Image.open(pngs[2]))
    raw = render_request(engine, frame_request(project, 0.7, size=24))
    want = resize_image(raw, (48, 48))
    assert got.shape == (48, 48, 3)
    assert np.array_equal(got, want) == (strength == 0.0)

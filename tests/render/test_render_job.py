"""The render job: MP4 streams of equal length with the right pixels and sound, PNG and
WAV outputs, batched frames equal to single ones, cancel leaves nothing behind."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
import soundfile as sf
from render_fixtures import RATE, engine, project_dir, tiny_model  # noqa: F401

from studio.core.jobs import Job, JobKind, JobState
from studio.core.project import load_project
from studio.face.request import render_request, render_requests
from studio.render.frame import frame_request, frame_requests
from studio.render.job import RenderSpec, render_job


def _spec(folder, **kw) -> RenderSpec:
    path = folder / "project.dhproj"
    return RenderSpec(load_project(path), path, **kw)


def _run(spec, engine) -> Job:  # noqa: F811
    job = Job("render", render_job, spec, engine, kind=JobKind.RENDER)
    job.run()
    assert job.state is JobState.DONE, (job.error, job.details)
    return job


def _decode(path):
    frames, audio, rate = [], [], None
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        for f in c.decode(audio=0):
            audio.append(f.to_ndarray().reshape(-1))
    return np.stack(frames), np.concatenate(audio), rate


def test_batched_requests_give_the_same_pixels_as_one_by_one(engine, project_dir):  # noqa: F811
    project = load_project(project_dir / "project.dhproj")
    times = np.arange(7) / 5.0
    reqs = frame_requests(project, times, size=40)
    many = render_requests(engine, reqs)
    assert many.shape == (7, 40, 40, 3)
    for i, t in enumerate(times):
        one = render_request(engine, frame_request(project, float(t), size=40))
        assert np.abs(many[i].astype(int) - one.astype(int)).max() <= 1
    assert not np.array_equal(many[0], many[-1])  # the smile moves the face


def test_mp4_has_equal_streams_the_frames_and_the_clip_in_sync(engine, project_dir):  # noqa: F811
    out = project_dir / "out.mp4"
    job = _run(_spec(project_dir, output=out), engine)
    assert job.result.frames == 16 and job.result.outputs == [out]
    frames, audio, rate = _decode(out)
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        v_dur, a_dur = float(v.duration * v.time_base), float(a.duration * a.time_base)
    assert v_dur == pytest.approx(1.6, abs=1e-6)
    assert abs(a_dur - v_dur) <= 1 / 10 + 1e-6  # within one frame
    assert len(frames) == 16 and frames.shape[1:] == (32, 32, 3)
    assert abs(len(audio) / rate - 1.6) <= 1 / 10
    project = load_project(project_dir / "project.dhproj")
    for i in (0, 8, 15):
        want = render_request(engine, frame_request(project, i / 10)).astype(float)
        assert np.abs(frames[i] - want).mean() < 12  # H.264 is lossy, but it is this frame
    # the 440 Hz clip plays from 0.4 s to 1.4 s and nowhere else
    def rms(t0, t1):
        return float(np.sqrt(np.mean(audio[int(t0 * rate):int(t1 * rate)] ** 2)))
    assert rms(0.0, 0.35) < 0.01 and rms(1.45, 1.6) < 0.01
    assert rms(0.5, 1.3) == pytest.approx(0.5 / np.sqrt(2), rel=0.15)


def test_png_sequence_is_lossless_and_wav_is_the_mix(engine, project_dir):  # noqa: F811
    from PIL import Image

    from studio.render.audio import mixdown

    spec = _spec(project_dir, png_dir=project_dir / "frames", wav=project_dir / "mix.wav",
                 range=(0.5, 1.0), size=24)
    _run(spec, engine)
    pngs = sorted((project_dir / "frames").iterdir())
    assert [p.name for p in pngs] == [f"frame_{i:06d}.png" for i in range(1, 6)]
    want = render_request(engine, frame_request(spec.project, 0.7, size=24))
    assert np.array_equal(np.asarray(Image.open(pngs[2])), want)
    data, rate = sf.read(project_dir / "mix.wav", dtype="float32")
    mix = mixdown(spec.project, spec.project_path, 0.5, 1.0)
    assert rate == mix.sample_rate == RATE and len(data) == len(mix.audio) == RATE // 2
    assert np.abs(data - mix.audio).max() < 1e-3


def test_cancel_leaves_no_partial_file_and_keeps_the_old_one(engine, project_dir):  # noqa: F811
    out = project_dir / "out.mp4"
    out.write_bytes(b"the previous render")
    spec = _spec(project_dir, output=out, png_dir=project_dir / "frames", batch=1,
                 fps=50)
    job = Job("render", render_job, spec, engine, kind=JobKind.RENDER)
    seen = threading.Event()

    def on_progress(p):
        if p.step:  # a frame was written: cancel half-way
            seen.set()
            job.cancel()
    job.add_callbacks(on_progress=on_progress)
    job.run()
    assert seen.is_set() and job.state is JobState.CANCELLED
    assert out.read_bytes() == b"the previous render"
    assert not (project_dir / "frames").exists()
    leftovers = [p.name for p in project_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_bad_outputs_and_ranges_are_refused(engine, project_dir):  # noqa: F811
    for kw, words in (({}, "nothing to write"),
                      ({"output": project_dir / "x.avi"}, ".mp4"),
                      ({"output": project_dir / "x.mp4", "range": (1.0, 0.5)}, "range"),
                      ({"output": project_dir / "x.mp4", "size": 33}, "even")):
        job = Job("render", render_job, _spec(project_dir, **kw), engine)
        job.run()
        assert job.state is JobState.FAILED and words in job.error
        assert not (project_dir / "x.mp4").exists()

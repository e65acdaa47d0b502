"""The mixdown: clips placed at their start, read from their offset, scaled by their gain;
a missing file is a warning naming it, and the rest still plays."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from render_fixtures import RATE, project_dir, tiny_model, tone  # noqa: F401

from studio.core.project import Clip, load_project, project_to_text
from studio.render.audio import missing_audio, mix_rate, mixdown
from studio.voice.audio_io import load_audio


def test_offset_gain_and_overlap_sample_exact(project_dir):  # noqa: F811
    sf.write(project_dir / "audio" / "b.wav", tone(2.0, 300.0), RATE, subtype="FLOAT")
    path = project_dir / "project.dhproj"
    p = load_project(path)
    p.timeline.duration = 3.0
    p.timeline.clips = [
        Clip(id="c1", kind="speech", start=0.4, duration=1.0, audio="audio/a.wav"),
        Clip(id="c2", kind="audio", start=1.0, duration=0.5, offset=0.75, gain=0.5,
             audio="audio/b.wav"),
    ]
    mix = mixdown(p, path)
    a = load_audio(project_dir / "audio" / "a.wav", normalize=False).audio
    b = load_audio(project_dir / "audio" / "b.wav", normalize=False).audio
    want = np.zeros(3 * RATE, np.float32)
    want[int(0.4 * RATE):int(1.4 * RATE)] += a
    want[RATE:int(1.5 * RATE)] += 0.5 * b[int(0.75 * RATE):int(1.25 * RATE)]
    assert mix.sample_rate == RATE and mix.warnings == []
    assert len(mix.audio) == len(want)
    np.testing.assert_allclose(mix.audio, want, atol=1e-6)
    # a window of the mix: the same samples
    part = mixdown(p, path, 1.2, 1.7)
    np.testing.assert_allclose(part.audio, want[int(1.2 * RATE):int(1.7 * RATE)], atol=1e-6)


def test_clips_at_different_rates_are_mixed_at_48k(project_dir):  # noqa: F811
    sf.write(project_dir / "audio" / "c.wav", tone(1.0, 440.0, 22050), 22050)
    path = project_dir / "project.dhproj"
    p = load_project(path)
    p.timeline.clips = [*p.timeline.clips,
                        Clip(id="c2", kind="audio", start=0.0, duration=0.3, audio="audio/c.wav")]
    assert mix_rate(p, path) == 48_000
    mix = mixdown(p, path)
    assert mix.sample_rate == 48_000 and len(mix.audio) == int(1.6 * 48_000)
    spectrum = np.abs(np.fft.rfft(mix.audio[int(0.5 * 48000):int(1.3 * 48000)]))
    freqs = np.fft.rfftfreq(int(0.8 * 48000), 1 / 48000)
    assert freqs[np.argmax(spectrum)] == pytest.approx(440, abs=3)


def test_a_missing_file_is_a_warning_and_the_rest_plays(project_dir):  # noqa: F811
    path = project_dir / "project.dhproj"
    p = load_project(path)
    p.timeline.clips = [*p.timeline.clips,
                        Clip(id="c9", kind="speech", start=0.0, duration=0.3,
                             audio="audio/gone.wav")]
    warnings = missing_audio(p, path)
    assert len(warnings) == 1 and "gone.wav" in warnings[0] and "not found" in warnings[0]
    mix = mixdown(p, path)
    assert len(mix.warnings) == 1 and "gone.wav" in mix.warnings[0]
    assert np.abs(mix.audio[int(0.5 * RATE):int(1.3 * RATE)]).max() > 0.4


def test_the_cli_renders_a_project_with_a_missing_file(project_dir, capsys):  # noqa: F811
    import av

    from studio.cli import main

    path = project_dir / "project.dhproj"
    p = load_project(path)
    p.timeline.clips = [*p.timeline.clips,
                        Clip(id="c9", kind="speech", start=0.0, duration=0.3,
                             audio="audio/gone.wav")]
    path.write_text(project_to_text(p))
    out = project_dir / "out.mp4"
    code = main(["render", str(path), "-o", str(out), "--size", "32", "--device", "cpu",
                 "--precision", "fp32"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning:" in err and "gone.wav" in err and "not found" in err
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 16 and c.streams.audio


def test_the_cli_refuses_bad_input_with_one_line(project_dir, capsys):  # noqa: F811
    from studio.cli import main

    path = project_dir / "project.dhproj"
    assert main(["render", str(path)]) == 2
    assert "-o OUT.mp4" in capsys.readouterr().err
    assert main(["render", str(path), "-o", str(project_dir / "o.mp4"), "--range", "2:1"]) == 2
    assert "range" in capsys.readouterr().err
    assert main(["render", str(project_dir / "nope.dhproj"), "-o", "o.mp4"]) == 2
    assert "nope.dhproj" in capsys.readouterr().err

"""``studio timeline add-speech``: the GUI's "Add to timeline" from the command line."""

from __future__ import annotations

import pytest
import soundfile as sf

import studio.cli as cli
from studio.core.document import Document
from studio.core.project import Project, VoiceSettings, load_project


@pytest.fixture
def studio_cli():
    return cli.main


def make_project(tmp_path, voice="espeak:en-us"):
    path = tmp_path / "proj" / "hero.dhproj"
    path.parent.mkdir()
    Document(Project(voice=VoiceSettings(voice=voice, engine="espeak"))).save(path)
    return path


def test_add_speech_writes_audio_clip_and_curves(tmp_path, studio_cli, capsys):
    path = make_project(tmp_path)
    assert studio_cli(["timeline", "add-speech", str(path), "Hello there. Bye!", "--at",
                       "0.5"]) == 0
    out = capsys.readouterr().out
    assert "added" in out and "hero.dhproj" in out
    p = load_project(path)
    (clip,) = p.timeline.clips
    assert (clip.id, clip.kind, clip.start, clip.text) == ("c1", "speech", 0.5, "Hello there. Bye!")
    assert clip.voice.voice == "espeak:en-us"
    audio, sr = sf.read(path.parent / clip.audio)
    assert clip.audio.startswith("audio/") and len(audio) / sr == pytest.approx(clip.duration,
                                                                                abs=1e-3)
    channels = {t.channel for t in p.timeline.tracks}
    assert {"mouth_open", "lips_closed", "smile", "lip_pucker", "blink", "head_yaw",
            "head_pitch", "head_roll", "viseme.PP"} <= channels
    mouth = next(t for t in p.timeline.tracks if t.channel == "mouth_open")
    assert mouth.keys[0].t >= 0.5 and mouth.keys[-1].t <= 0.5 + clip.duration + 1e-6
    # saved atomically with the last good file kept as a backup
    assert load_project(path.with_name(path.name + ".bak")).timeline.clips == []

    # a second clip goes after the first, with another voice
    assert studio_cli(["timeline", "add-speech", str(path), "Again.", "--voice",
                       "espeak:de"]) == 0
    p = load_project(path)
    assert [c.id for c in p.timeline.clips] == ["c1", "c2"]
    second = p.timeline.clips[1]
    assert second.start == pytest.approx(clip.start + clip.duration, abs=1e-6)
    assert second.voice.voice == "espeak:de" and p.voice.voice == "espeak:en-us"


def test_add_speech_errors_leave_the_project_alone(tmp_path, studio_cli, capsys):
    path = make_project(tmp_path)
    before = path.read_bytes()
    assert studio_cli(["timeline", "add-speech", str(path), "Hi.", "--voice", "nobody"]) == 2
    assert "unknown voice" in capsys.readouterr().err
    assert studio_cli(["timeline", "add-speech", str(path), "   "]) == 2
    assert studio_cli(["timeline", "add-speech", str(path), "Hi.", "--at", "-1"]) == 2
    assert path.read_bytes() == before
    assert studio_cli(["timeline", "add-speech", str(tmp_path / "nope.dhproj"), "Hi."]) == 2
    assert "not found" in capsys.readouterr().err

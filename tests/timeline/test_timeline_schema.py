"""Schema 2: a version 1 file opens with ids; one voice-settings schema for everything."""

from __future__ import annotations

import json

import pytest

from studio.core.document import Document
from studio.core.errors import FileFormatError, StudioError
from studio.core.project import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Project,
    VoiceSettings,
    load_project,
    project_from_text,
    project_to_text,
)
from studio.timeline import MoveKey, evaluate
from studio.voice import settings as voice_settings

V1_FILE = {
    "schema_version": 1,
    "name": "Old hero",
    "voice": {"engine": "piper", "voice": "default", "rate": 1.1, "pitch": 20.0,
              "formant": -9.0, "expressiveness": 2.5, "volume": 1.0, "sentence_pause": 0.3},
    "timeline": {
        "fps": 25, "duration": 4.0,
        "tracks": [
            {"channel": "mouth_open", "muted": False,
             "keys": [{"t": 1.0, "v": 1.0, "interp": "smooth"}, {"t": 0.0, "v": 0.0}]},
            {"channel": "blink", "muted": True, "keys": [{"t": 0.5, "v": 1.0}]},
            {"channel": "mouth_open", "muted": False,
             "keys": [{"t": 3.0, "v": 0.5, "interp": "linear"}]},
        ],
        "clips": [
            {"kind": "speech", "start": 0.0, "duration": 1.5, "text": "Hello",
             "audio": "audio/speech-1.wav",
             "voice": {"engine": "espeak", "voice": "espeak:en-us", "pitch": -3.0}},
            {"kind": "audio", "start": 1.5, "duration": 2.0, "audio": "audio/take.wav"},
        ],
    },
}


def test_a_version_1_file_gets_ids_and_keeps_its_meaning(tmp_path):
    path = tmp_path / "old.dhproj"
    path.write_text(json.dumps(V1_FILE), encoding="utf-8")
    p = load_project(path)
    assert SCHEMA_VERSION == 3 and p.schema_version == 3 and MIGRATIONS[1] and MIGRATIONS[2]
    tl = p.timeline
    assert [(t.id, t.channel, t.muted) for t in tl.tracks] == [
        ("t1", "mouth_open", False), ("t2", "blink", True)]
    # the repeated channel's keys joined the first track, sorted, numbered 1..n
    mouth = tl.track("t1")
    assert [(k.id, k.t, k.v, k.interp) for k in mouth.keys] == [
        (1, 0.0, 0.0, "smooth"), (2, 1.0, 1.0, "smooth"), (3, 3.0, 0.5, "linear")]
    assert [(c.id, c.kind, c.offset) for c in tl.clips] == [("c1", "speech", 0.0),
                                                             ("c2", "audio", 0.0)]
    # voice values the engines never took are what version 1 actually spoke (clamped)
    v = p.voice
    assert (v.rate, v.pitch, v.formant, v.expressiveness, v.sentence_pause) == (
        1.1, 12.0, -6.0, 2.0, 0.3)
    clip_voice = tl.clips[0].voice
    assert clip_voice.pitch == -3.0 and clip_voice.sentence_pause == 0.3  # v1's default
    assert evaluate(p, 0.5) == {"mouth_open": pytest.approx(0.5, abs=0.2)}  # blink muted

    # saved again it is a version 3 file that reads back the same
    text = project_to_text(p)
    assert json.loads(text)["schema_version"] == 3
    assert project_from_text(text) == p
    doc = Document.open(path)
    doc.push(MoveKey("t1", 3, v=0.25))
    assert [k.v for k in doc.project.timeline.track("t1").keys] == [0.0, 1.0, 0.25]


def test_version_2_files_are_checked():
    good = project_to_text(Project())
    data = json.loads(good)
    data["timeline"]["tracks"] = [{"id": "a", "channel": "x", "keys": []},
                                  {"id": "a", "channel": "y", "keys": []}]
    with pytest.raises(FileFormatError, match="two tracks have the id"):
        project_from_text(json.dumps(data))
    data["timeline"]["tracks"] = [{"id": "a", "channel": "x", "keys": []},
                                  {"id": "b", "channel": "x", "keys": []}]
    with pytest.raises(FileFormatError, match="channel"):
        project_from_text(json.dumps(data))
    data["timeline"]["tracks"] = [{"id": "a b/c", "channel": "x", "keys": []}]
    with pytest.raises(FileFormatError, match="id"):
        project_from_text(json.dumps(data))
    data["timeline"]["tracks"] = []
    data["voice"]["pitch"] = 20.0  # version 2 refuses what the engines do not take
    with pytest.raises(FileFormatError, match=r"voice setting pitch=20.0 is out of range"):
        project_from_text(json.dumps(data))


def test_one_voice_schema_for_project_engine_and_cli():
    import studio.voice

    assert voice_settings.VoiceSettings is VoiceSettings is studio.voice.VoiceSettings
    assert Project().voice == VoiceSettings()  # a new project speaks the defaults
    assert voice_settings.LIMITS["pitch"][:2] == (-12.0, 12.0)
    assert voice_settings.LIMITS["sentence_pause"][:2] == (0.0, 5.0)
    assert VoiceSettings().sentence_pause == 0.0
    with pytest.raises(StudioError, match=r"pitch=13 is out of range -12\.\.12"):
        VoiceSettings(pitch=13)  # refused, never clamped
    doc = Document()
    with pytest.raises(StudioError, match="voice.formant"):
        doc.set(("voice", "formant"), 7.0)
    assert doc.project.voice.formant == 0.0


def test_cli_speak_defaults_are_the_schema_defaults():
    from studio.cli import build_parser

    args = build_parser().parse_args(["speak", "x", "-o", "x.wav"])
    defaults = VoiceSettings()
    for name in ("rate", "pitch", "formant", "expressiveness", "volume", "sentence_pause",
                 "speaker"):
        assert getattr(args, name) == getattr(defaults, name), name

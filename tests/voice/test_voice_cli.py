"""The voice commands, run through the real ``studio`` entry point (in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from studio.animate.curves import evaluate_curve, validate_track
from studio.cli import main
from studio.voice.ipa import split_ipa
from studio.voice.types import load_timings

HELLO = "Hello, I am your digital human."


@pytest.mark.parametrize("voice", [None, "espeak:en-us"])
def test_speak_writes_audio_timings_and_curves(tmp_path, voice, capsys):
    wav, timings, curves = tmp_path / "a.wav", tmp_path / "t.json", tmp_path / "c.json"
    args = ["speak", HELLO, "-o", str(wav), "--timings", str(timings), "--curves", str(curves)]
    if voice:
        args += ["--voice", voice]
    assert main(args) == 0
    audio, sr = sf.read(wav)
    assert sr == 22050 and 1.0 < len(audio) / sr < 4.0
    t = load_timings(timings)
    assert t.phonemes[0].start == 0 and t.phonemes[-1].end == pytest.approx(len(audio) / sr,
                                                                           abs=1e-5)
    assert [w.word for w in t.words] == ["Hello", "I", "am", "your", "digital", "human"]
    spoken = [p.phoneme for p in t.phonemes if p.phoneme != "_"]
    assert spoken[:4] == split_ipa("həlˈoʊ")
    doc = json.loads(curves.read_text(encoding="utf-8"))
    channels = {tr["channel"] for tr in doc["tracks"]}
    assert {"mouth_open", "lips_closed", "smile", "lip_pucker", "blink", "head_yaw"} <= channels
    assert all(not validate_track(tr) for tr in doc["tracks"])
    mouth = next(tr for tr in doc["tracks"] if tr["channel"] == "mouth_open")
    vowel = next(p for p in t.phonemes if p.phoneme == "oʊ")
    assert evaluate_curve(mouth["keys"], (vowel.start + vowel.end) / 2 - 0.03)[0] > 0.3
    assert "a.wav" in capsys.readouterr().out


def test_speak_settings_and_errors(tmp_path, capsys):
    wav = tmp_path / "b.wav"
    assert main(["speak", "Testing [pause 300ms] one two.", "-o", str(wav), "--voice",
                 "espeak:de", "--rate", "1.3", "--pitch", "-2", "--no-blinks"]) == 0
    assert main(["speak", "x", "-o", str(wav), "--pitch", "40"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["speak", "hello", "-o", str(tmp_path / "x.mp4")]) == 2
    assert main(["speak", "hello", "-o", str(wav), "--voice", "nobody"]) == 2
    assert "unknown voice" in capsys.readouterr().err


def test_voices_command(capsys):
    assert main(["voices", "--json"]) == 0
    voices = json.loads(capsys.readouterr().out)
    assert voices[0]["id"] == "joe" and voices[0]["license"] == "CC0"
    assert any(v["id"] == "espeak:fr-fr" for v in voices)
    assert main(["voices", "--no-espeak"]) == 0
    assert "joe" in capsys.readouterr().out


def test_align_and_lipsync_commands(tmp_path, capsys):
    wav, timings = tmp_path / "a.wav", tmp_path / "t.json"
    assert main(["speak", HELLO, "-o", str(wav), "--timings", str(timings)]) == 0
    aligned, curves = tmp_path / "aligned.json", tmp_path / "c.json"
    assert main(["align", str(wav), "--text", HELLO, "--timings", str(aligned),
                 "--curves", str(curves)]) == 0
    got, truth = load_timings(aligned), load_timings(timings)
    err = np.mean([abs(a.start - b.start) + abs(a.end - b.end)
                   for a, b in zip(got.words, truth.words, strict=True)]) / 2
    assert err < 0.05
    assert any(p.phoneme == "AY" for p in got.phonemes)
    out = tmp_path / "lip.json"
    assert main(["lipsync", str(timings), "-o", str(out), "--audio", str(wav), "--no-head"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["format"] == "studio.curves" and doc["duration"] > 1
    assert not any(tr["channel"].startswith("head_") for tr in doc["tracks"])
    # no transcript: an audio-driven mouth
    mouth_only = tmp_path / "m.json"
    assert main(["align", str(wav), "--curves", str(mouth_only)]) == 0
    assert main(["align", str(wav), "--timings", str(tmp_path / "x.json")]) == 2
    assert "transcript" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{nope", encoding="utf-8")
    assert main(["lipsync", str(broken), "-o", str(out)]) == 2
    assert "broken.json" in capsys.readouterr().err
    notaudio = tmp_path / "notaudio.wav"
    notaudio.write_text("hello", encoding="utf-8")
    assert main(["align", str(notaudio), "--text", "hi", "--timings", str(aligned)]) == 2
    assert "notaudio.wav" in capsys.readouterr().err

"""The voice commands on bad input and failing disks: exit 2 and one line on stderr that
names the file and the problem; no traceback, no output written, the inputs unchanged."""

from __future__ import annotations

import errno
import io
import json
import os

import pytest

from studio.cli import main

TIMINGS = {"phonemes": [{"phoneme": "h", "start": 0.0, "end": 0.1},
                        {"phoneme": "aɪ", "start": 0.1, "end": 0.4}],
           "words": [{"word": "hi", "start": 0.0, "end": 0.4}]}


def _error_line(capsys) -> str:
    """The one error line on stderr (progress bar lines aside)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines()
             if line.strip() and not line.startswith(("speak [", "align ["))]
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def timings(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(TIMINGS), encoding="utf-8")
    return path


@pytest.mark.parametrize("seed", ["-1", str(2**32), str(-(2**70))])
def test_seed_out_of_range(tmp_path, timings, capsys, seed):
    out = tmp_path / "c.json"
    assert main(["lipsync", str(timings), "-o", str(out), "--seed", seed]) == 2
    assert "--seed" in _error_line(capsys)
    assert main(["speak", "hi", "-o", str(tmp_path / "a.wav"), "--voice", "espeak:en-us",
                 "--curves", str(out), f"--seed={seed}"]) == 2
    assert "--seed" in _error_line(capsys)
    assert not out.exists() and not (tmp_path / "a.wav").exists()
    assert main(["lipsync", str(timings), "-o", str(out), "--seed", str(2**32 - 1)]) == 0


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[" * 50_000, "nested too deeply"),
        ('{"phonemes": [{"phoneme": "a", "start": 0, "end": 1e12}]}', "at most 10800 s"),
        ('{"phonemes": [{"phoneme": "a", "start": 0, "end": 1%s}]}' % ("0" * 400),
         "too large"),
        ('{"phonemes": [{"phoneme": "a", "start": 0, "end": 1%s}]}' % ("0" * 5000),
         "too many digits"),
    ],
)
def test_lipsync_of_hostile_timings(tmp_path, capsys, text, problem):
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    out = tmp_path / "c.json"
    assert main(["lipsync", str(bad), "-o", str(out)]) == 2
    line = _error_line(capsys)
    assert "bad.json" in line and problem in line
    assert not out.exists()
    assert bad.read_text(encoding="utf-8") == text


def test_lipsync_of_a_device_or_a_fifo(tmp_path, capsys):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for source in ("/dev/zero", str(fifo)):
        assert main(["lipsync", source, "-o", str(tmp_path / "c.json")]) == 2
        line = _error_line(capsys)
        assert source in line and "not a regular file" in line


def test_speak_text_file_that_is_a_device_a_fifo_or_too_long(tmp_path, capsys, monkeypatch):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    out = tmp_path / "a.wav"
    for source in ("/dev/zero", str(fifo)):
        assert main(["speak", "--text-file", source, "-o", str(out)]) == 2
        line = _error_line(capsys)
        assert source in line and "not a regular file" in line
    monkeypatch.setattr("sys.stdin", io.StringIO("a" * 100_001))
    assert main(["speak", "-", "-o", str(out)]) == 2
    assert "standard input" in _error_line(capsys)
    long_text = tmp_path / "long.txt"
    long_text.write_text("a " * 60_000, encoding="utf-8")
    assert main(["speak", "--text-file", str(long_text), "-o", str(out)]) == 2
    assert "too long" in _error_line(capsys)
    assert main(["speak", "[pause 30s] a " * 1000, "-o", str(out)]) == 2
    assert "add up to more than 600 s" in _error_line(capsys)
    assert not out.exists()


def test_an_output_that_is_an_input_is_refused(tmp_path, timings, capsys):
    before = timings.read_bytes()
    assert main(["lipsync", str(timings), "-o", str(timings)]) == 2
    assert "overwritten" in _error_line(capsys)
    assert timings.read_bytes() == before
    text = tmp_path / "text.txt"
    text.write_text("hello", encoding="utf-8")
    assert main(["speak", "--text-file", str(text), "-o", str(tmp_path / "a.wav"),
                 "--timings", str(text)]) == 2
    assert "overwritten" in _error_line(capsys)
    assert text.read_text(encoding="utf-8") == "hello"


def test_unwritable_outputs_name_the_file(tmp_path, timings, capsys, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    out = blocker / "c.json"  # its folder is a file: the write fails with ENOTDIR/EEXIST
    assert main(["lipsync", str(timings), "-o", str(out)]) == 2
    line = _error_line(capsys)
    assert str(out) in line and "not a folder" in line
    wav = blocker / "a.wav"
    assert main(["speak", "hi", "--voice", "espeak:en-us", "-o", str(wav)]) == 2
    line = _error_line(capsys)
    assert str(wav) in line and "not a folder" in line
    assert main(["speak", "hi", "--voice", "espeak:en-us", "-o", str(tmp_path / "a.wav"),
                 "--timings", str(tmp_path)]) == 2
    assert "is a folder" in _error_line(capsys)
    # a write that fails anyway (here: the folder turns into a file after the checks)
    from studio.cli import voice_cmds

    monkeypatch.setattr(voice_cmds, "_check_writable", lambda out: None)
    assert main(["lipsync", str(timings), "-o", str(out)]) == 2
    line = _error_line(capsys)
    assert str(out) in line and "cannot write this file" in line


def test_a_full_disk_names_the_output(tmp_path, timings, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    import studio.core.atomic
    import studio.voice.audio_io

    monkeypatch.setattr(studio.core.atomic, "atomic_write", full)
    out = tmp_path / "c.json"
    assert main(["lipsync", str(timings), "-o", str(out)]) == 2
    line = _error_line(capsys)
    assert str(out) in line and "No space left on device" in line
    monkeypatch.setattr(studio.voice.audio_io, "atomic_write", full)
    wav = tmp_path / "a.wav"
    assert main(["speak", "hi", "--voice", "espeak:en-us", "-o", str(wav)]) == 2
    line = _error_line(capsys)
    assert str(wav) in line and "No space left on device" in line
    assert not wav.exists() and not out.exists()


def test_align_refuses_bad_text_files_and_overwriting_its_audio(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "rec.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000)
    before = wav.read_bytes()
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    for source in ("/dev/zero", str(fifo)):
        assert main(["align", str(wav), "--text-file", source, "--timings",
                     str(tmp_path / "t.json")]) == 2
        line = _error_line(capsys)
        assert source in line and "not a regular file" in line
    assert main(["align", str(wav), "--text", "hello", "--timings", str(wav)]) == 2
    assert "overwritten" in _error_line(capsys)
    assert main(["align", str(wav), "--text", "hello", "--timings", str(tmp_path / "t.json"),
                 "--curves", str(tmp_path / "t.json")]) == 2
    assert "two outputs" in _error_line(capsys)
    assert main(["align", str(fifo), "--text", "hello", "--timings",
                 str(tmp_path / "t.json")]) == 2
    assert "not a regular file" in _error_line(capsys)
    assert wav.read_bytes() == before and not (tmp_path / "t.json").exists()

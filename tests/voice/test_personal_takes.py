"""Importing a folder of takes for a personal voice: pairs, resampling and per-take checks."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.voice.audio_io import save_audio
from studio.voice.resample import resample
from studio.voice.takes import find_pairs, import_takes
from studio.voice.test_user import transform


@pytest.fixture(scope="module")
def take_folder(tmp_path_factory, joe_speech, hello_text):
    folder = tmp_path_factory.mktemp("takes")
    sr = joe_speech.sample_rate
    user = transform(joe_speech.audio, sr)
    save_audio(folder / "good.wav", resample(user, sr, 16000), 16000)  # resampled on import
    (folder / "good.txt").write_text(hello_text, encoding="utf-8")
    save_audio(folder / "clipped.wav", np.clip(user * 4.0, -1, 1), sr)
    (folder / "clipped.txt").write_text(hello_text, encoding="utf-8")
    save_audio(folder / "quiet.wav", user * 0.01, sr)
    (folder / "quiet.txt").write_text(hello_text, encoding="utf-8")
    save_audio(folder / "silent.wav", np.zeros(sr), sr)
    (folder / "silent.txt").write_text(hello_text, encoding="utf-8")
    save_audio(folder / "hum.wav", 0.01 * np.random.default_rng(0).normal(size=2 * sr), sr)
    (folder / "hum.txt").write_text(hello_text, encoding="utf-8")
    save_audio(folder / "wrong.wav", user, sr)
    (folder / "wrong.txt").write_text("Seven purple kites drifted above the harbour.",
                                      encoding="utf-8")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    (folder / "corrupt.txt").write_text(hello_text, encoding="utf-8")
    save_audio(folder / "lonely.wav", user, sr)  # no transcript
    (folder / "orphan.txt").write_text(hello_text, encoding="utf-8")  # no audio
    return folder, sr


def test_import_keeps_good_takes_and_names_every_problem(take_folder, joe_speech):
    folder, sr = take_folder
    result = import_takes(folder, sr)
    assert [t.audio_path.name for t in result.takes] == ["good.wav"]
    take = result.takes[0]
    assert take.sample_rate == sr
    duration = len(take.audio) / sr
    assert abs(duration - joe_speech.duration) < 0.01  # 16 kHz file back at the voice's rate
    assert take.audio.dtype == np.float32
    why = {p.name: reason for p, reason in result.rejected}
    assert "clipped" in why["clipped.wav"]
    assert "too quiet" in why["quiet.wav"]
    assert "silence only" in why["silent.wav"]
    assert "silence only" in why["hum.wav"]
    assert "does not match" in why["wrong.wav"]
    assert "not a readable audio file" in why["corrupt.wav"]
    assert "lonely.txt is missing" in why["lonely.wav"]
    assert "orphan.wav is missing" in why["orphan.txt"]
    assert "good.wav" not in why


def test_folder_without_pairs_is_a_clear_error(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(StudioError, match="no recordings with transcripts"):
        find_pairs(tmp_path)
    with pytest.raises(StudioError, match="does not exist"):
        find_pairs(tmp_path / "missing")

"""Reading recordings: formats, channels, rates; clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from studio.core.errors import FileFormatError
from studio.voice.analysis import median_f0
from studio.voice.audio_io import load_audio, save_audio


def tone(sr, seconds=0.5, freq=220.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize(
    "ext, fmt, subtype",
    [(".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_24"), (".ogg", "OGG", "VORBIS"),
     (".mp3", "MP3", "MPEG_LAYER_III")],
)
def test_formats_channels_and_rates(tmp_path, ext, fmt, subtype):
    path = tmp_path / f"voice{ext}"
    sf.write(path, tone(44100, channels=2), 44100, format=fmt, subtype=subtype)
    clip = load_audio(path)
    assert clip.source_rate == 44100 and clip.channels == 2
    assert clip.audio.ndim == 1 and clip.audio.dtype == np.float32
    assert np.max(np.abs(clip.audio)) == pytest.approx(10 ** (-1 / 20), rel=1e-3)
    assert clip.duration == pytest.approx(0.5, abs=0.06)  # mp3 adds codec delay
    resampled = load_audio(path, sample_rate=16000)
    assert resampled.sample_rate == 16000
    assert median_f0(resampled.audio, 16000) == pytest.approx(220, rel=0.01)


def test_save_audio_round_trip(tmp_path):
    out = save_audio(tmp_path / "o.wav", tone(22050).astype(np.float32), 22050)
    data, sr = sf.read(out)
    assert sr == 22050 and len(data) == 11025
    with pytest.raises(FileFormatError, match="can only write"):
        save_audio(tmp_path / "o.mp4", np.zeros(10), 8000)


def test_bad_files_are_named(tmp_path):
    cases = {
        "missing.wav": None,
        "empty.wav": b"",
        "text.mp3": b"this is not audio at all " * 40,
        "truncated.wav": b"RIFF\x24\x08\x00\x00WAVEfmt ",
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(FileFormatError) as err:
            load_audio(path)
        assert name in str(err.value)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000), 8000)
    with pytest.raises(FileFormatError, match="silent") as err:
        load_audio(silent)
    assert "silent.wav" in str(err.value)
    with pytest.raises(FileFormatError, match="folder"):
        load_audio(tmp_path)

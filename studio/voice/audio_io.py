"""Reading recorded speech and writing audio files.

Recordings (WAV, FLAC, OGG/Vorbis, MP3, AIFF ...) are read with soundfile (libsndfile
≥ 1.1 reads MP3); anything it cannot read is tried with PyAV (ffmpeg) when installed.
They come back as float32 mono at their own rate or resampled, with DC removed and peak
normalised. Files that are missing, unsupported, corrupt, empty or silent raise
:class:`~studio.core.errors.FileFormatError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.atomic import atomic_write
from studio.core.errors import FileFormatError
from studio.voice.resample import resample
from studio.voice.types import MAX_SPEECH_SECONDS

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".opus", ".m4a")
SILENCE_PEAK = 10 ** (-60 / 20)  # a file whose peak is below -60 dBFS counts as silent
TARGET_PEAK = 10 ** (-1 / 20)
MAX_AUDIO_SECONDS = MAX_SPEECH_SECONDS


@dataclass
class AudioClip:
    audio: np.ndarray  # float32 mono
    sample_rate: int
    source_rate: int
    channels: int
    path: Path | None = None

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    return data, int(sr)


def _read_av(path: Path) -> tuple[np.ndarray, int] | None:
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                return None
            stream = streams[0]
            blocks = []
            rate = stream.rate or stream.codec_context.sample_rate
            samples = 0
            for frame in container.decode(stream):
                samples += frame.samples
                if rate and samples > MAX_AUDIO_SECONDS * rate:
                    raise FileFormatError(
                        f"the recording is longer than {MAX_AUDIO_SECONDS:.0f} s "
                        f"({MAX_AUDIO_SECONDS / 3600:g} h), the most that can be used", path)
                arr = frame.to_ndarray()
                if arr.dtype.kind == "i":
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
                elif arr.dtype.kind == "u":
                    arr = (arr.astype(np.float32) - 128.0) / 128.0
                channels = len(frame.layout.channels)
                if frame.format.is_planar:
                    arr = arr.reshape(channels, -1).T
                else:
                    arr = arr.reshape(-1, channels)
                blocks.append(arr.astype(np.float32))
        if not blocks or not rate:
            return None
        return np.concatenate(blocks, axis=0), int(rate)
    except (av.error.FFmpegError, ValueError, OSError, IndexError):
        return None


def _check_length(path: Path) -> None:
    """Refuse a recording longer than :data:`MAX_AUDIO_SECONDS` before decoding it (as
    float32 mono, 3 hours at 48 kHz are 2 GB)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        seconds = info.frames / info.samplerate if info.samplerate else 0.0
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return  # not for soundfile: PyAV may read it (and the size check still applies)
    if seconds > MAX_AUDIO_SECONDS:
        raise FileFormatError(
            f"the recording is {seconds:.0f} s long; at most {MAX_AUDIO_SECONDS:.0f} s "
            f"({MAX_AUDIO_SECONDS / 3600:g} h) can be used", path)


def load_audio(
    path: str | Path, sample_rate: int | None = None, normalize: bool = True
) -> AudioClip:
    """Read a recording as float32 mono (resampled to ``sample_rate`` if given)."""
    from studio.core.errors import StudioError
    from studio.core.files import check_regular_file

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileFormatError("audio file not found", path)
    try:  # a regular file: a FIFO or /dev/zero would be read forever
        size = check_regular_file(path, what="audio file")
    except FileFormatError:
        raise
    except StudioError as exc:
        raise FileFormatError(exc.reason, path) from None
    if size == 0:
        raise FileFormatError("the audio file is empty", path)
    _check_length(path)
    decoded = _read_soundfile(path) or _read_av(path)
    if decoded is None:
        raise FileFormatError(
            "not a readable audio file (unsupported format or corrupt); "
            "use WAV, FLAC, OGG or MP3",
            path,
        )
    data, sr = decoded
    del decoded  # (the copies below are let go as soon as they are used: long recordings)
    if data.ndim != 2 or data.shape[0] == 0:
        raise FileFormatError("the audio file holds no samples", path)
    if not np.all(np.isfinite(data)):
        raise FileFormatError("the audio holds invalid (NaN or infinite) samples", path)
    channels = data.shape[1]
    mono = data.mean(axis=1, dtype=np.float64)
    del data
    mono -= mono.mean()
    peak = float(max(mono.max(), -mono.min()))  # max |mono| without a copy
    if peak < SILENCE_PEAK:
        raise FileFormatError("the recording is silent (nothing above -60 dBFS)", path)
    if normalize:
        mono *= TARGET_PEAK / peak
    audio = mono.astype(np.float32)
    del mono
    out_rate = sr
    if sample_rate is not None and sample_rate != sr:
        audio = resample(audio, sr, sample_rate)
        out_rate = sample_rate
    return AudioClip(audio, out_rate, sr, channels, path)


def save_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write audio (WAV 16-bit, or FLAC/OGG by extension) atomically."""
    import soundfile as sf

    path = Path(path)
    ext = path.suffix.lower()
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(ext)
    if fmt is None:
        raise FileFormatError("can only write .wav, .flac or .ogg audio", path)
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    # encoded straight into the temp file: no in-memory copy of the whole file
    atomic_write(path, lambda f: sf.write(f, data, int(sample_rate), format=fmt,
                                          subtype=subtype))
    return path

"""Writing rendered frames and the mix: MP4 (H.264 + AAC, PyAV), a PNG sequence, a WAV.

Every writer works on a temp name in the output's own folder and renames it into place in
:meth:`finish` (fsynced first), so the final name only ever holds a complete file; a
cancelled or failed render calls :meth:`abort`, which removes the temp file. The MP4's
audio is interleaved with the video as frames arrive (the muxer never holds the whole
video in memory), and both streams cover exactly the frames' time span.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from studio.core.atomic import _fsync_dir, atomic_write_bytes
from studio.core.errors import StudioError

AAC_FRAME = 1024  # samples per AAC frame


def _temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A fresh temp name in ``path``'s folder in the atomic-write pattern
    (``.<name>.XXXXXXXX.tmp``), so stale ones are recognised and tidied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class Mp4Writer:
    """H.264 video (yuv420p) and AAC mono audio in an MP4. ``audio`` (float32 mono at
    ``sample_rate``) is the whole mix for the frames to come; None writes video only."""

    def __init__(self, path: Path, size: tuple[int, int], fps: int,
                 audio: np.ndarray | None, sample_rate: int = 48_000,
                 crf: int = 18, preset: str = "veryfast") -> None:
        import av

        width, height = size
        if width % 2 or height % 2:
            raise StudioError(f"H.264 needs an even frame size, not {width}x{height}; "
                              "choose an even --size", path)
        self.path = Path(path)
        self.fps = int(fps)
        self.rate = int(sample_rate)
        self.audio = None if audio is None else np.asarray(audio, np.float32).reshape(-1)
        self._tmp = _temp_beside(self.path)
        self._audio_done = 0
        self.frames = 0
        try:
            self._c = av.open(str(self._tmp), "w", format="mp4")
            v = self._c.add_stream("libx264", rate=self.fps)
            v.width, v.height, v.pix_fmt = width, height, "yuv420p"
            v.time_base = Fraction(1, self.fps)
            v.options = {"crf": str(crf), "preset": preset}
            self._v = v
            self._a = None
            if self.audio is not None:
                a = self._c.add_stream("aac", rate=self.rate, layout="mono")
                a.time_base = Fraction(1, self.rate)
                a.options = {"aac_coder": "fast"}  # twice as fast as "twoloop", fine for speech
                self._a = a
        except Exception:
            self.abort()
            raise

    def _write_audio_until(self, sample: int) -> None:
        if self._a is None or self.audio is None:
            return
        import av

        # whole AAC frames up to ``sample`` (the encoder wants frame_size samples)
        stop = min(sample, len(self.audio))
        while self._audio_done + AAC_FRAME <= stop or (
                stop == len(self.audio) and self._audio_done < stop):
            end = min(self._audio_done + AAC_FRAME, stop)
            chunk = self.audio[self._audio_done:end]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[None, :]),
                                               format="fltp", layout="mono")
            frame.sample_rate = self.rate
            frame.pts = self._audio_done
            frame.time_base = Fraction(1, self.rate)
            for packet in self._a.encode(frame):
                self._c.mux(packet)
            self._audio_done = end

    def write(self, frames: np.ndarray) -> None:
        """``N x H x W x 3`` uint8 frames, in order."""
        import av

        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = self.frames
            for packet in self._v.encode(frame):
                self._c.mux(packet)
            self.frames += 1
            self._write_audio_until(int(round(self.frames * self.rate / self.fps)))

    def finish(self) -> Path:
        """Flush the encoders and move the file to its name."""
        try:
            self._write_audio_until(len(self.audio) if self.audio is not None else 0)
            for packet in self._v.encode(None):
                self._c.mux(packet)
            if self._a is not None:
                for packet in self._a.encode(None):
                    self._c.mux(packet)
            self._c.close()
            _fsync_file(self._tmp)
            os.replace(self._tmp, self.path)
            _fsync_dir(self.path.parent)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._c.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


class PngSequenceWriter:
    """``frame_000001.png``... in a folder. Frames go to a temp folder beside it; at the
    end the temp folder becomes the folder (or, when the folder exists, each file is moved
    into it)."""

    def __init__(self, folder: Path, first_number: int = 1) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise StudioError("exists and is not a folder", self.folder)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.", suffix=".tmp",
                                          dir=self.folder.parent))
        self.number = first_number
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        from PIL import Image

        for img in frames:
            Image.fromarray(np.ascontiguousarray(img), "RGB").save(
                self._tmp / f"frame_{self.number:06d}.png", compress_level=1)
            self.number += 1
            self.frames += 1

    def finish(self) -> Path:
        try:
            if not self.folder.exists():
                os.replace(self._tmp, self.folder)
            else:
                for f in sorted(self._tmp.iterdir()):
                    os.replace(f, self.folder / f.name)
                self._tmp.rmdir()
            _fsync_dir(self.folder.parent)
        except BaseException:
            self.abort()
            raise
        return self.folder

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


class BackgroundWriter:
    """Feeds frames to writers on a thread of its own, so encoding overlaps with rendering
    the next batch (at most ``depth`` batches wait). An error in a writer comes back from
    the next :meth:`write` or from :meth:`finish`."""

    def __init__(self, writers: list, depth: int = 2) -> None:
        import queue
        import threading

        self.writers = list(writers)
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="render-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frames = self._q.get()
            if frames is None:
                return
            if self._error is not None or self._stop:
                continue
            try:
                for w in self.writers:
                    w.write(frames)
            except BaseException as exc:  # noqa: BLE001 - handed to the render's thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frames: np.ndarray) -> None:
        self._raise()
        self._q.put(frames)

    def _join(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()

    def finish(self) -> list[Path]:
        try:
            self._join()
            self._raise()
            done = []
            while self.writers:
                done.append(self.writers[0].finish())
                self.writers.pop(0)
            return done
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._stop = True  # the batches still queued are dropped
        self._join()
        for w in self.writers:
            w.abort()
        self.writers.clear()


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM WAV, written atomically."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(audio, np.float32), -1.0, 1.0), int(sample_rate),
             format="WAV", subtype="PCM_16")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


__all__ = ["BackgroundWriter", "Mp4Writer", "PngSequenceWriter", "write_wav"]

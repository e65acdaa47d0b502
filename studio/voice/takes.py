"""Recordings for a personal voice: importing a folder of WAV + TXT pairs and checking takes.

A data folder holds ``NAME.wav`` (or .flac/.ogg/.mp3) with ``NAME.txt`` beside it (the
transcript, UTF-8). Each take is checked: clipped, too quiet, silence only, and whether
its transcript matches what is said (PocketSphinx recognises the take; a word error rate
above :data:`MISMATCH_WER` means the text is not what was said). A take with a problem is
skipped with a message naming the file; the others are kept. Audio is resampled to the
base voice's rate.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.errors import FileFormatError, StudioError
from studio.core.jobs import JobContext, Progress
from studio.voice.analysis import frame_rms_db

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
QUIET_PEAK_DB = -30.0  # a take whose loudest sample is below this is too quiet
MIN_SPEECH_S = 0.3  # less sound above the noise floor than this: silence only
CLIP_RUNS = 3  # this many runs of 3+ identical samples at the peak: clipped
MISMATCH_WER = 0.9  # PocketSphinx misses up to ~90% of the words of some good takes
MAX_TRANSCRIPT = 2000


@dataclass
class Take:
    """One checked recording, ready to train on."""

    audio_path: Path
    text: str
    audio: np.ndarray  # mono float32 at ``sample_rate``, peak-normalised
    sample_rate: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class TakeSet:
    takes: list[Take]
    rejected: list[tuple[Path, str]]  # (file, why)

    def report(self) -> str:
        lines = [f"{len(self.takes)} takes usable, {len(self.rejected)} skipped"]
        lines += [f"  {p.name}: {why}" for p, why in self.rejected]
        return "\n".join(lines)


def find_pairs(folder: str | Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(audio, transcript) pairs in ``folder`` and the files that have no partner."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudioError("the recordings folder does not exist or is not a folder", folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    audio = {p.stem: p for p in files if p.suffix.lower() in AUDIO_SUFFIXES}
    texts = {p.stem: p for p in files if p.suffix.lower() == ".txt"}
    pairs = [(audio[s], texts[s]) for s in sorted(audio) if s in texts]
    unpaired = [(audio[s], f"no transcript: {s}.txt is missing") for s in sorted(audio)
                if s not in texts]
    unpaired += [(texts[s], f"no recording for this transcript ({s}.wav is missing)")
                 for s in sorted(texts) if s not in audio]
    if not pairs:
        raise StudioError("no recordings with transcripts (NAME.wav + NAME.txt) in this folder",
                          folder)
    return pairs, unpaired


def read_transcript(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise FileFormatError("the transcript is not UTF-8 text", path) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read the transcript ({exc.strerror})", path) from None
    if not text:
        raise FileFormatError("the transcript is empty", path)
    if len(text) > MAX_TRANSCRIPT:
        raise FileFormatError(f"the transcript is longer than {MAX_TRANSCRIPT} characters; "
                              "record shorter takes", path)
    return text


def clipped_runs(x: np.ndarray) -> int:
    """Runs of three or more identical samples at (or within 1% of) the peak."""
    x = np.asarray(x, np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 0.25:  # digital clipping happens at full scale
        return 0
    top = np.abs(x) >= 0.99 * peak
    same = np.abs(np.diff(x)) <= 1e-9 * peak
    flat = top[1:] & top[:-1] & same  # sample i and i+1 equal at the peak
    edges = np.diff(np.concatenate([[0], flat.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    return int(np.sum(ends - starts >= 2))


def level_problems(x: np.ndarray, sr: int) -> list[str]:
    """Clipping, quietness and silence of raw (un-normalised) audio."""
    x = np.asarray(x, np.float64)
    problems = []
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if clipped_runs(x) >= CLIP_RUNS:
        problems.append("clipped (the level hit full scale); record it again a little quieter")
    level = frame_rms_db(x, sr)
    floor = float(np.percentile(level, 10)) if level.size else -120.0
    active = np.sum(level > max(floor + 15.0, -75.0)) * 0.01
    if peak <= 10 ** (-60 / 20) or active < MIN_SPEECH_S:
        problems.append("silence only: no speech found")
    elif 20 * np.log10(peak) < QUIET_PEAK_DB:
        problems.append(f"too quiet (peak {20 * np.log10(peak):.0f} dBFS); "
                        "record closer to the microphone")
    return problems


def transcript_problem(audio: np.ndarray, sr: int, text: str) -> str | None:
    """A message if what is heard in ``audio`` does not match ``text``."""
    from studio.voice.recognize import recognize, wer

    heard = recognize(audio, sr)
    rate = wer(text, heard)
    if rate > MISMATCH_WER:
        return (f"the transcript does not match the recording ({rate:.0%} of its words "
                f"not heard; heard: {heard[:80]!r})")
    return None


def check_take(audio_path: Path, text_path: Path, sample_rate: int,
               check_transcript: bool = True) -> Take:
    """Load and check one take. Unreadable files raise FileFormatError naming the file."""
    from studio.voice.audio_io import load_audio

    text = read_transcript(text_path)
    try:
        clip = load_audio(audio_path, sample_rate=sample_rate, normalize=False)
    except FileFormatError as exc:
        if "silent" in exc.reason:
            return Take(audio_path, text, np.zeros(0, np.float32), sample_rate,
                        ["silence only: no speech found"])
        raise
    take = Take(audio_path, text, clip.audio, sample_rate, level_problems(clip.audio, sample_rate))
    if take.ok and check_transcript:
        problem = transcript_problem(clip.audio, sample_rate, text)
        if problem:
            take.problems.append(problem)
    peak = float(np.max(np.abs(take.audio))) if take.audio.size else 0.0
    if peak > 0:
        take.audio = (take.audio * (0.9 / peak)).astype(np.float32)
    return take


def import_takes_steps(
    folder: str | Path, sample_rate: int, check_transcripts: bool = True,
    ctx: JobContext | None = None,
) -> Generator[Progress, None, TakeSet]:
    """Import and check every take in ``folder`` (a job body); bad takes are skipped."""
    pairs, rejected = find_pairs(folder)
    takes: list[Take] = []
    for k, (wav, txt) in enumerate(pairs):
        if ctx is not None:
            ctx.check()
        yield Progress(k / len(pairs), f"checking {wav.name}")
        try:
            take = check_take(wav, txt, sample_rate, check_transcripts)
        except StudioError as exc:
            rejected.append((wav, exc.reason))
            continue
        if take.ok:
            takes.append(take)
        else:
            rejected.append((wav, "; ".join(take.problems)))
    yield Progress(1.0, f"{len(takes)} takes usable")
    return TakeSet(takes, rejected)


def import_takes(folder: str | Path, sample_rate: int, check_transcripts: bool = True) -> TakeSet:
    gen = import_takes_steps(folder, sample_rate, check_transcripts)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value

"""Speech data: phones, words, a synthesis result and the timings JSON file.

The timings file (``studio speak --timings``, ``studio align --timings``) is plain JSON::

    {
      "phonemes": [{"phoneme": "h", "start": 0.035, "end": 0.07}, ...],
      "words": [{"word": "Hello", "start": 0.035, "end": 0.39}, ...],
      "duration": 2.93,            # optional: length of the audio in seconds
      "sentence_ends": [1.88],     # optional: times where sentences end
      "emphasis": [3]              # optional: indices of emphasised words
    }

Times are seconds from the start of the audio. Phonemes are IPA for the speech engines
(``"oʊ"``, ``"dʒ"``, ``"iː"``), ARPAbet for the aligner (``"OW"``, ``"JH"``), and
``"_"`` (engines) or ``"SIL"`` (aligner) for silence, so that the phonemes tile the audio.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import FileFormatError

SILENCE = "_"
"""The phoneme the speech engines use for pauses and silence."""

MAX_SPEECH_SECONDS = 3 * 3600.0
"""The longest speech the studio speaks, aligns or animates in one piece: 3 hours (the same
as :data:`studio.animate.lipsync.MAX_DURATION`; a project's timeline allows 24 h). A
timings file with a later time is refused: its curves would take gigabytes."""
MAX_TIMINGS_BYTES = 32 * 1024 * 1024
"""The largest timings file read (3 hours of speech take about 3 MB)."""

_TIME_DECIMALS = 6


def _t(value: float, decimals: int | None) -> float:
    return float(value) if decimals is None else round(float(value), decimals)


@dataclass(frozen=True)
class Phone:
    """One phoneme and where it sits in the audio, in seconds."""

    phoneme: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self, decimals: int | None = _TIME_DECIMALS) -> dict[str, Any]:
        return {"phoneme": self.phoneme, "start": _t(self.start, decimals),
                "end": _t(self.end, decimals)}


@dataclass(frozen=True)
class Word:
    """One word of the text and where it is spoken, in seconds."""

    word: str
    start: float
    end: float
    emphasis: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self, decimals: int | None = _TIME_DECIMALS) -> dict[str, Any]:
        return {"word": self.word, "start": _t(self.start, decimals),
                "end": _t(self.end, decimals)}


@dataclass
class Timings:
    """Phoneme and word timings without audio (what a timings file holds)."""

    phonemes: list[Phone] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    duration: float | None = None
    sentence_ends: list[float] = field(default_factory=list)

    @property
    def end_time(self) -> float:
        """The duration if known, else the end of the last phoneme or word."""
        if self.duration is not None:
            return self.duration
        ends = [p.end for p in self.phonemes] + [w.end for w in self.words]
        return max(ends, default=0.0)

    def to_dict(self, decimals: int | None = _TIME_DECIMALS) -> dict[str, Any]:
        """The timings file's JSON object (times rounded to ``decimals``; None: exact)."""
        data: dict[str, Any] = {
            "phonemes": [p.to_dict(decimals) for p in self.phonemes],
            "words": [w.to_dict(decimals) for w in self.words],
        }
        if self.duration is not None:
            data["duration"] = _t(self.duration, decimals)
        if self.sentence_ends:
            data["sentence_ends"] = [_t(t, decimals) for t in self.sentence_ends]
        emphasis = [i for i, w in enumerate(self.words) if w.emphasis]
        if emphasis:
            data["emphasis"] = emphasis
        return data


@dataclass
class SpeechResult:
    """Audio (float32 mono in [-1, 1]) with the timing of every phoneme and word."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[Phone]
    words: list[Word]
    sentence_ends: list[float] = field(default_factory=list)
    voice: str = ""

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)

    @property
    def timings(self) -> Timings:
        return Timings(
            list(self.phonemes), list(self.words), self.duration, list(self.sentence_ends)
        )

    def timings_dict(self, decimals: int | None = _TIME_DECIMALS) -> dict[str, Any]:
        return self.timings.to_dict(decimals)


# --------------------------------------------------------------------------- parsing


def _number(value: Any, what: str) -> float:
    """A time in seconds: a finite number of at most :data:`MAX_SPEECH_SECONDS`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ValueError(f"{what} is far too large a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if number > MAX_SPEECH_SECONDS:
        raise ValueError(
            f"{what} is {number:g} s; timings may reach at most {MAX_SPEECH_SECONDS:.0f} s "
            f"({MAX_SPEECH_SECONDS / 3600:g} h)"
        )
    return number


def _span(item: Any, key: str, index: int, kind: str) -> tuple[str, float, float]:
    where = f"{kind}s[{index}]"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object with {key!r}, 'start' and 'end'")
    for name in (key, "start", "end"):
        if name not in item:
            raise ValueError(f"{where} has no {name!r}")
    label = item[key]
    if not isinstance(label, str):
        raise ValueError(f"{where}.{key} must be a string")
    start = _number(item["start"], f"{where}.start")
    end = _number(item["end"], f"{where}.end")
    if start < 0:
        raise ValueError(f"{where} starts before 0 s ({start})")
    if end < start:
        raise ValueError(f"{where} ends ({end}) before it starts ({start})")
    return label, start, end


def timings_from_dict(data: Any) -> Timings:
    """Validate a parsed timings document. Raises ``ValueError`` saying what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("a timings file must hold a JSON object")
    if "phonemes" not in data and "words" not in data:
        raise ValueError("a timings file needs a 'phonemes' or a 'words' list")
    lists = {}
    for kind, key in (("phoneme", "phoneme"), ("word", "word")):
        items = data.get(kind + "s", [])
        if not isinstance(items, list):
            raise ValueError(f"'{kind}s' must be a list")
        lists[kind] = [_span(item, key, i, kind) for i, item in enumerate(items)]
    phones = sorted((Phone(*s) for s in lists["phoneme"]), key=lambda p: (p.start, p.end))
    emphasis = data.get("emphasis", [])
    if not isinstance(emphasis, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in emphasis
    ):
        raise ValueError("'emphasis' must be a list of word indices")
    emphasised = set(emphasis)
    words = [Word(*s, emphasis=i in emphasised) for i, s in enumerate(lists["word"])]
    words.sort(key=lambda w: (w.start, w.end))
    duration = data.get("duration")
    if duration is not None:
        duration = _number(duration, "duration")
        if duration < 0:
            raise ValueError("duration must not be negative")
    ends = data.get("sentence_ends", [])
    if not isinstance(ends, list):
        raise ValueError("'sentence_ends' must be a list of times")
    sentence_ends = sorted(_number(t, f"sentence_ends[{i}]") for i, t in enumerate(ends))
    return Timings(phones, words, duration, sentence_ends)


def parse_timings(text: str | bytes, path: str | Path | None = None) -> Timings:
    """Parse timings JSON text. Raises :class:`FileFormatError` naming ``path``."""
    where = path if path is not None else "<timings>"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"not valid JSON ({exc})", where) from None
    except RecursionError:
        raise FileFormatError("not a timings file: its JSON is nested too deeply", where) from None
    except ValueError:  # an integer of more than 4300 digits (int_max_str_digits)
        raise FileFormatError("not a timings file: it holds a number with far too many digits",
                              where) from None
    try:
        return timings_from_dict(data)
    except ValueError as exc:
        raise FileFormatError(f"not a timings file: {exc}", where) from None


def load_timings(path: str | Path) -> Timings:
    """Read a timings JSON file written by ``studio speak`` / ``studio align``."""
    from studio.core.errors import StudioError
    from studio.core.files import read_bytes_bounded

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileFormatError("file not found", path)
    try:  # a regular file of at most MAX_TIMINGS_BYTES: never a FIFO or /dev/zero
        raw = read_bytes_bounded(path, MAX_TIMINGS_BYTES, "timings file")
    except FileFormatError:
        raise
    except StudioError as exc:
        raise FileFormatError(exc.reason, path) from None
    return parse_timings(raw, path)


def dump_timings(timings: Timings | SpeechResult) -> str:
    """Timings as JSON text, one phoneme or word per line."""
    if isinstance(timings, SpeechResult):
        timings = timings.timings
    data = timings.to_dict()
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f' {json.dumps(key)}: [\n{items}\n ]')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def save_timings(path: str | Path, timings: Timings | SpeechResult) -> Path:
    """Write a timings JSON file (atomically: temp file then rename)."""
    from studio.core.atomic import atomic_write_bytes

    atomic_write_bytes(Path(path), dump_timings(timings).encode("utf-8"))
    return Path(path)

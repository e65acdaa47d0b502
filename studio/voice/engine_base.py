"""What the speech engines share: the engine interface and building timings."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from studio.core.jobs import JobContext, Progress
from studio.voice.settings import VoiceSettings
from studio.voice.types import SILENCE, Phone, SpeechResult, Word
from studio.voice.voices import VoiceInfo


@dataclass
class Rendered:
    """An engine's raw speech: audio, timings, and where sentences meet."""

    result: SpeechResult
    breaks: list[float] = field(default_factory=list)  # sentence boundaries (in silence)


class SpeechEngine(Protocol):
    name: str

    def render(
        self, text: str, voice: VoiceInfo, settings: VoiceSettings, ctx: JobContext | None = None
    ) -> Generator[Progress, None, Rendered]:
        """Speak ``text`` (no tags) with rate and expressiveness applied.

        ``result.words`` must hold one word per entry of ``tokenize_words(text)``, in order.
        """
        ...


def tile_phones(
    phones: Sequence[tuple[str, float, float]], duration: float, silence_label: str = SILENCE
) -> list[Phone]:
    """Phones that exactly tile ``[0, duration]``: gaps become silence, neighbouring
    silences merge, empty phones go, times are clipped to the audio."""
    sil = silence_label
    out: list[list] = []

    def add(label: str, start: float, end: float) -> None:
        start, end = max(0.0, start), min(duration, end)
        if end - start <= 1e-9:
            return
        if out and start > out[-1][2] + 1e-9:
            add_raw(sil, out[-1][2], start)
        elif not out and start > 1e-9:
            add_raw(sil, 0.0, start)
        if out:
            start = out[-1][2]  # no overlaps
            if end - start <= 1e-9:
                return
        add_raw(label, start, end)

    def add_raw(label: str, start: float, end: float) -> None:
        if out and label == sil and out[-1][0] == sil:
            out[-1][2] = end
        else:
            out.append([label, start, end])

    for label, start, end in sorted(phones, key=lambda p: p[1]):
        add(label or sil, float(start), float(end))
    if not out:
        return [Phone(sil, 0.0, duration)] if duration > 0 else []
    if out[-1][2] < duration - 1e-9:
        add_raw(sil, out[-1][2], duration)
    return [Phone(label, start, end) for label, start, end in out]


def words_from_phones(
    tokens: Sequence[tuple[str, int, int]], phones: Sequence[Phone], owners: Sequence[int]
) -> list[Word]:
    """Word times from the phones each word owns (``owners[i]`` is the word of speech phone
    ``i``, in order of the non-silent phones). A word that owns no phone gets zero length
    where the word before it ended."""
    speech = [p for p in phones if p.phoneme != SILENCE]
    spans: dict[int, list[float]] = {}
    for phone, w in zip(speech, owners, strict=False):
        if w in spans:
            spans[w][1] = phone.end
        else:
            spans[w] = [phone.start, phone.end]
    words = []
    last_end = 0.0
    for w, (text, _, _) in enumerate(tokens):
        if w in spans:
            start, end = spans[w]
            start = max(start, last_end)
            end = max(end, start)
        else:
            start = end = last_end
        words.append(Word(text, start, end))
        last_end = end
    return words


def concat_results(parts: Sequence[SpeechResult], sample_rate: int) -> SpeechResult:
    """Join results one after another, shifting their timings."""
    audio, phones, words, ends = [], [], [], []
    offset = 0
    for part in parts:
        t0 = offset / sample_rate
        audio.append(part.audio.astype(np.float32, copy=False))
        phones += [Phone(p.phoneme, p.start + t0, p.end + t0) for p in part.phonemes]
        words += [Word(w.word, w.start + t0, w.end + t0, w.emphasis) for w in part.words]
        ends += [t + t0 for t in part.sentence_ends]
        offset += len(part.audio)
    joined = np.concatenate(audio) if audio else np.zeros(0, np.float32)
    merged = tile_phones([(p.phoneme, p.start, p.end) for p in phones], offset / sample_rate)
    return SpeechResult(joined, sample_rate, merged, words, ends)


def silence(seconds: float, sample_rate: int) -> SpeechResult:
    n = int(round(seconds * sample_rate))
    phones = [Phone(SILENCE, 0.0, n / sample_rate)] if n else []
    return SpeechResult(np.zeros(n, np.float32), sample_rate, phones, [])


def insert_silence(result: SpeechResult, at: float, seconds: float) -> SpeechResult:
    """Insert ``seconds`` of silence at time ``at`` (a phone containing it grows)."""
    sr = result.sample_rate
    n = int(round(seconds * sr))
    if n <= 0:
        return result
    k = int(np.clip(round(at * sr), 0, len(result.audio)))
    t = k / sr
    d = n / sr
    audio = np.concatenate([result.audio[:k], np.zeros(n, np.float32), result.audio[k:]])

    def shift(start: float, end: float) -> tuple[float, float]:
        if start >= t - 1e-9:
            return start + d, end + d
        if end > t + 1e-9:
            return start, end + d
        return start, end

    phones = []
    for p in result.phonemes:
        s, e = shift(p.start, p.end)
        phones.append((p.phoneme, s, e))
    words = [Word(w.word, *shift(w.start, w.end), w.emphasis) for w in result.words]
    ends = [x + d if x > t + 1e-9 else x for x in result.sentence_ends]
    return SpeechResult(
        audio, sr, tile_phones(phones, len(audio) / sr), words, ends, result.voice
    )

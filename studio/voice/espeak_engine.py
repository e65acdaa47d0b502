"""eSpeak NG voices: every eSpeak language, with exact phoneme and word events.

eSpeak reports a phoneme event at the sample where each phoneme starts (IPA, empty for a
pause) and a word event with the word's character position in the text. A phoneme lasts
until the next phoneme event; an event that holds two phones (``ʊɹ``, ``əl``) is split
evenly. A word spans the phones from its word event to the next one.
"""

from __future__ import annotations

import bisect
from collections.abc import Generator

from studio.core.jobs import JobContext, Progress
from studio.voice.engine_base import Rendered, tile_phones
from studio.voice.espeak import EV_PHONEME, EV_SENTENCE, EV_WORD, RATE_NORMAL, get_espeak
from studio.voice.ipa import merge_symbols, split_ipa, tokenize_words
from studio.voice.settings import VoiceSettings
from studio.voice.types import SILENCE, Phone, SpeechResult, Word
from studio.voice.voices import VoiceInfo
from studio.voice.wordmap import assign_words


class EspeakEngine:
    name = "espeak"

    def render(
        self, text: str, voice: VoiceInfo, settings: VoiceSettings, ctx: JobContext | None = None
    ) -> Generator[Progress, None, Rendered]:
        es = get_espeak()
        yield Progress(0.0, "speaking")
        audio, events = es.synthesize(
            text,
            voice.espeak_voice or "en-us",
            rate_wpm=int(round(RATE_NORMAL * settings.rate)),
            pitch_range=int(round(50 * settings.expressiveness)),
            stop=ctx.check if ctx is not None else None,
        )
        sr = es.sample_rate
        n = len(audio)
        duration = n / sr
        phone_events = [e for e in events if e.kind == EV_PHONEME]
        raw: list[tuple[str, float, float]] = []
        for i, ev in enumerate(phone_events):
            start = ev.sample
            end = phone_events[i + 1].sample if i + 1 < len(phone_events) else n
            if end <= start:
                continue
            raw += _split_event(ev.label, start / sr, end / sr)
        phones = tile_phones(raw, duration)

        tokens = tokenize_words(text)
        words = _words_from_events(
            [e for e in events if e.kind == EV_WORD], phones, tokens, sr, duration,
            lambda w: split_ipa(" ".join(es.phonemize(w, voice.espeak_voice or "en-us"))),
        )

        starts = [e.sample / sr for e in events if e.kind == EV_SENTENCE and e.sample > 0]
        breaks = sorted(set(starts))
        ends = []
        speech_ends = [p.end for p in phones if p.phoneme != SILENCE]  # in order
        for t in [*breaks, duration]:
            k = bisect.bisect_right(speech_ends, t + 1e-9)  # the speech phones ending by t
            if k and (not ends or speech_ends[k - 1] > ends[-1]):
                ends.append(speech_ends[k - 1])
        yield Progress(1.0, "spoken")
        return Rendered(SpeechResult(audio, sr, phones, words, ends, voice.id), breaks)


def _split_event(label: str, start: float, end: float) -> list[tuple[str, float, float]]:
    """One phoneme event → phones; its time is shared evenly."""
    if not label.strip():
        return [(SILENCE, start, end)]
    units = merge_symbols([(ch, 0.0, 0.0) for ch in label if not ch.isspace()])
    if not units:
        return [(SILENCE, start, end)]
    step = (end - start) / len(units)
    return [(u, start + i * step, start + (i + 1) * step) for i, (u, _, _) in enumerate(units)]


def _words_from_events(word_events, phones, tokens, sr, duration, phonemize) -> list[Word]:
    """Word times: each word event owns the phones up to the next one. eSpeak sometimes
    speaks two words as one ("I am" → one event); the tokens that fall under one event
    share its phones by aligning their own phonemes (:mod:`studio.voice.wordmap`)."""
    groups: list[tuple[list[int], list[Phone]]] = []
    speech = [p for p in phones if p.phoneme != SILENCE]  # tiled phones: in order of start
    starts = [p.start for p in speech]
    token_starts = [s for _, s, _ in tokens]  # in order
    for i, ev in enumerate(word_events):  # bisect, not a scan per word: long texts stay fast
        t0 = ev.sample / sr
        t1 = word_events[i + 1].sample / sr if i + 1 < len(word_events) else duration
        inside = speech[bisect.bisect_left(starts, t0 - 1e-9) : bisect.bisect_left(
            starts, t1 - 1e-9)]
        a = ev.text_position - 1
        b = word_events[i + 1].text_position - 1 if i + 1 < len(word_events) else 1 << 30
        lo = 0 if i == 0 else bisect.bisect_left(token_starts, a)
        members = list(range(lo, max(lo, bisect.bisect_left(token_starts, b))))
        if members and inside:
            groups.append((members, inside))
    spans: dict[int, tuple[float, float]] = {}
    for members, inside in groups:
        if len(members) == 1:
            spans[members[0]] = (inside[0].start, inside[-1].end)
            continue
        owners, _ = assign_words(
            [p.phoneme for p in inside], [phonemize(tokens[k][0]) for k in members]
        )
        for phone, w in zip(inside, owners, strict=True):
            k = members[w]
            s0, _ = spans.get(k, (phone.start, phone.end))
            spans[k] = (s0, phone.end)
    words = []
    last = 0.0
    for k, (w, _, _) in enumerate(tokens):
        start, end = spans.get(k, (last, last))
        start = max(start, last)
        end = max(end, start)
        words.append(Word(w, start, end))
        last = end
    return words

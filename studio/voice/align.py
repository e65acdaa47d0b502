"""Forced alignment of recorded speech to its transcript with PocketSphinx.

PocketSphinx ships a US English acoustic model and the CMU pronouncing dictionary. The
recording is resampled to 16 kHz mono; the transcript's words are looked up in the
dictionary, and words it lacks (names, numbers) get a pronunciation from eSpeak's IPA
converted to ARPAbet. A first pass aligns words, a second pass phones (10 ms frames).
Word edges that PocketSphinx stretched over silence (it tends to let the first word
start at 0 and words swallow pauses) are then pulled in to where the sound is.

Phones come back in ARPAbet (``AH``, ``P``) with ``SIL`` for silence, tiling the audio.
Only English can be aligned; without a transcript use the audio-driven mouth
(:func:`studio.animate.audio_mouth.audio_mouth_tracks`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.voice.analysis import frame_rms_db
from studio.voice.engine_base import tile_phones
from studio.voice.ipa import ipa_to_arpabet, split_ipa, tokenize_words
from studio.voice.resample import resample
from studio.voice.sphinx import decoder
from studio.voice.types import MAX_SPEECH_SECONDS, SpeechResult, Word

ALIGN_RATE = 16000
FRAME = 0.01  # seconds per PocketSphinx frame
ALIGN_SILENCE = "SIL"
PAD = 0.3  # seconds of silence added around the audio
FRAME_DELAY = 0.01  # frame k's analysis window is centred ~10 ms after k·10 ms
BLOCK = 16000  # samples fed per call (lets a job cancel between blocks)
SINGLE_PASS_SECONDS = 60.0  # longer recordings are aligned window by window
WINDOW_SECONDS = 24.0  # audio aligned at once
# (window length / WINDOW_SECONDS, share of the words expected to fit that are given to it)
# tried in turn: fewer words than the audio holds is safe (the last words take up the
# rest); more fails, so a failed window is tried with fewer words, then longer and shorter
WINDOW_TRIES = ((1.0, 0.8), (1.0, 0.6), (1.5, 0.7), (0.7, 0.8), (2.0, 0.6))
KEEP_FRACTION = 0.5  # the first half of a window's words are kept
MAX_ESTIMATED = 0.2  # more words than this share estimated: the transcript does not match

_FILLER = re.compile(r"^(<.*>|\[.*\]|\+.*\+)$")
_decoder_lock = threading.Lock()


def _get_decoder():
    return decoder(samprate=ALIGN_RATE, bestpath=False)


def _dictionary_words(decoder, tokens: list[str]) -> list[str]:
    """Dictionary spellings for the tokens, adding pronunciations for unknown words."""
    out = []
    for token in tokens:
        word = token.lower().replace("’", "'")
        if decoder.lookup_word(word) is None:
            from studio.voice.espeak import get_espeak

            ipa = " ".join(get_espeak().phonemize(token, "en-us"))
            phones = ipa_to_arpabet(split_ipa(ipa))
            if not phones:
                raise StudioError(f"cannot work out how to pronounce {token!r} for alignment")
            # update=False: rebuilding the search per word costs 0.4 s; set_align_text
            # builds it afresh anyway
            decoder.add_word(word, " ".join(phones), False)
        out.append(word)
    return out


def _feed(decoder, pcm: np.ndarray, ctx: JobContext | None) -> Generator[None, None, None]:
    decoder.start_utt()
    for i in range(0, len(pcm), BLOCK):
        if ctx is not None:
            ctx.check()
        decoder.process_raw(pcm[i : i + BLOCK].tobytes(), False, False)
        yield
    decoder.end_utt()


# (word, start, end, [[phone, start, end], ...]) in seconds from the start of the audio
Entry = tuple[str, float, float, list[list]]


def _align_window(
    decoder, a16: np.ndarray, t0: float, words: list[str], ctx: JobContext | None,
    report: Callable[[float], Progress],
) -> Generator[Progress, None, list[Entry] | None]:
    """Align ``words`` to the 16 kHz samples ``a16`` (normalised to 0.9) that start at
    ``t0`` seconds: a word pass, then a phone pass. None when they cannot be aligned."""
    pad = np.zeros(int(PAD * ALIGN_RATE), np.float32)
    pcm = (np.clip(np.concatenate([pad, a16, pad]), -1, 1) * 32767).astype(np.int16)
    blocks = max(1, -(-len(pcm) // BLOCK))
    try:
        decoder.set_align_text(" ".join(words))
    except (RuntimeError, ValueError) as exc:
        raise StudioError(f"cannot align this transcript ({exc})") from None
    for k, _ in enumerate(_feed(decoder, pcm, ctx)):
        yield report(0.5 * (k + 1) / blocks)
    if decoder.hyp() is None:
        return None
    decoder.set_alignment()
    for k, _ in enumerate(_feed(decoder, pcm, ctx)):
        yield report(0.5 + 0.5 * (k + 1) / blocks)
    alignment = decoder.get_alignment()
    if alignment is None:
        return None

    def seconds(frame: int) -> float:
        return (frame - PAD / FRAME) * FRAME + FRAME_DELAY + t0

    out: list[Entry] = []
    for w in alignment:
        if _FILLER.match(w.name):
            continue
        phones = [[p.name, seconds(p.start), seconds(p.start + p.duration)] for p in w]
        out.append((w.name, seconds(w.start), seconds(w.start + w.duration), phones))
    return out if len(out) == len(words) else None


def _segments(transcript: str, tokens) -> list[int]:
    """Indices of the words after which a sentence ends."""
    ends = []
    for k, (_, _, e) in enumerate(tokens):
        nxt = tokens[k + 1][1] if k + 1 < len(tokens) else len(transcript)
        if re.search(r"[.!?…;:]", transcript[e:nxt]):
            ends.append(k)
    return ends


def _estimate(decoder, words: list[str], t0: float, t1: float) -> list[Entry]:
    """Times for words that could not be aligned: ``[t0, t1]`` shared by their length,
    each word's dictionary phones sharing its time evenly."""
    lengths = np.array([len(w) + 1 for w in words], dtype=np.float64)
    bounds = t0 + (t1 - t0) * np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum()
    out: list[Entry] = []
    for w, word in enumerate(words):
        a, b = float(bounds[w]), float(bounds[w + 1])
        phones = (decoder.lookup_word(word) or "").split()
        step = (b - a) / max(1, len(phones))
        out.append((word, a, b, [[ph, a + k * step, a + (k + 1) * step]
                                 for k, ph in enumerate(phones)]))
    return out


def _align_windows(
    decoder, a16: np.ndarray, words: list[str], transcript: str, tokens,
    ctx: JobContext | None,
) -> Generator[Progress, None, list[Entry]]:
    """Align a long recording window by window.

    PocketSphinx aligns a whole utterance at once, and over many minutes its tables
    overflow (``malloc(-1056484304)``); one word it cannot match anywhere also sinks the
    whole utterance. So the recording is aligned a window (:data:`WINDOW_SECONDS`) at a
    time, starting where the words kept from the previous window end, with somewhat
    fewer words than the window is expected to hold at the speaking rate so far (too
    many words cannot be aligned at all; too few leave speech over, which the last words
    take up). The first :data:`KEEP_FRACTION` of the words are kept (up to a sentence end
    where there is one); the others are aligned again with the next window. A window
    that cannot be aligned, or whose kept words run deep into it, is tried again with
    fewer words, longer and shorter (:data:`WINDOW_TRIES`); where nothing works, the
    kept words' times are estimated from their length, and the alignment goes on."""
    total = len(a16) / ALIGN_RATE
    n = len(words)
    chars = np.concatenate([[0], np.cumsum([len(w) + 1 for w in words])]).astype(np.float64)
    average = total / max(1.0, chars[-1])  # seconds per character, pauses included
    rate = average
    sentence_ends = _segments(transcript, tokens)
    out: list[Entry] = []
    estimated = 0
    i, t = 0, 0.0
    while i < n:
        result = None
        first_keep = None
        tried = set()
        for scale, fill in WINDOW_TRIES:
            end = min(total, t + WINDOW_SECONDS * scale)
            span = end - t
            final = end >= total - 1e-9
            budget = fill * span / rate  # characters to give this window
            take = int(np.searchsorted(chars, chars[i] + budget, side="right")) - 1
            take = n if final else min(n, max(take, i + 2))
            if (end, take) in tried:
                continue  # the same window and words again (the end of the recording)
            tried.add((end, take))
            if take >= n:
                keep = n
            else:
                keep = int(np.searchsorted(chars, chars[i] + KEEP_FRACTION * budget,
                                           side="right")) - 1
                keep = min(max(keep, i + 1), take - 1)
                ends = [k + 1 for k in sentence_ends if (i + keep) / 2 <= k + 1 <= keep]
                keep = ends[-1] if ends else keep
            first_keep = first_keep or keep
            a = int(round(t * ALIGN_RATE))
            b = int(round(end * ALIGN_RATE))

            def report(frac: float, a=a, b=b) -> Progress:
                done = (a + frac * (b - a)) / max(1, len(a16))
                return Progress(0.02 + 0.88 * min(1.0, done), "aligning")

            result = yield from _align_window(decoder, a16[a:b], a / ALIGN_RATE,
                                              words[i:take], ctx, report)
            if result is not None and not final:
                kept_end = result[keep - i - 1][2]
                ahead = result[keep - i :]
                squeezed = bool(ahead) and (result[-1][2] - ahead[0][1]) < 0.05 * len(ahead)
                limit = end - 1.0 if keep == n else t + 0.8 * span
                if kept_end > limit or squeezed:
                    result = None  # the window was too short: the words run into its end
            if result is not None:
                break
        if result is None:  # no window fits: estimate these words and go on
            keep = n if t + WINDOW_SECONDS >= total else first_keep
            length = (chars[keep] - chars[i]) * rate
            t1 = total if keep == n else min(total, t + length)
            result = _estimate(decoder, words[i:keep], t, t1)
            estimated += keep - i
            if estimated > max(MAX_ESTIMATED * n, 20):
                raise StudioError(
                    f"could not align the transcript to the recording near {t:.1f} s (from "
                    f"the word {tokens[i][0]!r}); check that the text is what is said")
            yield Progress(0.02 + 0.88 * t / max(total, 1e-9),
                           f"could not align the words near {t:.0f} s: their times are "
                           "estimated")
        kept = result[: keep - i]
        kept_end = max(t, kept[-1][2])
        if keep > i and kept_end > t:
            local = (kept_end - t) / (chars[keep] - chars[i])
            rate = float(np.clip(0.5 * rate + 0.5 * local, 0.5 * average, 2.0 * average))
        out += kept
        t = kept_end
        i = keep
    return out


def align_steps(
    audio: np.ndarray, sample_rate: int, transcript: str, ctx: JobContext | None = None
) -> Generator[Progress, None, SpeechResult]:
    """Align ``transcript`` to ``audio``; a generator of progress returning the result.

    A recording of up to :data:`SINGLE_PASS_SECONDS` is aligned in one pass, a longer
    one window by window (:func:`_align_windows`)."""
    tokens = tokenize_words(transcript)
    if not tokens:
        raise StudioError("the transcript has no words to align")
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = len(audio) / sample_rate
    if duration < 0.1:
        raise StudioError("the recording is too short to align (under 0.1 s)")
    if duration > MAX_SPEECH_SECONDS:
        raise StudioError(
            f"the recording is {duration:.0f} s long; at most {MAX_SPEECH_SECONDS:.0f} s "
            f"({MAX_SPEECH_SECONDS / 3600:g} h) can be aligned at once"
        )
    yield Progress(0.0, "preparing audio")
    a16 = resample(audio, sample_rate, ALIGN_RATE) if sample_rate != ALIGN_RATE else audio
    peak = float(np.max(np.abs(a16))) or 1.0
    scaled = (a16 * np.float32(0.9 / peak)).astype(np.float32)
    failed = StudioError(
        "could not align the transcript to the recording; check that the text is what is said"
    )
    with _decoder_lock:
        decoder = _get_decoder()
        words = _dictionary_words(decoder, [t for t, _, _ in tokens])
        if len(scaled) / ALIGN_RATE <= SINGLE_PASS_SECONDS:
            entries = yield from _align_window(
                decoder, scaled, 0.0, words, ctx,
                lambda frac: Progress(0.9 * frac, "aligning words" if frac <= 0.5
                                      else "aligning phones"),
            )
            if entries is None:
                raise failed
        else:
            entries = yield from _align_windows(decoder, scaled, words, transcript, tokens, ctx)
    word_spans = [[s, e] for _, s, e, _ in entries]
    phone_spans = [phones for _, _, _, phones in entries]
    levels = frame_rms_db(a16, ALIGN_RATE, FRAME)
    _tighten(word_spans, phone_spans, levels, duration)
    out_words = [Word(tok, max(0.0, s), min(duration, e))
                 for (tok, _, _), (s, e) in zip(tokens, word_spans, strict=True)]
    raw = [(name, s, e) for spans in phone_spans for name, s, e in spans]
    phones = tile_phones(raw, duration, ALIGN_SILENCE)
    yield Progress(1.0, "aligned")
    ends = _sentence_ends(transcript, tokens, out_words)
    return SpeechResult(audio, sample_rate, phones, out_words, ends, "recording")


def align_audio(
    audio: np.ndarray, sample_rate: int, transcript: str, ctx: JobContext | None = None
) -> SpeechResult:
    """Word and phone timings of ``transcript`` in ``audio`` (any rate, mono)."""
    gen = align_steps(audio, sample_rate, transcript, ctx)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _tighten(word_spans, phone_spans, levels: np.ndarray, duration: float) -> None:
    """Pull word edges off silence: a word edge that lies on a stretch of quiet frames
    (below the noise floor + 35 % of the dynamic range) moves to the sound, but never
    through its edge phone."""
    if levels.size < 3:
        return
    floor = float(np.percentile(levels, 10))
    loud = float(np.percentile(levels, 95))
    if loud - floor < 10:
        return  # no clear silence to find
    threshold = floor + 0.35 * (loud - floor)
    quiet = levels < threshold
    n = len(levels)

    def frame(t: float) -> int:
        return int(np.clip(round(t / FRAME), 0, n - 1))

    for w, (start, end) in enumerate(word_spans):
        phones = phone_spans[w]
        a, b = frame(start), frame(end)
        if phones:
            limit_a = frame(phones[0][2]) - 1  # stay inside the first phone
            limit_b = frame(phones[-1][1]) + 1
        else:
            limit_a, limit_b = b - 1, a + 1
        moved = a
        while moved < min(b - 1, limit_a) and quiet[moved]:
            moved += 1
        if moved - a >= 2:  # 20 ms or more of silence at the start
            start = moved * FRAME
        moved_b = b - 1
        while moved_b > max(a + 1, limit_b) and quiet[moved_b]:
            moved_b -= 1
        if (b - 1) - moved_b >= 2:
            end = (moved_b + 1) * FRAME
        start = min(max(0.0, start), duration)
        end = max(min(end, duration), start)
        word_spans[w] = [start, end]
        if phones:
            phones[0][1] = start
            phones[-1][2] = end
            for p in phones:
                p[1] = min(max(p[1], start), end)
                p[2] = min(max(p[2], p[1]), end)


def _sentence_ends(transcript: str, tokens, words: list[Word]) -> list[float]:
    ends = []
    for k, (_, _, e) in enumerate(tokens):
        nxt = tokens[k + 1][1] if k + 1 < len(tokens) else len(transcript)
        if re.search(r"[.!?…]", transcript[e:nxt]) or k == len(tokens) - 1:
            ends.append(words[k].end)
    return ends

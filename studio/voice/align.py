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
from collections.abc import Generator

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.voice.analysis import frame_rms_db
from studio.voice.engine_base import tile_phones
from studio.voice.ipa import ipa_to_arpabet, split_ipa, tokenize_words
from studio.voice.resample import resample
from studio.voice.types import SpeechResult, Word

ALIGN_RATE = 16000
FRAME = 0.01  # seconds per PocketSphinx frame
ALIGN_SILENCE = "SIL"
PAD = 0.3  # seconds of silence added around the audio
FRAME_DELAY = 0.01  # frame k's analysis window is centred ~10 ms after k·10 ms
BLOCK = 16000  # samples fed per call (lets a job cancel between blocks)

_FILLER = re.compile(r"^(<.*>|\[.*\]|\+.*\+)$")
_decoder = None
_decoder_lock = threading.Lock()


def _get_decoder():
    global _decoder
    if _decoder is None:
        try:
            from pocketsphinx import Decoder, set_loglevel
        except ImportError as exc:  # pragma: no cover - packaging problem
            raise StudioError("PocketSphinx is not installed (the pocketsphinx package)") from exc
        set_loglevel("FATAL")
        _decoder = Decoder(samprate=ALIGN_RATE, bestpath=False, loglevel="FATAL")
    return _decoder


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
            decoder.add_word(word, " ".join(phones), True)
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


def align_steps(
    audio: np.ndarray, sample_rate: int, transcript: str, ctx: JobContext | None = None
) -> Generator[Progress, None, SpeechResult]:
    """Align ``transcript`` to ``audio``; a generator of progress returning the result."""
    tokens = tokenize_words(transcript)
    if not tokens:
        raise StudioError("the transcript has no words to align")
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = len(audio) / sample_rate
    if duration < 0.1:
        raise StudioError("the recording is too short to align (under 0.1 s)")
    yield Progress(0.0, "preparing audio")
    a16 = resample(audio, sample_rate, ALIGN_RATE) if sample_rate != ALIGN_RATE else audio
    peak = float(np.max(np.abs(a16))) or 1.0
    pad = np.zeros(int(PAD * ALIGN_RATE), np.float32)
    padded = np.concatenate([pad, a16 * (0.9 / peak), pad])
    pcm = (np.clip(padded, -1, 1) * 32767).astype(np.int16)
    blocks = max(1, -(-len(pcm) // BLOCK))
    with _decoder_lock:
        decoder = _get_decoder()
        words = _dictionary_words(decoder, [t for t, _, _ in tokens])
        try:
            decoder.set_align_text(" ".join(words))
        except (RuntimeError, ValueError) as exc:
            raise StudioError(f"cannot align this transcript ({exc})") from None
        for k, _ in enumerate(_feed(decoder, pcm, ctx)):
            yield Progress(0.45 * (k + 1) / blocks, "aligning words")
        if decoder.hyp() is None:
            raise StudioError(
                "could not align the transcript to the recording; "
                "check that the text is what is said"
            )
        decoder.set_alignment()
        for k, _ in enumerate(_feed(decoder, pcm, ctx)):
            yield Progress(0.45 + 0.45 * (k + 1) / blocks, "aligning phones")
        alignment = decoder.get_alignment()
        entries = []
        if alignment is not None:
            for w in alignment:
                phones = [(p.name, p.start, p.duration) for p in w]
                entries.append((w.name, w.start, w.duration, phones))
    spoken = [e for e in entries if not _FILLER.match(e[0])]
    if len(spoken) != len(tokens):
        raise StudioError(
            "could not align the transcript to the recording; "
            "check that the text is what is said"
        )
    def seconds(frame: int) -> float:
        return (frame - PAD / FRAME) * FRAME + FRAME_DELAY

    word_spans = [[seconds(s), seconds(s + d)] for _, s, d, _ in spoken]
    phone_spans = [
        [[name, seconds(s), seconds(s + d)] for name, s, d in phones]
        for _, _, _, phones in spoken
    ]
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

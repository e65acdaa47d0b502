"""Text → speech with phoneme and word timings, for every engine.

``synthesize(text, voice, settings)`` runs the whole chain:

1. inline tags (:mod:`studio.voice.tags`) split the text into runs of words and pauses;
2. the voice's engine speaks each run (rate and expressiveness are engine settings);
3. extra sentence pauses and tag pauses are inserted as silence, shifting the timings;
4. emphasised words get louder; pitch and formants are shifted without moving any
   sample in time; the result is peak-normalised and scaled by the volume setting.

Results are cached by (text, voice, settings). The same chain runs as a job
(:func:`studio.voice.jobs.speak_job`) with progress and cancellation.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.voice.cache import DEFAULT_CACHE, SpeechCache, cache_key
from studio.voice.effects import apply_gain_spans, normalize_peak, shift_pitch
from studio.voice.engine_base import SpeechEngine, concat_results, insert_silence, silence
from studio.voice.ipa import tokenize_words
from studio.voice.settings import VoiceSettings
from studio.voice.tags import Pause, TextRun, parse_tags
from studio.voice.types import SILENCE, SpeechResult, Word
from studio.voice.voices import VoiceInfo, resolve_voice

MAX_TEXT = 100_000
_ENGINES: dict[str, SpeechEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(name: str) -> SpeechEngine:
    """The shared engine called ``name`` ("piper" or "espeak")."""
    with _ENGINES_LOCK:
        if name not in _ENGINES:
            if name == "piper":
                from studio.voice.piper_engine import PiperEngine

                _ENGINES[name] = PiperEngine()
            elif name == "espeak":
                from studio.voice.espeak_engine import EspeakEngine

                _ENGINES[name] = EspeakEngine()
            else:
                raise StudioError(f"unknown speech engine {name!r}")
        return _ENGINES[name]


def synthesize_steps(
    text: str,
    voice: str | VoiceInfo | None = None,
    settings: VoiceSettings | None = None,
    *,
    ctx: JobContext | None = None,
    cache: SpeechCache | None = DEFAULT_CACHE,
    voice_folders: Sequence[str | Path] = (),
) -> Generator[Progress, None, SpeechResult]:
    """The synthesis chain as a generator of progress events returning the result."""
    settings = settings or VoiceSettings()
    if not isinstance(text, str):
        raise StudioError("the text to speak must be a string")
    if len(text) > MAX_TEXT:
        raise StudioError(f"the text is too long ({len(text)} characters, at most {MAX_TEXT})")
    info = resolve_voice(voice, voice_folders)
    key = cache_key(text, info.fingerprint(), settings.key()) if cache is not None else None
    if cache is not None and key is not None:
        hit = cache.get(key)
        if hit is not None:
            yield Progress(1.0, "from cache")
            return hit
    parsed = parse_tags(text)
    if not any(isinstance(p, TextRun) for p in parsed.parts):
        raise StudioError("there is nothing to say: the text has no words")
    engine = get_engine(info.engine)
    sr = info.sample_rate
    pieces: list[SpeechResult] = []
    emphasised: list[tuple[float, float]] = []
    runs = [p for p in parsed.parts if isinstance(p, TextRun)]
    done = 0
    for part in parsed.parts:
        if ctx is not None:
            ctx.check()
        if isinstance(part, Pause):
            pieces.append(silence(part.seconds, sr))
            continue
        gen = engine.render(part.text, info, settings, ctx)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                rendered = stop.value
                break
            frac = (done + (p.fraction or 0.0)) / len(runs)
            yield Progress(0.85 * frac, p.message)
        done += 1
        result = rendered.result
        sr = result.sample_rate
        for t in sorted(rendered.breaks, reverse=True):
            result = insert_silence(result, t, settings.sentence_pause)
        result = _mark_emphasis(result, part)
        pieces.append(result)
    joined = concat_results(pieces, sr)
    if all(p.phoneme == SILENCE for p in joined.phonemes):
        raise StudioError("there is nothing to say: the voice found nothing to pronounce")
    for w in joined.words:
        if w.emphasis and w.end > w.start:
            emphasised.append((w.start, w.end))
    if ctx is not None:
        ctx.check()
    audio = joined.audio
    audio = apply_gain_spans(audio, sr, emphasised, settings.emphasis_gain_db)
    if settings.pitch or settings.formant:
        yield Progress(0.9, "shifting pitch")
        audio = shift_pitch(audio, sr, settings.pitch, settings.formant)
    audio = normalize_peak(audio, volume=settings.volume)
    result = SpeechResult(audio, sr, joined.phonemes, joined.words, joined.sentence_ends, info.id)
    if cache is not None and key is not None:
        cache.put(key, result)
    yield Progress(1.0, "done")
    return result


def synthesize(
    text: str,
    voice: str | VoiceInfo | None = None,
    settings: VoiceSettings | None = None,
    *,
    cache: SpeechCache | None = DEFAULT_CACHE,
    voice_folders: Sequence[str | Path] = (),
) -> SpeechResult:
    """Speak ``text`` (with inline tags) in ``voice``: audio + phoneme and word timings."""
    gen = synthesize_steps(text, voice, settings, cache=cache, voice_folders=voice_folders)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _mark_emphasis(result: SpeechResult, run: TextRun) -> SpeechResult:
    if not run.emphasis:
        return result
    tokens = tokenize_words(run.text)
    flags = [any(a < e and s < b for a, b in run.emphasis) for _, s, e in tokens]
    words = [Word(w.word, w.start, w.end, flag)
             for w, flag in zip(result.words, flags + [False] * len(result.words), strict=False)]
    result.words = words
    return result

"""Text → speech with phoneme and word timings, for every engine.

``synthesize(text, voice, settings)`` runs the whole chain:

1. inline tags (:mod:`studio.voice.tags`) split the text into runs of words and pauses;
2. the voice's engine speaks each run (rate and expressiveness are engine settings);
   (a sentence longer than :data:`~studio.voice.chunking.MAX_SENTENCE_CHARS` is cut into
   pieces spoken one after another, :mod:`studio.voice.chunking`);
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
from studio.voice.chunking import split_run
from studio.voice.effects import apply_gain_spans, normalize_peak, shift_pitch
from studio.voice.engine_base import SpeechEngine, concat_results, insert_silence, silence
from studio.voice.ipa import tokenize_words
from studio.voice.settings import VoiceSettings
from studio.voice.tags import Pause, TextRun, parse_tags
from studio.voice.types import MAX_SPEECH_SECONDS, SILENCE, SpeechResult, Word
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
    personal = None
    if info.converter is not None:  # a personal voice: the base voice at the user's rate
        from studio.voice.personal import cached_personal_voice

        personal = cached_personal_voice(info.converter)
        settings = settings.model_copy(
            update={"rate": min(4.0, max(0.25, settings.rate / personal.rate))})
    pieces: list[SpeechResult] = []
    emphasised: list[tuple[float, float]] = []
    steps: list[tuple[TextRun, bool, bool] | Pause] = []  # (run, cut, sentence ends after)
    for part in parsed.parts:
        if isinstance(part, Pause):
            steps.append(part)
            continue
        chunks = split_run(part)
        for k, chunk in enumerate(chunks):
            steps.append((chunk.run, chunk.cut, not chunk.cut and k + 1 < len(chunks)))
    runs = sum(1 for step in steps if not isinstance(step, Pause))
    done = 0
    seconds = 0.0
    for step in steps:
        if ctx is not None:
            ctx.check()
        if isinstance(step, Pause):
            pieces.append(silence(step.seconds, sr))
            seconds += pieces[-1].duration
            continue
        run, cut, pause_after = step
        gen = engine.render(run.text, info, settings, ctx)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                rendered = stop.value
                break
            frac = (done + (p.fraction or 0.0)) / runs
            yield Progress(0.85 * frac, p.message)
        done += 1
        result = rendered.result
        sr = result.sample_rate
        for t in sorted(rendered.breaks, reverse=True):
            result = insert_silence(result, t, settings.sentence_pause)
        if cut and result.sentence_ends:  # a piece of a long sentence: no sentence end
            result.sentence_ends = result.sentence_ends[:-1]
        if pause_after:  # the sentence break between two pieces of a run
            result = insert_silence(result, result.duration, settings.sentence_pause)
        result = _mark_emphasis(result, run)
        pieces.append(result)
        seconds += result.duration
        if seconds > MAX_SPEECH_SECONDS:
            raise StudioError(
                f"the speech would be longer than {MAX_SPEECH_SECONDS / 3600:g} hours "
                f"(at most {MAX_SPEECH_SECONDS:.0f} s in one piece): split the text"
            )
    joined = concat_results(pieces, sr)
    del pieces  # the joined audio holds them all now
    if all(p.phoneme == SILENCE for p in joined.phonemes):
        raise StudioError("there is nothing to say: the voice found nothing to pronounce")
    for w in joined.words:
        if w.emphasis and w.end > w.start:
            emphasised.append((w.start, w.end))
    if ctx is not None:
        ctx.check()
    audio = joined.audio
    if personal is not None:
        yield Progress(0.87, "converting to the personal voice")
        audio = personal.convert_audio(audio, sr)
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

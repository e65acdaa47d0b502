"""Speech work as jobs (see :mod:`studio.core.jobs`): the GUI and the CLI run these.

Each is a generator function ``fn(ctx, ...)`` yielding ``Progress`` and returning its
result; it checks ``ctx`` between sentences / audio blocks, so a cancel lands quickly.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.voice.cache import DEFAULT_CACHE, SpeechCache
from studio.voice.settings import VoiceSettings
from studio.voice.types import SpeechResult
from studio.voice.voices import VoiceInfo


def speak_job(
    ctx: JobContext,
    text: str,
    voice: str | VoiceInfo | None = None,
    settings: VoiceSettings | None = None,
    cache: SpeechCache | None = DEFAULT_CACHE,
    voice_folders: Sequence[str | Path] = (),
) -> Generator[Progress, None, SpeechResult]:
    """Text → :class:`SpeechResult` (audio + phoneme and word timings)."""
    from studio.voice.synth import synthesize_steps

    result = yield from synthesize_steps(
        text, voice, settings, ctx=ctx, cache=cache, voice_folders=voice_folders
    )
    return result


def align_job(
    ctx: JobContext,
    audio: str | Path | np.ndarray,
    transcript: str,
    sample_rate: int | None = None,
) -> Generator[Progress, None, SpeechResult]:
    """Recording (a file, or an array with ``sample_rate``) + transcript → timings."""
    from studio.voice.align import align_steps
    from studio.voice.audio_io import load_audio

    if isinstance(audio, (str, Path)):
        yield Progress(0.0, f"reading {Path(audio).name}")
        clip = load_audio(audio)
        samples, rate = clip.audio, clip.sample_rate
    else:
        if sample_rate is None:
            raise StudioError("align_job needs the sample rate of the audio array")
        samples, rate = np.asarray(audio, dtype=np.float32), int(sample_rate)
    result = yield from align_steps(samples, rate, transcript, ctx)
    return result

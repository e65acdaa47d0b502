"""Voices: text → speech with phoneme and word timings, recorded speech alignment.

No Qt and no sound devices here (playback belongs to the GUI). Heavy engines (Piper's
onnxruntime, eSpeak, PocketSphinx) load on first use: synthesis is in ``voice.synth``
(``synthesize``), alignment in ``voice.align``, jobs in ``voice.jobs``, the voice list in
``voice.voices``, audio files in ``voice.audio_io``.
"""

from studio.voice.settings import VoiceSettings
from studio.voice.types import (
    SILENCE,
    Phone,
    SpeechResult,
    Timings,
    Word,
    load_timings,
    parse_timings,
    save_timings,
)

__all__ = [
    "SILENCE", "Phone", "SpeechResult", "Timings", "VoiceSettings", "Word", "load_timings",
    "parse_timings", "save_timings",
]

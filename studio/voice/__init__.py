"""Voices: text → speech with phoneme and word timings, recorded speech alignment.

No Qt and no sound devices here (playback belongs to the GUI). Heavy engines (Piper's
onnxruntime, eSpeak, PocketSphinx) load on first use.
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


def __getattr__(name: str):
    # keep `import studio.voice` light: the synthesis chain loads on first use
    lazy = {
        "synthesize": ("studio.voice.synth", "synthesize"),
        "align_audio": ("studio.voice.align", "align_audio"),
        "load_audio": ("studio.voice.audio_io", "load_audio"),
        "list_voices": ("studio.voice.voices", "list_voices"),
        "resolve_voice": ("studio.voice.voices", "resolve_voice"),
        "speak_job": ("studio.voice.jobs", "speak_job"),
        "align_job": ("studio.voice.jobs", "align_job"),
    }
    if name in lazy:
        import importlib

        module, attr = lazy[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(name)


__all__ = [
    "SILENCE", "Phone", "SpeechResult", "Timings", "VoiceSettings", "Word", "align_audio",
    "align_job", "list_voices", "load_audio", "load_timings", "parse_timings", "resolve_voice",
    "save_timings", "speak_job", "synthesize",
]

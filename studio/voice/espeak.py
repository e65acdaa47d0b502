"""eSpeak NG through ctypes: phonemes of text, speech with phoneme and word events.

The library and its data come from the ``espeakng-loader`` package. eSpeak keeps global
state, so every call goes through one lock. Synthesis runs in synchronous mode: the
callback receives audio blocks and events (phonemes as IPA, words with their character
positions) with sample positions, which give the timings exactly.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.errors import StudioError

# espeak_EVENT_TYPE
EV_LIST_TERMINATED = 0
EV_WORD = 1
EV_SENTENCE = 2
EV_END = 5
EV_MSG_TERMINATED = 6
EV_PHONEME = 7

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PHONEMES_IPA = 0x02

# espeak_PARAMETER
P_RATE = 1
P_VOLUME = 2
P_PITCH = 3
P_RANGE = 4
P_WORDGAP = 7

RATE_MIN, RATE_NORMAL, RATE_MAX = 80, 175, 450


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class EspeakEvent:
    kind: int  # EV_WORD, EV_SENTENCE, EV_END, EV_PHONEME
    sample: int  # position in the audio, samples
    text_position: int  # 1-based character index into the text
    length: int  # characters (words)
    label: str  # IPA phoneme ('' for a pause), or ''


@dataclass(frozen=True)
class EspeakVoiceEntry:
    name: str  # "English (America)"
    identifier: str  # "gmw/en-US"
    languages: tuple[str, ...]  # ("en-us", "en")
    gender: int  # 0 unknown, 1 male, 2 female

    @property
    def language(self) -> str:
        return self.languages[0] if self.languages else self.identifier.rsplit("/", 1)[-1]


class Espeak:
    """The process-wide eSpeak NG library. Use :func:`get_espeak`."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - a packaging problem
            raise StudioError(
                "eSpeak NG is not installed (the espeakng-loader package is missing)"
            ) from exc
        self.lock = threading.RLock()
        self.library_path = Path(espeakng_loader.get_library_path())
        self.data_path = Path(espeakng_loader.get_data_path())
        try:
            lib = ctypes.CDLL(str(self.library_path))
        except OSError as exc:
            raise StudioError(f"cannot load eSpeak NG from {self.library_path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._set_seed is not None:  # eSpeak varies its output randomly unless seeded
            self._set_seed.argtypes = [ctypes.c_long]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        options = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), options
        )
        if rate <= 0:
            raise StudioError(f"eSpeak NG failed to start (data in {self.data_path})")
        self.sample_rate = int(rate)
        self._lib = lib
        self._blocks: list[np.ndarray] = []
        self._events: list[EspeakEvent] = []
        self._stop: Callable[[], None] | None = None
        self._stop_error: BaseException | None = None
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None
        self._voices: list[EspeakVoiceEntry] | None = None

    # ------------------------------------------------------------------ callback

    def _on_synth(self, wav, count, events) -> int:  # called by eSpeak inside Synth
        try:
            if wav and count > 0:
                self._blocks.append(np.ctypeslib.as_array(wav, (count,)).copy())
            i = 0
            while events[i].type != EV_LIST_TERMINATED:
                ev = events[i]
                if ev.type in (EV_WORD, EV_SENTENCE, EV_END, EV_PHONEME):
                    label = ""
                    if ev.type == EV_PHONEME:
                        label = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                    self._events.append(
                        EspeakEvent(ev.type, int(ev.sample), int(ev.text_position),
                                    int(ev.length), label)
                    )
                i += 1
            if self._stop is not None:
                self._stop()
        except BaseException as exc:  # noqa: BLE001 - never let an exception cross into C
            self._stop_error = exc
            return 1
        return 0

    # ------------------------------------------------------------------ API

    def voices(self) -> list[EspeakVoiceEntry]:
        """Every language voice in the eSpeak data (141 in espeak-ng 1.52)."""
        with self.lock:
            if self._voices is None:
                arr = self._lib.espeak_ListVoices(None)
                out = []
                i = 0
                while arr[i]:
                    v = arr[i].contents
                    langs = []
                    p = v.languages
                    while p and ctypes.c_ubyte.from_address(p).value != 0:
                        raw = ctypes.string_at(p + 1)
                        langs.append(raw.decode("utf-8", "replace"))
                        p += 2 + len(raw)
                    out.append(EspeakVoiceEntry(
                        (v.name or b"").decode("utf-8", "replace"),
                        (v.identifier or b"").decode("utf-8", "replace"),
                        tuple(langs), int(v.gender),
                    ))
                    i += 1
                self._voices = out
            return list(self._voices)

    def variants(self) -> list[str]:
        """Voice variants (``f3``, ``m1``, ``whisper`` ...) usable as ``en-us+f3``."""
        folder = self.data_path / "voices" / "!v"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file())

    def set_voice(self, name: str) -> None:
        with self.lock:
            if name == self._voice:
                return
            rc = self._lib.espeak_SetVoiceByName(name.encode("utf-8"))
            if rc != 0:
                raise StudioError(
                    f"eSpeak has no voice {name!r}; `studio voices` lists the languages"
                )
            self._voice = name

    def phonemize(self, text: str, voice: str) -> list[str]:
        """IPA phonemes of ``text``, one string per clause (words separated by spaces)."""
        with self.lock:
            self.set_voice(voice)
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            ptr = ctypes.c_void_p(ctypes.addressof(buf))
            out = []
            while ptr.value:
                res = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, _PHONEMES_IPA)
                if res:
                    out.append(res.decode("utf-8", "replace"))
            return out

    def synthesize(
        self,
        text: str,
        voice: str,
        *,
        rate_wpm: int = RATE_NORMAL,
        pitch_range: int = 50,
        stop: Callable[[], None] | None = None,
    ) -> tuple[np.ndarray, list[EspeakEvent]]:
        """Speak ``text``: (float32 audio at :attr:`sample_rate`, events).

        ``stop`` is called between audio blocks; an exception it raises aborts synthesis
        and is raised here.
        """
        with self.lock:
            self.set_voice(voice)
            lib = self._lib
            lib.espeak_SetParameter(P_RATE, int(np.clip(rate_wpm, RATE_MIN, RATE_MAX)), 0)
            lib.espeak_SetParameter(P_RANGE, int(np.clip(pitch_range, 0, 100)), 0)
            lib.espeak_SetParameter(P_PITCH, 50, 0)
            lib.espeak_SetParameter(P_VOLUME, 100, 0)
            if self._set_seed is not None:
                # fixes eSpeak's random variation; its pitch "flutter" still runs on from
                # one call to the next, so repeated calls may differ by a few samples
                self._set_seed(1)
            self._blocks, self._events = [], []
            self._stop, self._stop_error = stop, None
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data, len(data))
            try:
                rc = lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            finally:
                self._stop = None
            if self._stop_error is not None:
                raise self._stop_error
            if rc != 0:
                raise StudioError(f"eSpeak could not speak the text (error {rc})")
            blocks, events = self._blocks, self._events
            self._blocks, self._events = [], []
        audio = np.concatenate(blocks) if blocks else np.zeros(0, np.int16)
        return audio.astype(np.float32) / 32768.0, events


_instance: Espeak | None = None
_instance_lock = threading.Lock()


def get_espeak() -> Espeak:
    """The shared eSpeak NG instance (loaded on first use)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = Espeak()
        return _instance

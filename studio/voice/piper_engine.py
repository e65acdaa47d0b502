"""Piper neural voices (VITS in ONNX, run by onnxruntime) with phoneme timings.

The model is patched in memory to output the length of every phoneme id
(``PiperVoice.load(..., include_alignments=True)``, needs the ``onnx`` package). Each
sentence comes back as an ``AudioChunk`` whose ``phoneme_alignments`` give the samples of
every phoneme symbol; the counts sum to the chunk's audio. Symbols become phones here:
stress marks give their time to the next phone, length marks join the phone before,
spaces are shared by the phones around them, and punctuation, the start and the end of a
sentence are silence. Words come from :mod:`studio.voice.wordmap`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator

import numpy as np

from studio.core.errors import FileFormatError, StudioError
from studio.core.jobs import JobContext, Progress
from studio.voice.engine_base import Rendered, tile_phones, words_from_phones
from studio.voice.ipa import PUNCTUATION, is_vowel, merge_symbols, split_ipa, tokenize_words
from studio.voice.settings import VoiceSettings
from studio.voice.types import SILENCE, SpeechResult
from studio.voice.voices import VoiceInfo
from studio.voice.wordmap import assign_words

log = logging.getLogger(__name__)

_SENTENCE_MARKS = {"^", "$"}
PAD_TO_NEXT = 1.0


class PiperEngine:
    name = "piper"

    def __init__(self) -> None:
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def load(self, voice: VoiceInfo):
        """The loaded ``PiperVoice`` (kept for the next call)."""
        if voice.model is None:
            raise StudioError(f"{voice.id} is not a Piper voice")
        key = voice.fingerprint()
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            from studio.voice.piper_model import load_piper_voice

            try:
                loaded = load_piper_voice(voice.model, voice.config)
            except Exception as exc:  # noqa: BLE001 - onnx/onnxruntime raise many types
                raise FileFormatError(f"cannot load the Piper voice ({exc})", voice.model) from exc
            self._loaded[key] = loaded
            return loaded

    def render(
        self, text: str, voice: VoiceInfo, settings: VoiceSettings, ctx: JobContext | None = None
    ) -> Generator[Progress, None, Rendered]:
        from piper import SynthesisConfig

        from studio.voice.espeak import get_espeak

        pv = self.load(voice)
        cfg = pv.config
        speaker = settings.speaker
        if cfg.num_speakers <= 1:
            speaker = None
        elif speaker is not None and speaker >= cfg.num_speakers:
            raise StudioError(
                f"voice {voice.name} has {cfg.num_speakers} speakers; speaker {speaker} is not one"
            )
        syn = SynthesisConfig(
            speaker_id=speaker,
            length_scale=cfg.length_scale / settings.rate,
            noise_scale=cfg.noise_scale * settings.expressiveness,
            noise_w_scale=cfg.noise_w_scale * settings.expressiveness,
            normalize_audio=False,
            volume=1.0,
        )
        sentences = max(1, len(pv.phonemize(text)))
        pad_ids = frozenset(cfg.phoneme_id_map.get("_", [0]))
        sr = int(cfg.sample_rate)
        audio: list[np.ndarray] = []
        symbols: list[tuple[str, float, float]] = []  # IPA symbol or SILENCE, with times
        breaks: list[float] = []
        chunk_bounds: list[tuple[float, float]] = []
        offset = 0
        for k, chunk in enumerate(pv.synthesize(text, syn, include_alignments=True)):
            if ctx is not None:
                ctx.check()
            a = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
            t0 = offset / sr
            if offset:
                breaks.append(t0)
            symbols += _chunk_symbols(chunk, len(a), sr, t0, pad_ids)
            chunk_bounds.append((t0, t0 + len(a) / sr))
            audio.append(a)
            offset += len(a)
            yield Progress(min(0.95, (k + 1) / sentences), f"sentence {k + 1} of {sentences}")
        samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
        audio.clear()  # one copy of the speech, not two
        duration = len(samples) / sr
        phones = tile_phones(_symbols_to_phones(symbols), duration)

        es = get_espeak()
        tokens = tokenize_words(text)
        word_phones = [split_ipa(" ".join(es.phonemize(w, voice.espeak_voice))) for w, _, _ in tokens]
        owners = _owners_by_sentence(phones, word_phones, chunk_bounds)
        words = words_from_phones(tokens, phones, owners)
        ends = []
        for t0, t1 in chunk_bounds:
            inside = [p.end for p in phones if p.phoneme != SILENCE and t0 <= p.start < t1]
            if inside:
                ends.append(max(inside))
        result = SpeechResult(samples, sr, phones, words, ends, voice.id)
        return Rendered(result, breaks)


def _chunk_symbols(
    chunk, n_samples: int, sr: int, t0: float, pad_ids: frozenset[int] = frozenset({0})
) -> list[tuple[str, float, float]]:
    """(symbol, start, end) for one sentence; SILENCE for punctuation and sentence edges.

    Piper follows every phoneme id with a pad id, and its alignment groups each phoneme
    with the pad after it. Listening to the audio (energy onsets and decays), the pad's
    frames are the transition into the *next* phoneme: a vowel's decay ends where its pad
    starts and a word's onset begins with the pad before it. So a phoneme here ends where
    its pad starts, and the pad's time (times ``PAD_TO_NEXT``) goes to the next phoneme.
    """
    alignments = chunk.phoneme_alignments
    if alignments:
        items = _own_and_pad_samples(chunk, pad_ids)
    else:
        log.warning("voice gives no phoneme alignments: timings are estimated")
        items = [(p, n, 0) for p, n in _estimated_alignment(chunk.phonemes, n_samples)]
    total = sum(n + pad for _, n, pad in items)
    scale = n_samples / total if total else 1.0  # the counts sum to the audio; be safe
    out: list[tuple[str, float, float]] = []
    pos = 0.0
    carry = 0.0
    for sym, own, pad in items:
        start = pos
        length = carry + own + (1.0 - PAD_TO_NEXT) * pad
        pos = start + length * scale
        carry = PAD_TO_NEXT * pad
        if sym in _SENTENCE_MARKS or sym in PUNCTUATION:
            sym = SILENCE
        out.append((sym, t0 + start / sr, t0 + pos / sr))
    if carry and out:  # a pad after the last symbol: it stays with it
        sym, start, _ = out[-1]
        out[-1] = (sym, start, t0 + (pos + carry * scale) / sr)
    return out


def _own_and_pad_samples(chunk, pad_ids: frozenset[int]) -> list[tuple[str, int, int]]:
    """(symbol, samples of its own ids, samples of the pad ids after it) per alignment."""
    samples = chunk.phoneme_id_samples
    out = []
    k = 0
    for a in chunk.phoneme_alignments:
        ids = list(a.phoneme_ids)
        counts = [int(samples[k + i]) for i in range(len(ids))] if samples is not None else []
        k += len(ids)
        n_pad = 0
        while n_pad < len(ids) - 1 and ids[len(ids) - 1 - n_pad] in pad_ids:
            n_pad += 1
        if len(counts) == len(ids):
            own, pad = sum(counts[: len(ids) - n_pad]), sum(counts[len(ids) - n_pad :])
            if own + pad != int(a.num_samples):
                own, pad = int(a.num_samples), 0
        else:
            own, pad = int(a.num_samples), 0
        out.append((a.phoneme, own, pad))
    return out


def _estimated_alignment(phonemes: list[str], n_samples: int) -> list[tuple[str, int]]:
    weights = [
        0.5 if p == " " else 2.0 if p in PUNCTUATION else 1.4 if is_vowel(p) else 1.0
        for p in phonemes
    ]
    total = sum(weights) or 1.0
    return [(p, int(round(n_samples * w / total))) for p, w in zip(phonemes, weights, strict=True)]


def _symbols_to_phones(symbols: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Give spaces to their neighbours and merge symbols into phones between silences."""
    resolved: list[list] = []
    for i, (sym, start, end) in enumerate(symbols):
        if sym != " ":
            resolved.append([sym, start, end])
            continue
        prev_sil = not resolved or resolved[-1][0] == SILENCE
        next_sym = symbols[i + 1][0] if i + 1 < len(symbols) else SILENCE
        if prev_sil or next_sym in (SILENCE, " "):
            resolved.append([SILENCE, start, end])  # a space by a pause is pause
        else:
            mid = (start + end) / 2
            resolved[-1][2] = mid  # the phone before takes the first half,
            resolved.append(["", mid, end])  # the phone after the second half
    out: list[tuple[str, float, float]] = []
    run: list[tuple[str, float, float]] = []
    pending_start: float | None = None

    def flush() -> None:
        nonlocal run
        if run:
            out.extend(merge_symbols(run))
        run = []

    for sym, start, end in resolved:
        if sym == "":
            pending_start = start
            continue
        if pending_start is not None:
            start, pending_start = pending_start, None
        if sym == SILENCE:
            flush()
            out.append((SILENCE, start, end))
        else:
            run.append((sym, start, end))
    flush()
    return out


def _owners_by_sentence(phones, word_phones, chunk_bounds) -> list[int]:
    """Word index of every speech phone, aligning sentence by sentence."""
    speech = [p for p in phones if p.phoneme != SILENCE]
    owners: list[int] = []
    first_word = 0
    for c, (t0, t1) in enumerate(chunk_bounds):
        last = c == len(chunk_bounds) - 1
        labels = [p.phoneme for p in speech if t0 - 1e-9 <= p.start < t1 - 1e-9 or (
            last and p.start >= t1 - 1e-9)]
        if not labels:
            continue
        remaining = word_phones[first_word:]
        if not remaining:
            owners += [max(0, len(word_phones) - 1)] * len(labels)
            continue
        window = remaining if last else remaining[: len(labels) + 8]
        local, used = assign_words(labels, window, free_end=not last)
        owners += [first_word + w for w in local]
        first_word += used
    return owners

"""Speech recognition with PocketSphinx's US English model and language model (offline),
and word error rate: to check a recording's transcript and to measure intelligibility."""

from __future__ import annotations

import threading

import numpy as np

from studio.voice.ipa import tokenize_words
from studio.voice.resample import resample
from studio.voice.sphinx import decoder

RATE = 16000
_lock = threading.Lock()


def _get_decoder():
    return decoder(samprate=RATE)


def recognize(audio: np.ndarray, sample_rate: int) -> str:
    """The words PocketSphinx hears in ``audio`` (lower case, space separated)."""
    x = np.asarray(audio, np.float32).reshape(-1)
    if sample_rate != RATE:
        x = resample(x, sample_rate, RATE)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 1e-6:
        return ""
    pad = np.zeros(RATE // 4, np.float32)
    pcm = (np.concatenate([pad, x * (0.9 / peak), pad]) * 32767).astype(np.int16)
    with _lock:
        d = _get_decoder()
        d.start_utt()
        d.process_raw(pcm.tobytes(), False, True)
        d.end_utt()
        hyp = d.hyp()
    if hyp is None:
        return ""
    return " ".join(w for w in hyp.hypstr.lower().split() if not w.startswith("<"))


def words_of(text: str) -> list[str]:
    return [w.lower().strip("'") for w, _, _ in tokenize_words(text)]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference word count)."""
    ref, hyp = words_of(reference), words_of(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (0 = every word right)."""
    errors, count = word_errors(reference, hypothesis)
    return errors / max(1, count)

"""Cutting overlong sentences before synthesis.

A speech engine speaks a sentence in one go: Piper runs its network over all of a sentence's
phonemes at once, so 50,000 characters without a full stop ask onnxruntime for gigabytes
and fail. A run of text whose sentences are all at most :data:`MAX_SENTENCE_CHARS` long is
left whole (the engine speaks it exactly as before). A longer sentence is cut into pieces
of at most that many characters: after a comma, semicolon, colon or dash where there is
one in the second half of the piece, else at the last space, else (one endless "word")
anywhere. Each piece is spoken on its own and the pieces are joined one after another, so
the phoneme and word timings run on without a gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.voice.tags import TextRun

MAX_SENTENCE_CHARS = 400
"""The longest sentence (characters) given to an engine in one piece."""

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?:\s+|$)")
_CLAUSE_END = re.compile(r"[,;:—–](?=\s)")
_SPACE = re.compile(r"\s+")


@dataclass
class Chunk:
    """A piece of a run to speak in one engine call; ``cut`` when it ends inside a
    sentence (its end is no sentence end)."""

    run: TextRun
    cut: bool = False


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start:
            spans.append((start, m.end()))
            start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _cut(text: str, a: int, b: int, limit: int) -> int:
    """Where to end the piece that starts at ``a`` (the sentence ends at ``b``)."""
    end = a + limit
    if b <= end:
        return b
    lo = a + limit // 2
    best = None
    for m in _CLAUSE_END.finditer(text, lo, end):
        best = m.end()
    if best is not None:
        return best
    for m in _SPACE.finditer(text, a + 1, end):
        best = m.start()
    return best if best is not None and best > a else end


def _sub_run(run: TextRun, a: int, b: int) -> TextRun:
    spans = [(max(s, a) - a, min(e, b) - a) for s, e in run.emphasis if s < b and e > a]
    return TextRun(run.text[a:b], spans)


def split_run(run: TextRun, limit: int = MAX_SENTENCE_CHARS) -> list[Chunk]:
    """``run`` as chunks to speak one after another: the whole run when no sentence in it
    is longer than ``limit`` characters; otherwise groups of short sentences and the
    pieces of each long one, each at most ``limit`` characters where there are spaces."""
    if limit < 2:
        raise ValueError("limit must be at least 2 characters")
    text = run.text
    sentences = _sentence_spans(text)
    if all(b - a <= limit for a, b in sentences):
        return [Chunk(run)]
    bounds: list[tuple[int, int, bool]] = []  # (start, end, cut)
    group: int | None = None  # start of the current group of short sentences
    for a, b in sentences:
        if b - a <= limit:
            if group is None:
                group = a
            continue
        if group is not None:
            bounds.append((group, a, False))
            group = None
        start = a
        while start < b:
            end = _cut(text, start, b, limit)
            bounds.append((start, end, end < b))
            start = end
    if group is not None:
        bounds.append((group, len(text), False))
    chunks = [Chunk(_sub_run(run, a, b), cut) for a, b, cut in bounds]
    return [c for c in chunks if c.run.text.strip()]

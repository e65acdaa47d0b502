"""Map a stream of spoken phones back to the words of the text.

A neural voice reports how long each phoneme lasts, not which word it belongs to, and
eSpeak phonemizes whole sentences, merging or changing words in context ("I am" →
``aɪɐm``). So each word of the text is phonemized on its own and the word phones are
aligned to the spoken phones with an edit-distance alignment (substituting a vowel for a
vowel is cheap). Every spoken phone gets the word of the phone it aligns with; a phone
with no partner joins the word before it. Silences are not part of the alignment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.voice.ipa import base, is_vowel

SUB_SAME_CLASS = 0.4
SUB_OTHER = 1.0
GAP = 0.7


def _sub_costs(spoken: Sequence[str], reference: Sequence[str]) -> np.ndarray:
    sb = [base(p) for p in spoken]
    rb = [base(p) for p in reference]
    sv = np.array([is_vowel(p) for p in spoken])
    rv = np.array([is_vowel(p) for p in reference])
    cost = np.where(sv[:, None] == rv[None, :], SUB_SAME_CLASS, SUB_OTHER).astype(np.float64)
    index: dict[str, list[int]] = {}
    for j, p in enumerate(rb):
        index.setdefault(p, []).append(j)
    for i, p in enumerate(sb):
        for j in index.get(p, ()):
            cost[i, j] = 0.0
    return cost


def align_sequences(
    spoken: Sequence[str], reference: Sequence[str], free_reference_end: bool = False
) -> tuple[list[int | None], int]:
    """Edit-distance alignment of ``spoken`` to ``reference`` (or to a prefix of it).

    Returns, for each spoken item, the reference index it aligns with (None for an
    insertion), and the length of the reference prefix used.
    """
    n, m = len(spoken), len(reference)
    if n == 0:
        return [], 0
    if m == 0:
        return [None] * n, 0
    sub = _sub_costs(spoken, reference)
    # D[i, j]: cost of aligning spoken[:i] with reference[:j]; move codes for backtracking
    D = np.empty((n + 1, m + 1))
    move = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diag, 1 up (insert), 2 left (delete)
    D[0] = np.arange(m + 1) * GAP
    move[0, 1:] = 2
    cols = np.arange(m + 1) * GAP
    for i in range(1, n + 1):
        diag = np.full(m + 1, np.inf)
        diag[1:] = D[i - 1, :-1] + sub[i - 1]
        up = D[i - 1] + GAP
        best = np.minimum(diag, up)
        code = np.where(diag <= up, 0, 1).astype(np.int8)
        # left moves chain along the row: D[i, j] = min_k best[k] + (j - k) * GAP
        shifted = np.minimum.accumulate(best - cols) + cols
        left = shifted < best - 1e-12
        D[i] = np.where(left, shifted, best)
        move[i] = np.where(left, 2, code)
    end = int(np.argmin(D[n])) if free_reference_end else m
    out: list[int | None] = [None] * n
    i, j = n, end
    while i > 0:
        c = move[i, j] if j > 0 else 1
        if c == 0:
            out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif c == 1:
            i -= 1
        else:
            j -= 1
    return out, end


def assign_words(
    spoken: Sequence[str],
    word_phones: Sequence[Sequence[str]],
    free_end: bool = False,
) -> tuple[list[int], int]:
    """The word index of every spoken phone (non-decreasing), and how many words were used.

    ``word_phones`` holds the phones of each word said on its own. With ``free_end`` the
    spoken phones may cover only the first words (a sentence of a longer text).
    """
    reference: list[str] = []
    owner: list[int] = []
    boundaries = [0]
    for w, phones in enumerate(word_phones):
        reference.extend(phones)
        owner.extend([w] * len(phones))
        boundaries.append(len(reference))
    if not spoken:
        return [], 0
    if not reference:
        return [0] * len(spoken), min(1, len(word_phones))
    matched, used = align_sequences(spoken, reference, free_reference_end=free_end)
    if free_end:
        # end the sentence on a word boundary: the nearest one at or after the prefix used
        used = next((b for b in boundaries if b >= used), boundaries[-1])
        words_used = max(1, boundaries.index(used))
    else:
        words_used = len(word_phones)
    result: list[int] = []
    previous = None
    for k in matched:
        w = owner[k] if k is not None else previous
        result.append(w if w is not None else -1)
        if w is not None:
            previous = w
    first = next((w for w in result if w >= 0), 0)
    result = [first if w < 0 else w for w in result]
    result = list(np.maximum.accumulate(result)) if result else []
    return [int(min(w, words_used - 1)) for w in result], words_used

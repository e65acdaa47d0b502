"""Phonemes → visemes (the 15 Oculus/Meta visemes) and each viseme's mouth pose.

Accepts IPA (from the speech engines, ``"oʊ"``, ``"dʒ"``, ``"iː"``), ARPAbet (from the
aligner, ``"OW"``, ``"JH"``, ``"AH0"``) and silence (``"_"``, ``"SIL"``, ``""``).
Diphthongs become two visemes (``aɪ`` → ``aa`` then ``ih``); ``h`` and the glottal stop
take the shape of the sound after them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
CHANNELS = ("mouth_open", "lip_pucker", "smile", "lips_closed")
NEXT = "next"  # "take the viseme of the following phone"

# mouth_open (jaw), lip_pucker (rounding), smile (spread/wide), lips_closed (p/b/m)
POSES: dict[str, tuple[float, float, float, float]] = {
    "sil": (0.0, 0.0, 0.0, 0.0),
    "PP": (0.0, 0.15, 0.0, 1.0),
    "FF": (0.1, 0.0, 0.15, 0.35),
    "TH": (0.2, 0.0, 0.15, 0.0),
    "DD": (0.25, 0.0, 0.2, 0.0),
    "kk": (0.3, 0.0, 0.15, 0.0),
    "CH": (0.2, 0.6, 0.0, 0.0),
    "SS": (0.12, 0.0, 0.45, 0.0),
    "nn": (0.2, 0.0, 0.15, 0.0),
    "RR": (0.25, 0.45, 0.0, 0.0),
    "aa": (0.9, 0.0, 0.1, 0.0),
    "E": (0.55, 0.0, 0.45, 0.0),
    "ih": (0.35, 0.0, 0.6, 0.0),
    "oh": (0.6, 0.55, 0.0, 0.0),
    "ou": (0.3, 0.9, 0.0, 0.0),
}

# How strongly a viseme holds its shape against its neighbours (coarticulation):
# lip closures and lip-teeth contact must be reached, vowels and tongue sounds yield.
DOMINANCE: dict[str, float] = {
    "sil": 0.5, "PP": 3.0, "FF": 2.0, "TH": 1.2, "DD": 0.7, "kk": 0.6, "CH": 2.0,
    "SS": 1.5, "nn": 0.6, "RR": 1.2, "aa": 1.0, "E": 1.0, "ih": 1.0, "oh": 1.5, "ou": 2.0,
}

_IPA_CONSONANTS: dict[str, str] = {}
for _chars, _vis in (
    ("pbmɓʙɱ", "PP"), ("fvɸβʋ", "FF"), ("θð", "TH"), ("tdɾʈɖɗ", "DD"),
    ("kgɡqɢɣxχŋɴcɟʁʀ", "kk"), ("ʃʒɕʑʂʐç", "CH"), ("szʦʣ", "SS"), ("nlɫɲɳɬɮʎʟ", "nn"),
    ("ɹrɻɽ", "RR"), ("w", "ou"), ("jʝ", "ih"), ("hɦʔħʕ", NEXT),
):
    for _c in _chars:
        _IPA_CONSONANTS[_c] = _vis
_IPA_CONSONANTS.update({"ɥ": "ou", "ʍ": "ou", "ɰ": "ih"})

_IPA_VOWELS: dict[str, str] = {}
for _chars, _vis in (
    ("aɑɒæɐʌɶ", "aa"), ("eɛəɜɘœɞ", "E"), ("iɪyʏɨᵻ", "ih"), ("oɔɤɵø", "oh"), ("uʊɯʉ", "ou"),
):
    for _c in _chars:
        _IPA_VOWELS[_c] = _vis
_IPA_VOWELS["ɚ"] = "RR"
_IPA_VOWELS["ɝ"] = "RR"

_ARPABET: dict[str, tuple[str, ...]] = {
    "AA": ("aa",), "AE": ("aa",), "AH": ("aa",), "AO": ("oh",), "AW": ("aa", "ou"),
    "AX": ("E",), "AY": ("aa", "ih"), "EH": ("E",), "ER": ("RR",), "EY": ("E", "ih"),
    "IH": ("ih",), "IY": ("ih",), "OW": ("oh", "ou"), "OY": ("oh", "ih"), "UH": ("ou",),
    "UW": ("ou",), "B": ("PP",), "CH": ("CH",), "D": ("DD",), "DH": ("TH",), "F": ("FF",),
    "G": ("kk",), "HH": (NEXT,), "JH": ("CH",), "K": ("kk",), "L": ("nn",), "M": ("PP",),
    "N": ("nn",), "NG": ("kk",), "P": ("PP",), "R": ("RR",), "S": ("SS",), "SH": ("CH",),
    "T": ("DD",), "TH": ("TH",), "V": ("FF",), "W": ("ou",), "Y": ("ih",), "Z": ("SS",),
    "ZH": ("CH",),
}
_SILENCES = {"", "_", "sil", "SIL", "sp", "spn", "pau", "<sil>", "#", "|"}
_ARPABET_RE = re.compile(r"^([A-Z]{1,2})[0-2]?$")


def phoneme_to_visemes(phoneme: str) -> tuple[str, ...]:
    """Visemes for one phoneme: usually one, two for diphthongs, ``("next",)`` for h."""
    p = phoneme.strip()
    if p in _SILENCES or p.startswith("+") or p.startswith("["):
        return ("sil",)
    m = _ARPABET_RE.match(p)
    if m and m.group(1) in _ARPABET:
        return _ARPABET[m.group(1)]
    letters = [ch for ch in unicodedata.normalize("NFD", p)
               if not unicodedata.combining(ch) and unicodedata.category(ch) != "Lm"]
    out: list[str] = []
    for ch in letters:
        ch = ch.lower() if ch.isascii() else ch
        vis = _IPA_VOWELS.get(ch) or _IPA_CONSONANTS.get(ch)
        if vis is None:
            continue
        if not out or out[-1] != vis:
            out.append(vis)
    if len(out) > 2:
        out = [out[0], out[-1]]
    if len(out) == 2 and out[0] in _IPA_CONSONANTS.values() and out[0] not in _IPA_VOWELS.values():
        # an affricate such as "dʒ"/"tʃ": the second part shapes the lips
        out = [out[-1]]
    return tuple(out) or ("sil",)


@dataclass(frozen=True)
class VisemeSpan:
    viseme: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def visemes_from_phones(phones: Sequence[tuple[str, float, float]]) -> list[VisemeSpan]:
    """Viseme spans from ``(phoneme, start, end)``; diphthongs split 60/40; ``h`` takes
    the viseme after it; neighbouring equal visemes merge."""
    spans: list[list] = []
    pending: list[tuple[float, float]] = []  # "next" phones waiting for a shape
    for phoneme, start, end in phones:
        vis = phoneme_to_visemes(phoneme)
        if vis == (NEXT,):
            pending.append((start, end))
            continue
        parts: list[tuple[str, float, float]]
        if len(vis) == 2:
            mid = start + 0.6 * (end - start)
            parts = [(vis[0], start, mid), (vis[1], mid, end)]
        else:
            parts = [(vis[0], start, end)]
        for s, e in pending:  # h, ʔ: the mouth already makes the next sound
            parts.insert(0, (parts[0][0] if parts[0][0] != "sil" else "E", s, e))
        pending = []
        for v, s, e in parts:
            if spans and spans[-1][0] == v and abs(spans[-1][2] - s) < 1e-6:
                spans[-1][2] = e
            else:
                spans.append([v, s, e])
    for s, e in pending:
        spans.append(["sil", s, e])
    spans.sort(key=lambda x: x[1])
    return [VisemeSpan(v, s, e) for v, s, e in spans if e > s]

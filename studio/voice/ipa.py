"""IPA helpers: split phoneme strings into phones, words of a text, IPA → ARPAbet."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

STRESS = "ˈˌ"
TIES = "\u0361\u035c"  # combining double inverted breve / double breve below
MULTI_UNITS = frozenset({"aɪ", "aʊ", "eɪ", "oʊ", "ɔɪ", "əʊ", "dʒ", "tʃ"})
VOWELS = frozenset("aeiouyæøœɐɑɒɔəɘɚɛɜɝɞɤɨɪɯɵɶʉʊʌʏᵻ")
PUNCTUATION = frozenset(".,;:!?¡¿—–-…\"'()«»“”„")

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def is_modifier(ch: str) -> bool:
    """A character that belongs to the phone before it (length mark, diacritic)."""
    if ch in STRESS:
        return False
    return bool(unicodedata.combining(ch)) or unicodedata.category(ch) == "Lm"


def base(unit: str) -> str:
    """A phone without its length marks and diacritics (``"iː"`` → ``"i"``)."""
    return "".join(ch for ch in unicodedata.normalize("NFD", unit) if not is_modifier(ch)
                   and ch not in TIES)


def is_vowel(unit: str) -> bool:
    b = base(unit)
    return bool(b) and b[0] in VOWELS


def merge_symbols(
    symbols: Sequence[tuple[str, float, float]],
) -> list[tuple[str, float, float]]:
    """Group single IPA symbols with times into phones.

    Stress marks are dropped and their time goes to the phone after them; length marks and
    diacritics join the phone before them (with their time); tie bars join two symbols;
    known diphthongs and affricates (``aɪ``, ``oʊ``, ``dʒ`` ...) become one phone.
    """
    units: list[list] = []  # [text, start, end]
    carry: tuple[float, float] | None = None  # time of a pending stress mark
    join_next = False
    for sym, start, end in symbols:
        sym = unicodedata.normalize("NFD", sym)
        if not sym:
            continue
        if all(ch in STRESS for ch in sym):
            carry = (carry[0], end) if carry else (start, end)
            continue
        sym = "".join(ch for ch in sym if ch not in STRESS)
        if units and (join_next or all(is_modifier(ch) or ch in TIES for ch in sym)):
            units[-1][0] += sym
            units[-1][2] = end
            join_next = sym[-1] in TIES
            continue
        join_next = sym[-1] in TIES
        if carry is not None:
            start = carry[0]
            carry = None
        units.append([sym, start, end])
    if carry is not None and units:
        units[-1][2] = carry[1]
    merged: list[list] = []
    for unit in units:
        if merged and base(merged[-1][0]) + base(unit[0]) in MULTI_UNITS and not is_modifier(
            unicodedata.normalize("NFD", merged[-1][0])[-1]
        ):
            merged[-1][0] += unit[0]
            merged[-1][2] = unit[2]
        else:
            merged.append(unit)
    return [(unicodedata.normalize("NFC", u), float(s), float(e)) for u, s, e in merged]


def split_ipa(text: str) -> list[str]:
    """``"dˈɪdʒɪtəl"`` → ``["d", "ɪ", "dʒ", "ɪ", "t", "ə", "l"]`` (spaces and punctuation
    dropped)."""
    symbols = [
        (ch, 0.0, 0.0)
        for ch in unicodedata.normalize("NFD", text)
        if not ch.isspace() and ch not in PUNCTUATION
    ]
    return [u for u, _, _ in merge_symbols(symbols)]


def tokenize_words(text: str) -> list[tuple[str, int, int]]:
    """Words of ``text`` with their character spans: letters/digits with inner
    apostrophes (``don't``); punctuation and hyphens separate words."""
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


# ----------------------------------------------------------------------- IPA → ARPAbet

_ARPABET = {
    # vowels
    "i": "IY", "ɪ": "IH", "ᵻ": "IH", "ɨ": "IH", "e": "EY", "eɪ": "EY", "ɛ": "EH",
    "æ": "AE", "a": "AA", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO", "o": "OW", "oʊ": "OW",
    "əʊ": "OW", "ʊ": "UH", "u": "UW", "ʉ": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
    "ɚ": "ER", "ɜ": "ER", "ɝ": "ER", "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY", "y": "UW",
    "ø": "ER", "œ": "EH", "ɘ": "AH", "ɵ": "OW", "ɤ": "UH", "ɯ": "UW", "ʏ": "IH",
    # consonants
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "ɡ": "G", "f": "F",
    "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH",
    "tʃ": "CH", "dʒ": "JH", "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "ɹ": "R",
    "r": "R", "ɾ": "T", "w": "W", "j": "Y", "ʔ": "T", "x": "K", "ç": "HH", "ɲ": "N",
    "ʎ": "L", "ʁ": "R", "ʀ": "R", "ɣ": "G", "β": "V", "ɸ": "F", "ʋ": "V", "c": "K",
    "ɟ": "G", "ts": "T S", "ɬ": "SH",
}


def ipa_to_arpabet(units: Sequence[str]) -> list[str]:
    """IPA phones → ARPAbet phones of the CMU dictionary (unknown phones are skipped)."""
    out: list[str] = []
    for unit in units:
        b = base(unit)
        arpa = _ARPABET.get(b)
        if arpa is None:
            arpa = " ".join(_ARPABET[ch] for ch in b if ch in _ARPABET) or None
        if arpa:
            out.extend(arpa.split())
    return out

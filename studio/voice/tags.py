"""Inline tags in the text to speak: pauses and emphasis.

A small syntax, the same for every voice::

    Pauses      [pause 500ms]   [pause 1.5s]   [pause 2]       (a bare number is seconds)
                <break time="500ms"/>   <break time="1s"/>
                <break strength="weak|medium|strong|x-strong"/>   <break/> (= medium)
    Emphasis    *these words*   or   <emphasis>these words</emphasis>
    Literals    \\*  \\[  \\<  \\\\    (a backslash makes the next character plain text)

A ``*`` only opens emphasis when a non-space follows it and only closes it when a non-space
precedes it, and only when it has a partner; a lone ``*`` (``2 * 3``) is plain text. Other
bracketed text (``[laughs]``, ``<b>``) is plain text. A malformed pause
(``[pause soon]``) is an error that says where it is. A pause is at most :data:`MAX_PAUSE`
seconds (pauses next to each other merge, up to that), and all the pauses of a text add up
to at most :data:`MAX_TOTAL_PAUSE` seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from studio.core.errors import StudioError

MAX_PAUSE = 30.0
MAX_TOTAL_PAUSE = 600.0
"""All the pauses of one text together, seconds (10 minutes of silence)."""
BREAK_STRENGTHS = {
    "none": 0.0,
    "x-weak": 0.1,
    "weak": 0.2,
    "medium": 0.4,
    "strong": 0.7,
    "x-strong": 1.2,
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*$", re.IGNORECASE)
_PAUSE = re.compile(r"\[\s*pause\b([^\]]*)\]", re.IGNORECASE)
_BREAK = re.compile(r"<\s*break\b([^<>]*?)/?\s*>", re.IGNORECASE)
_ATTR = re.compile(r"""([a-zA-Z_-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'/>]+))""")
_EMPH_OPEN = re.compile(r"<\s*emphasis\b[^<>]*?>", re.IGNORECASE)
_EMPH_CLOSE = re.compile(r"<\s*/\s*emphasis\s*>", re.IGNORECASE)


class TagError(StudioError):
    """A malformed inline tag in the text to speak."""


@dataclass(frozen=True)
class Pause:
    """Silence of ``seconds``."""

    seconds: float


@dataclass
class TextRun:
    """Text to speak; ``emphasis`` holds ``(start, end)`` character spans of ``text``."""

    text: str
    emphasis: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class ParsedText:
    parts: list[TextRun | Pause]

    @property
    def plain(self) -> str:
        """The words only, without tags (pauses become a space)."""
        return " ".join(p.text.strip() for p in self.parts if isinstance(p, TextRun)).strip()

    @property
    def total_pause(self) -> float:
        return sum(p.seconds for p in self.parts if isinstance(p, Pause))


def parse_duration(spec: str, where: str = "") -> float:
    """``"500ms"`` → 0.5, ``"1.5s"`` → 1.5, ``"2"`` → 2.0 (seconds)."""
    m = _DURATION.match(spec)
    if not m:
        raise TagError(
            f"bad pause length {spec.strip()!r}{where}: use a length like 500ms, 1.5s or 2"
        )
    value = float(m.group(1))
    if (m.group(2) or "s").lower() == "ms":
        value /= 1000.0
    if value > MAX_PAUSE:
        raise TagError(f"pause of {value:g} s{where} is longer than {MAX_PAUSE:g} s")
    return value


def _break_seconds(attrs: str, where: str) -> float:
    values = {}
    for m in _ATTR.finditer(attrs):
        values[m.group(1).lower()] = next(g for g in m.groups()[1:] if g is not None)
    if "time" in values:
        return parse_duration(values["time"], where)
    strength = values.get("strength", "medium").lower()
    if strength not in BREAK_STRENGTHS:
        raise TagError(
            f"bad break strength {strength!r}{where}: use one of {', '.join(BREAK_STRENGTHS)}"
        )
    return BREAK_STRENGTHS[strength]


def _tokens(text: str) -> list[tuple[str, object]]:
    """Split into ('c', char) / ('pause', (seconds, index)) / ('on'|'off', None) /
    ('star', None) tokens."""
    tokens: list[tuple[str, object]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        where = f" at character {i + 1}"
        if ch == "\\" and i + 1 < n:
            tokens.append(("c", text[i + 1]))
            i += 2
            continue
        if ch == "[":
            m = _PAUSE.match(text, i)
            if m:
                tokens.append(("pause", (parse_duration(m.group(1), where), i)))
                i = m.end()
                continue
        elif ch == "<":
            m = _BREAK.match(text, i)
            if m:
                tokens.append(("pause", (_break_seconds(m.group(1), where), i)))
                i = m.end()
                continue
            m = _EMPH_OPEN.match(text, i)
            if m:
                tokens.append(("on", None))
                i = m.end()
                continue
            m = _EMPH_CLOSE.match(text, i)
            if m:
                tokens.append(("off", None))
                i = m.end()
                continue
        elif ch == "*":
            tokens.append(("star", None))
            i += 1
            continue
        tokens.append(("c", ch))
        i += 1
    return _pair_stars(tokens)


def _pair_stars(tokens: list[tuple[str, object]]) -> list[tuple[str, object]]:
    def neighbour_is_text(j: int) -> bool:
        return 0 <= j < len(tokens) and tokens[j][0] == "c" and not str(tokens[j][1]).isspace()

    out = list(tokens)
    opened: int | None = None
    for j, (kind, _) in enumerate(tokens):
        if kind != "star":
            continue
        if opened is not None and neighbour_is_text(j - 1):
            out[opened] = ("on", None)
            out[j] = ("off", None)
            opened = None
        elif neighbour_is_text(j + 1):
            opened = j
    return [("c", "*") if kind == "star" else (kind, val) for kind, val in out]


def parse_tags(text: str) -> ParsedText:
    """Split ``text`` into runs of words (with emphasis spans) and pauses."""
    parts: list[TextRun | Pause] = []
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    emph_depth = 0
    emph_start = 0
    total_pause = 0.0

    def close_span() -> None:
        if emph_depth > 0 and len(chars) > emph_start:
            spans.append((emph_start, len(chars)))

    def flush() -> None:
        nonlocal chars, spans, emph_start
        close_span()
        run = "".join(chars)
        if run.strip():
            parts.append(TextRun(run, _trim_spans(run, spans)))
        chars, spans, emph_start = [], [], 0

    for kind, value in _tokens(text):
        if kind == "c":
            chars.append(str(value))
        elif kind == "pause":
            flush()
            seconds, at = value  # type: ignore[misc]
            if parts and isinstance(parts[-1], Pause):
                merged = min(parts[-1].seconds + seconds, MAX_PAUSE)
                total_pause += merged - parts[-1].seconds
                parts[-1] = Pause(merged)
            elif seconds > 0:
                total_pause += seconds
                parts.append(Pause(seconds))
            if total_pause > MAX_TOTAL_PAUSE:
                raise TagError(
                    f"the pauses add up to more than {MAX_TOTAL_PAUSE:g} s "
                    f"(at character {at + 1}): leave some out or split the text"
                )
        elif kind == "on":
            if emph_depth == 0:
                emph_start = len(chars)
            emph_depth += 1
        elif kind == "off" and emph_depth > 0:
            emph_depth -= 1
            if emph_depth == 0:
                spans.append((emph_start, len(chars)))
    flush()
    return ParsedText(parts)


def _trim_spans(run: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop whitespace at the edges of spans and empty spans; merge overlaps."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        while a < b and run[a].isspace():
            a += 1
        while b > a and run[b - 1].isspace():
            b -= 1
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def strip_tags(text: str) -> str:
    """The text without tags, as it would be spoken."""
    return parse_tags(text).plain

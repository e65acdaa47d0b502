"""Voice settings: how a voice speaks (speed, pitch, timbre, expressiveness, loudness)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from studio.core.errors import StudioError

# name: (minimum, maximum, meaning)
LIMITS: dict[str, tuple[float, float, str]] = {
    "rate": (0.25, 4.0, "speaking speed, 1 = the voice's natural speed"),
    "pitch": (-12.0, 12.0, "pitch shift in semitones (duration and timings kept)"),
    "formant": (-6.0, 6.0, "formant/timbre shift in semitones: + smaller/brighter, - larger/darker"),
    "expressiveness": (0.0, 2.0, "prosody variation, 1 = the voice's default"),
    "volume": (0.0, 4.0, "loudness, 1 = peaks at -1 dBFS"),
    "sentence_pause": (0.0, 5.0, "extra silence between sentences, seconds"),
    "emphasis_gain_db": (0.0, 12.0, "loudness boost of emphasised words, dB"),
}


@dataclass(frozen=True)
class VoiceSettings:
    """How to speak. Immutable and hashable, so it can be part of a cache key."""

    rate: float = 1.0
    pitch: float = 0.0
    formant: float = 0.0
    expressiveness: float = 1.0
    volume: float = 1.0
    sentence_pause: float = 0.0
    emphasis_gain_db: float = 4.0
    speaker: int | None = None  # multi-speaker piper voices

    def __post_init__(self) -> None:
        for name, (lo, hi, meaning) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise StudioError(f"voice setting {name} must be a number ({meaning})")
            if not math.isfinite(value) or not lo <= value <= hi:
                raise StudioError(
                    f"voice setting {name}={value} is out of range {lo}..{hi} ({meaning})"
                )
            object.__setattr__(self, name, float(value))
        if self.speaker is not None and (
            isinstance(self.speaker, bool) or not isinstance(self.speaker, int) or self.speaker < 0
        ):
            raise StudioError(f"voice setting speaker must be a speaker number, got {self.speaker!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoiceSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudioError(f"unknown voice settings: {', '.join(unknown)}")
        return cls(**data)

    def key(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

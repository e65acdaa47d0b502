"""Natural eye blinks: seeded random intervals plus a blink after most sentences.

People blink every 2–6 s at rest (intervals skewed towards the short end) and tend to
blink at the end of a sentence. A blink closes the lids fast and opens them slower,
100–250 ms in all. Output: the ``blink`` channel, 0 = open, 1 = closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.animate.curves import Curve, make_key, make_track

BLINK_CHANNEL = "blink"


@dataclass(frozen=True)
class BlinkSettings:
    seed: int = 0
    min_interval: float = 2.0  # seconds between blinks
    max_interval: float = 6.0
    min_duration: float = 0.10  # seconds, closing + opening
    max_duration: float = 0.25
    sentence_blink_chance: float = 0.8  # blink after a sentence end
    sentence_delay: tuple[float, float] = (0.05, 0.3)  # seconds after the end
    min_gap: float = 1.2  # no two blinks closer than this (seconds, start to start)


@dataclass(frozen=True)
class Blink:
    start: float
    duration: float


def blink_schedule(
    duration: float, sentence_ends: Sequence[float] = (), settings: BlinkSettings | None = None
) -> list[Blink]:
    """When to blink over ``duration`` seconds; the same seed gives the same blinks."""
    s = settings or BlinkSettings()
    rng = np.random.default_rng(s.seed)
    mean = 0.5 * (s.min_interval + s.max_interval)

    def interval() -> float:
        # gamma-shaped (right-skewed) around the mean, kept inside the range
        return float(np.clip(rng.gamma(4.0, (mean - s.min_interval) / 4.0) + s.min_interval,
                             s.min_interval, s.max_interval))

    candidates = sorted(
        e + rng.uniform(*s.sentence_delay)
        for e in sentence_ends
        if rng.random() < s.sentence_blink_chance
    )
    blinks: list[Blink] = []
    next_random = float(rng.uniform(0.4, s.min_interval))
    last = -np.inf
    i = 0
    while True:
        while i < len(candidates) and candidates[i] < last + s.min_gap:
            i += 1
        candidate = candidates[i] if i < len(candidates) else np.inf
        if next_random < candidate < next_random + s.min_gap:
            next_random = candidate  # the blink at the sentence end replaces this one
        t = min(candidate, next_random)
        if t + s.min_duration > duration:
            break
        if t < last + s.min_gap:
            next_random = last + s.min_gap
            continue
        length = float(rng.uniform(s.min_duration, s.max_duration))
        blinks.append(Blink(float(t), min(length, duration - t)))
        last = t
        if t == candidate:
            i += 1
        next_random = t + interval()
    return blinks


def blink_keys(blinks: Sequence[Blink], duration: float) -> list[dict[str, Any]]:
    keys = [make_key(0.0, 0.0, "smooth")]
    for b in blinks:
        close = b.start + 0.35 * b.duration  # lids fall fast ...
        hold = b.start + 0.45 * b.duration
        end = b.start + b.duration  # ... and rise slower
        if b.start > keys[-1]["t"]:
            keys.append(make_key(b.start, 0.0, "smooth"))
        keys += [make_key(close, 1.0, "smooth"), make_key(hold, 1.0, "smooth"),
                 make_key(end, 0.0, "smooth")]
    if duration > keys[-1]["t"]:
        keys.append(make_key(duration, 0.0, "smooth"))
    return keys


def blink_track(
    duration: float, sentence_ends: Sequence[float] = (), settings: BlinkSettings | None = None
) -> Curve:
    """The ``blink`` curve track for a clip of ``duration`` seconds."""
    return make_track(BLINK_CHANNEL, blink_keys(blink_schedule(duration, sentence_ends, settings),
                                                duration))

"""Small head motion that follows the speech: sway while talking, nods on stressed words.

Three channels, ``head_yaw`` (+ turns to the face's left), ``head_pitch`` (+ tilts down,
as in a nod) and ``head_roll`` (+ tilts towards the face's left shoulder), in normalised
control units (±1 is the face control's full range; speech motion stays within about
±0.1). Each is
slow, smooth noise (a few sinusoids of 0.1–0.7 Hz with seeded random phases) whose
amplitude follows the speech energy (an idle fraction remains in pauses), plus short
downward nods of ``head_pitch`` at emphasised words and at phrase onsets after a pause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.animate.curves import Curve, track_from_samples

HEAD_CHANNELS = ("head_yaw", "head_pitch", "head_roll")
NOD_REACH = 1.0  # seconds around its peak a nod is added (10 sigma)


@dataclass(frozen=True)
class HeadSettings:
    seed: int = 0
    amount: float = 1.0  # overall scale
    idle: float = 0.3  # motion left in pauses, as a fraction of speaking motion
    yaw: float = 0.08  # peak amplitudes while speaking (normalised units)
    pitch: float = 0.05
    roll: float = 0.035
    nod: float = 0.06  # depth of a nod
    fps: float = 25.0
    tolerance: float = 0.002


def _smooth_noise(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    freqs = rng.uniform(0.1, 0.7, size=3)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    weights = np.array([1.0, 0.6, 0.35])
    x = sum(w * np.sin(2 * np.pi * f * t + p) for w, f, p in zip(weights, freqs, phases,
                                                               strict=True))
    return x / weights.sum()


def _follow(values: np.ndarray, fps: float, attack: float = 0.15, release: float = 0.6):
    """One-pole envelope follower (fast up, slow down)."""
    out = np.empty_like(values)
    a_up = 1 - np.exp(-1 / (attack * fps))
    a_down = 1 - np.exp(-1 / (release * fps))
    level = 0.0
    for i, v in enumerate(values):
        level += (a_up if v > level else a_down) * (v - level)
        out[i] = level
    return out


def head_tracks(
    duration: float,
    energy_times: np.ndarray,
    energy: np.ndarray,
    accents: Sequence[float] = (),
    settings: HeadSettings | None = None,
) -> list[Curve]:
    """Tracks for the three head channels. ``energy`` (0..1) is sampled at
    ``energy_times``; ``accents`` are times of nods (emphasis, phrase onsets)."""
    s = settings or HeadSettings()
    rng = np.random.default_rng(s.seed)
    n = max(2, int(np.ceil(duration * s.fps)) + 1)
    t = np.linspace(0.0, duration, n)
    e = np.interp(t, energy_times, energy) if len(energy_times) else np.zeros(n)
    envelope = s.idle + (1 - s.idle) * np.clip(_follow(e, s.fps), 0, 1)
    tracks = []
    for channel, amp in zip(HEAD_CHANNELS, (s.yaw, s.pitch, s.roll), strict=True):
        values = amp * envelope * _smooth_noise(rng, t)
        if channel == "head_pitch":
            for a in accents:  # a nod: down and back up over ~0.4 s
                # only within 1 s of its peak (beyond, exp(-50) of it is left): linear work
                lo = int(np.searchsorted(t, a + 0.12 - NOD_REACH, side="left"))
                hi = int(np.searchsorted(t, a + 0.12 + NOD_REACH, side="right"))
                values[lo:hi] += s.nod * np.exp(-0.5 * ((t[lo:hi] - (a + 0.12)) / 0.1) ** 2)
        values *= s.amount
        tracks.append(track_from_samples(channel, t, values, s.tolerance * max(s.amount, 1e-3),
                                         "smooth"))
    return tracks

"""A speaking performance: mouth, blinks and head motion as timeline curve tracks.

``animate_speech`` takes phoneme timings (from a speech engine or the aligner), and
optionally the audio, words and sentence ends, and returns curves
(:class:`~studio.animate.curves.Curve`, one per channel) for the timeline. ``animate_audio`` does the same from the sound alone (no transcript). Each
part can be switched off in :class:`AnimationSettings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.animate.audio_mouth import audio_mouth_tracks, speech_energy
from studio.animate.blink import BlinkSettings, blink_track
from studio.animate.curves import Curve
from studio.animate.head import HeadSettings, head_tracks
from studio.animate.lipsync import LipSyncSettings, check_duration, lipsync_tracks
from studio.animate.visemes import phoneme_to_visemes, visemes_from_phones

CURVES_FORMAT = "studio.curves"
CURVES_VERSION = 1


@dataclass(frozen=True)
class AnimationSettings:
    lipsync: bool = True
    blinks: bool = True
    head_motion: bool = True
    lip: LipSyncSettings = field(default_factory=LipSyncSettings)
    blink: BlinkSettings = field(default_factory=BlinkSettings)
    head: HeadSettings = field(default_factory=HeadSettings)


def _triples(items: Iterable[Any], label: str) -> list[tuple[str, float, float]]:
    """(label, start, end) from objects with attributes, dicts, or tuples."""
    out = []
    for item in items:
        if isinstance(item, Mapping):
            out.append((str(item[label]), float(item["start"]), float(item["end"])))
        elif isinstance(item, (tuple, list)):
            out.append((str(item[0]), float(item[1]), float(item[2])))
        else:
            out.append((str(getattr(item, label)), float(item.start), float(item.end)))
    return out


def _energy_from_phones(phones: Sequence[tuple[str, float, float]], duration: float):
    t = np.arange(0.0, duration + 0.01, 0.01)
    e = np.zeros_like(t)
    for p, s, end in phones:
        if phoneme_to_visemes(p) != ("sil",):  # e[(t >= s) & (t < end)], in linear time
            e[np.searchsorted(t, s, side="left") : np.searchsorted(t, end, side="left")] = 1.0
    return t, e


def _accents(phones, words, emphasis_flags) -> list[float]:
    """Times to nod: emphasised words and the first word after a pause of 250 ms+."""
    out = [s for (_, s, _), emph in zip(words, emphasis_flags, strict=False) if emph]
    speech = [(s, e) for p, s, e in phones if phoneme_to_visemes(p) != ("sil",)]
    for (_, e0), (s1, _) in zip(speech, speech[1:], strict=False):
        if s1 - e0 >= 0.25:
            out.append(s1)
    if speech:
        out.append(speech[0][0])
    return sorted(out)


def animate_speech(
    phonemes: Iterable[Any],
    duration: float | None = None,
    *,
    words: Iterable[Any] = (),
    sentence_ends: Sequence[float] = (),
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    settings: AnimationSettings | None = None,
) -> list[Curve]:
    """Curve tracks (mouth, visemes, blink, head) for speech with these timings."""
    s = settings or AnimationSettings()
    phones = _triples(phonemes, "phoneme")
    word_list = list(words)
    word_triples = _triples(word_list, "word")
    emphasis = [bool(w.get("emphasis", False)) if isinstance(w, Mapping)
                else bool(getattr(w, "emphasis", False)) for w in word_list]
    if duration is None:
        if audio is not None and sample_rate:
            duration = len(audio) / sample_rate
        else:
            duration = max([e for _, _, e in phones] + [e for _, _, e in word_triples] + [0.0])
    duration = float(duration)
    check_duration(duration)  # at most 3 h, whichever parts are on
    tracks: list[Curve] = []
    if s.lipsync:
        tracks += lipsync_tracks(visemes_from_phones(phones), duration, s.lip)
    if s.blinks:
        ends = list(sentence_ends) or ([word_triples[-1][2]] if word_triples else [])
        tracks.append(blink_track(duration, ends, s.blink))
    if s.head_motion:
        if audio is not None and sample_rate:
            et, _, loud = speech_energy(audio, sample_rate)
        else:
            et, loud = _energy_from_phones(phones, duration)
        tracks += head_tracks(duration, et, loud, _accents(phones, word_triples, emphasis), s.head)
    return tracks


def animate_audio(
    audio: np.ndarray, sample_rate: int, settings: AnimationSettings | None = None
) -> list[Curve]:
    """Curve tracks from a recording without a transcript: an audio-driven mouth,
    blinks and head motion."""
    s = settings or AnimationSettings()
    duration = len(audio) / sample_rate
    check_duration(duration)
    tracks: list[Curve] = []
    et, _, loud = speech_energy(audio, sample_rate)
    if s.lipsync:
        tracks += audio_mouth_tracks(audio, sample_rate, s.lip.intensity, s.lip.tolerance)
    if s.blinks:
        tracks.append(blink_track(duration, _pause_starts(et, loud), s.blink))
    if s.head_motion:
        onsets = [et[i] for i in range(1, len(loud)) if loud[i] > 0.3 >= loud[i - 1]]
        tracks += head_tracks(duration, et, loud, onsets, s.head)
    return tracks


def _pause_starts(t: np.ndarray, loud: np.ndarray, min_pause: float = 0.3) -> list[float]:
    """Where the speech stops for at least ``min_pause`` seconds (stand-ins for sentence
    ends when there is no text)."""
    quiet = loud < 0.15
    out = []
    i = 0
    while i < len(quiet):
        if quiet[i] and i > 0 and not quiet[i - 1]:
            j = i
            while j < len(quiet) and quiet[j]:
                j += 1
            if j >= len(quiet) or t[j - 1] - t[i] >= min_pause:
                out.append(float(t[i]))
            i = j
        else:
            i += 1
    return out


def curves_document(tracks: Sequence[Any], duration: float) -> dict[str, Any]:
    """The JSON document ``studio lipsync`` / ``studio speak --curves`` write (``tracks``:
    :class:`~studio.animate.curves.Curve` objects, as the functions above return)."""
    from studio.animate.curves import curve_documents

    return {"format": CURVES_FORMAT, "version": CURVES_VERSION,
            "duration": round(float(duration), 6), "tracks": curve_documents(tracks)}

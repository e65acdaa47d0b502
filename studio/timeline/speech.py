"""Speech on the timeline: the jobs that make it and the one undoable edit that adds it.

The jobs run on a worker thread (the GUI) or under the CLI's progress bar: they synthesise
(or load and align) the speech, write its audio into the project's ``audio/`` folder and
compute the animation curves. :func:`add_speech_command` then makes one undo step that adds
the clip, its curves and the longer timeline together. The GUI's "Add to timeline" and
``studio timeline add-speech`` both go through :func:`speech_to_timeline_job` and
:func:`add_speech_command`.

How the new curves merge with the timeline (kept simple on purpose):

- the clip goes at ``at`` seconds, by default the current end of the timeline's clips;
- the curves, generated from 0, are shifted to the clip's start;
- a channel the timeline already has keeps its keys outside the clip's time range
  ``[start, start + duration]`` and gets the new keys inside it (old keys inside are
  replaced); a channel it lacks gets a new track; a locked track is left alone;
- the timeline's duration grows to the end of the clip (rounded up to a frame) if shorter.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from studio.animate.curves import Curve
from studio.core.errors import StudioError
from studio.core.history import Batch, Command, SetValue
from studio.core.jobs import JobContext, Progress
from studio.core.project import Clip, CurveTrack, Key, Timeline, VoiceSettings
from studio.timeline.commands import CLIPS, TRACKS, AddClip, HasProject, TimelineCommand
from studio.timeline.curves import (
    clips_end,
    find_track,
    keys_from_curve,
    next_clip_id,
    next_key_id,
    next_track_id,
)
from studio.voice.types import SpeechResult

AUDIO_FOLDER = "audio"
MAX_TRACKS = 4096


@dataclass
class SpeechForTimeline:
    """What a job hands back to put on the timeline."""

    kind: Literal["speech", "audio"]
    speech: SpeechResult  # audio + timings (no phonemes for an unaligned recording)
    audio_rel: str  # path of the audio file relative to the project folder
    curves: list[Curve]  # from 0 s
    text: str = ""
    note: str = ""  # something the user should know (e.g. alignment fell back)
    extra: dict[str, Any] = field(default_factory=dict)


def voice_spec(voice: VoiceSettings) -> str:
    """The voice name for :func:`studio.voice.voices.resolve_voice` ("default" is the shipped one)."""
    return voice.voice or "default"


# ----------------------------------------------------------------------------- jobs


def animate(speech: SpeechResult) -> list[Curve]:
    """Lip-sync, blink and head curves for speech with timings."""
    from studio.animate import animate_speech

    return animate_speech(
        speech.phonemes, speech.duration, words=speech.words,
        sentence_ends=speech.sentence_ends, audio=speech.audio,
        sample_rate=speech.sample_rate,
    )


def speech_to_timeline_job(
    ctx: JobContext,
    text: str,
    voice: str,
    settings: VoiceSettings,
    project_dir: Path,
    voice_folders: Sequence[Path] = (),
) -> Generator[Progress, None, SpeechForTimeline]:
    """Synthesise ``text``, write it as WAV under ``project_dir/audio``, animate it."""
    from studio.voice.audio_io import save_audio
    from studio.voice.jobs import speak_job

    speech = yield from speak_job(ctx, text, voice, settings, voice_folders=voice_folders)
    ctx.check()
    yield Progress(0.9, "writing the audio")
    digest = hashlib.sha1(np.ascontiguousarray(speech.audio).tobytes()).hexdigest()[:12]
    rel = f"{AUDIO_FOLDER}/speech-{digest}.wav"
    target = project_dir / rel
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            save_audio(target, speech.audio, speech.sample_rate)  # atomic
        except OSError as exc:
            raise StudioError(f"cannot write the speech audio ({exc.strerror or exc})",
                              target) from None
    _save_timings(target, speech)
    yield Progress(0.95, "animating the mouth")
    curves = animate(speech)
    return SpeechForTimeline("speech", speech, rel, curves, text=text)


def timings_path(audio: Path) -> Path:
    """Where the phoneme and word timings of a clip's audio are kept: next to it."""
    return audio.with_name(audio.name + ".timings.json")


def _save_timings(audio: Path, speech: SpeechResult) -> None:
    """The timings next to the audio (the timeline draws the clip's phonemes from them);
    a failure to write them costs only the labels."""
    from studio.voice.types import save_timings

    if speech.phonemes and not timings_path(audio).exists():
        with contextlib.suppress(OSError, StudioError):
            save_timings(timings_path(audio), speech)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def copy_into_project(source: Path, project_dir: Path) -> str:
    """Copy a recording into ``project_dir/audio`` (reusing an identical copy); the
    relative path. A file already inside the project folder is used where it is."""
    source = source.resolve()
    root = project_dir.resolve()
    if root in source.parents:
        return source.relative_to(root).as_posix()
    folder = root / AUDIO_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem, suffix = source.stem, source.suffix.lower()
        for n in range(1, 10_000):
            name = f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}"
            target = folder / name
            if target.exists():
                if _same_file(source, target):
                    return f"{AUDIO_FOLDER}/{name}"
                continue
            temp = folder / f".{name}.part"
            shutil.copyfile(source, temp)
            os.replace(temp, target)
            return f"{AUDIO_FOLDER}/{name}"
    except OSError as exc:
        raise StudioError(f"cannot copy the recording into the project ({exc.strerror or exc})",
                          source) from None
    raise StudioError("too many recordings with this name in the project", source)


def recording_to_timeline_job(
    ctx: JobContext, path: Path, transcript: str, project_dir: Path
) -> Generator[Progress, None, SpeechForTimeline]:
    """Load a recording, align it to ``transcript`` (if any), copy it into the project."""
    from studio.animate import animate_audio
    from studio.voice.audio_io import load_audio
    from studio.voice.jobs import align_job

    path = Path(path)
    yield Progress(0.0, f"reading {path.name}")
    clip = load_audio(path)  # FileFormatError naming the file when it is broken
    ctx.check()
    note = ""
    speech = SpeechResult(clip.audio, clip.sample_rate, [], [], voice="recording")
    curves: list[Curve] | None = None
    if transcript.strip():
        try:
            aligned = yield from align_job(ctx, clip.audio, transcript, clip.sample_rate)
        except StudioError as exc:
            note = (f"Could not align the transcript ({exc}); "
                    "the mouth follows the sound instead.")
        else:
            speech = SpeechResult(clip.audio, clip.sample_rate, aligned.phonemes,
                                  aligned.words, aligned.sentence_ends, voice="recording")
            curves = animate(speech)
    if curves is None:
        yield Progress(0.8, "animating the mouth from the sound")
        curves = animate_audio(clip.audio, clip.sample_rate)
    ctx.check()
    yield Progress(0.95, "copying the recording into the project")
    rel = copy_into_project(path, project_dir)
    return SpeechForTimeline("audio", speech, rel, curves, text=transcript.strip(), note=note)


# ----------------------------------------------------------------------- timeline edit


class MergeCurves(TimelineCommand):
    """Put ``curves`` (keys from 0) on the timeline at ``start`` for ``duration`` seconds
    (see the module doc). ``skipped`` names the locked channels left alone."""

    _paths = (TRACKS,)

    def __init__(self, curves: Sequence[Curve], start: float, duration: float,
                 label: str = "Add curves") -> None:
        self.curves = list(curves)
        self.start, self.end = float(start), float(start) + float(duration)
        self.label = label
        self.skipped: list[str] = []
        self._after: tuple[list[CurveTrack], dict[str, tuple[Key, ...]]] | None = None

    def _plan(self, target: HasProject) -> tuple[list[CurveTrack], dict[str, tuple[Key, ...]]]:
        tl = target.project.timeline
        new_tracks: list[CurveTrack] = []
        new_keys: dict[str, tuple[Key, ...]] = {}  # track id -> its keys after the merge
        taken: list[str] = []
        for curve in self.curves:
            track = find_track(tl, curve.channel)
            if track is None:
                if len(tl.tracks) + len(new_tracks) >= MAX_TRACKS:
                    raise StudioError(f"the timeline cannot hold more than {MAX_TRACKS} tracks")
                track_id = next_track_id(tl, taken)
                taken.append(track_id)
                new_tracks.append(CurveTrack(id=track_id, channel=curve.channel,
                                             keys=keys_from_curve(curve, 1, self.start)))
                continue
            if track.locked:
                self.skipped.append(track.channel)
                continue
            kept = [k for k in track.keys if not self.start <= k.t <= self.end]
            added = keys_from_curve(curve, next_key_id(track.keys), self.start)
            new_keys[track.id] = tuple(sorted([*kept, *added], key=lambda k: k.t))
        return new_tracks, new_keys

    def do(self, target: HasProject) -> None:
        tl = target.project.timeline
        if self._after is None:
            self._after = self._plan(target)
        new_tracks, new_keys = self._after
        self.before = {tid: tl.track(tid).keys for tid in new_keys}
        if new_tracks:
            tl.tracks = [*tl.tracks, *new_tracks]
        for tid, keys in new_keys.items():
            tl.track(tid).keys = keys

    def undo(self, target: HasProject) -> None:
        tl = target.project.timeline
        assert self._after is not None
        added = {t.id for t in self._after[0]}
        if added:
            tl.tracks = [t for t in tl.tracks if t.id not in added]
        for tid, keys in self.before.items():
            tl.track(tid).keys = keys


def add_speech_command(timeline: Timeline, item: SpeechForTimeline, voice: VoiceSettings | None,
                       at: float | None = None) -> tuple[Command, Clip]:
    """The one undo step that adds ``item`` as a clip at ``at`` seconds (default: after
    the last clip) with its curves; the clip that it adds."""
    start = round(clips_end(timeline) if at is None else float(at), 6)
    if start < 0:
        raise StudioError("a clip cannot start before 0 s")
    duration = round(item.speech.duration, 6)
    clip = Clip(id=next_clip_id(timeline), kind=item.kind, start=start, duration=duration,
                text=item.text, audio=item.audio_rel,
                voice=voice.model_copy() if (voice is not None and item.kind == "speech")
                else None)
    what = "speech" if item.kind == "speech" else "recording"
    commands: list[Command] = [AddClip(clip), MergeCurves(item.curves, start, duration)]
    end = start + duration
    if end > timeline.duration:
        fps = timeline.fps
        commands.append(SetValue(("timeline", "duration"), math.ceil(end * fps - 1e-9) / fps))
    return Batch(commands, f"Add {what} to timeline"), clip


__all__ = [
    "AUDIO_FOLDER", "CLIPS", "MergeCurves", "SpeechForTimeline", "add_speech_command",
    "animate", "copy_into_project", "recording_to_timeline_job", "speech_to_timeline_job",
    "voice_spec",
]

"""Putting speech on the timeline: the worker jobs and the one undoable edit (no Qt here).

The jobs run on a worker thread: they synthesise (or load and align) the speech, write
its audio into the project's ``audio/`` folder and compute the animation tracks. The UI
thread then applies :func:`add_speech_command`, a single :class:`Batch`, so one undo
removes the clip, the tracks and the longer timeline together.

How the new tracks merge with what is already on the timeline (kept simple on purpose):

- the clip goes at the current end of the timeline's clips (0 when there are none);
- the animation keys, generated from 0, are shifted to the clip's start;
- a channel the timeline already has keeps its keys outside the clip's time range
  ``[start, start + duration]`` and gets the new keys inside it (old keys inside are
  replaced); a channel it lacks is appended as a new track;
- the timeline's duration grows to the end of the clip (rounded up to a frame) if shorter.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from studio.core.errors import StudioError
from studio.core.history import Batch, SetValue
from studio.core.jobs import JobContext, Progress
from studio.core.project import Clip, CurveTrack, Key, Timeline
from studio.core.project import VoiceSettings as ProjectVoice
from studio.voice.settings import LIMITS, VoiceSettings
from studio.voice.types import SpeechResult

AUDIO_FOLDER = "audio"
MAX_TRACKS = 4096


@dataclass
class SpeechForTimeline:
    """What a job hands back to the UI thread to put on the timeline."""

    kind: Literal["speech", "audio"]
    speech: SpeechResult  # audio + timings (no phonemes for an unaligned recording)
    audio_rel: str  # path of the audio file relative to the project folder
    tracks: list[dict[str, Any]]
    text: str = ""
    note: str = ""  # something the user should know (e.g. alignment fell back)
    extra: dict[str, Any] = field(default_factory=dict)


def core_voice_settings(voice: ProjectVoice) -> VoiceSettings:
    """The synthesis settings for the project's voice (clamped to what the engines take)."""
    values = {}
    for name in ("rate", "pitch", "formant", "expressiveness", "volume", "sentence_pause"):
        lo, hi, _ = LIMITS[name]
        values[name] = min(max(float(getattr(voice, name)), lo), hi)
    return VoiceSettings(**values)


def voice_spec(voice: ProjectVoice) -> str:
    """The voice name for :func:`studio.voice.resolve_voice` ("default" is the shipped one)."""
    return voice.voice or "default"


# ----------------------------------------------------------------------------- jobs


def _animate(speech: SpeechResult) -> list[dict[str, Any]]:
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
            save_audio(target, speech.audio, speech.sample_rate)
        except OSError as exc:
            raise StudioError(f"cannot write the speech audio ({exc.strerror or exc})",
                              target) from None
    yield Progress(0.95, "animating the mouth")
    tracks = _animate(speech)
    return SpeechForTimeline("speech", speech, rel, tracks, text=text)


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
    tracks: list[dict[str, Any]] | None = None
    if transcript.strip():
        try:
            aligned = yield from align_job(ctx, clip.audio, transcript, clip.sample_rate)
        except StudioError as exc:
            note = (f"Could not align the transcript ({exc}); "
                    "the mouth follows the sound instead.")
        else:
            speech = SpeechResult(clip.audio, clip.sample_rate, aligned.phonemes,
                                  aligned.words, aligned.sentence_ends, voice="recording")
            tracks = _animate(speech)
    if tracks is None:
        yield Progress(0.8, "animating the mouth from the sound")
        tracks = animate_audio(clip.audio, clip.sample_rate)
    ctx.check()
    yield Progress(0.95, "copying the recording into the project")
    rel = copy_into_project(path, project_dir)
    return SpeechForTimeline("audio", speech, rel, tracks, text=transcript.strip(), note=note)


# ----------------------------------------------------------------------- timeline edit


def clips_end(timeline: Timeline) -> float:
    """Where the last clip ends (0 without clips)."""
    return max((c.start + c.duration for c in timeline.clips), default=0.0)


def merge_tracks(existing: Sequence[CurveTrack], new: Sequence[dict[str, Any]],
                 start: float, duration: float) -> list[CurveTrack]:
    """``existing`` with ``new`` tracks (keys from 0) placed at ``start`` (see module doc)."""
    end = start + duration
    out = [t.model_copy(deep=True) for t in existing]
    by_channel = {t.channel: t for t in out}
    for track in new:
        keys = [Key(t=round(float(k["t"]) + start, 6), v=float(k["v"]),
                    interp=k.get("interp", "smooth")) for k in track["keys"]]
        current = by_channel.get(track["channel"])
        if current is None:
            if len(out) >= MAX_TRACKS:
                raise StudioError(f"the timeline cannot hold more than {MAX_TRACKS} tracks")
            current = CurveTrack(channel=track["channel"], keys=keys)
            out.append(current)
            by_channel[current.channel] = current
        else:
            kept = [k for k in current.keys if not start <= k.t <= end]
            current.keys = sorted(kept + keys, key=lambda k: k.t)
    return out


def add_speech_command(timeline: Timeline, item: SpeechForTimeline,
                       voice: ProjectVoice | None) -> tuple[Batch, Clip]:
    """The one undo step that adds ``item`` as a clip with its tracks."""
    start = round(clips_end(timeline), 6)
    duration = round(item.speech.duration, 6)
    clip = Clip(kind=item.kind, start=start, duration=duration, text=item.text,
                audio=item.audio_rel,
                voice=voice.model_copy() if (voice is not None and item.kind == "speech")
                else None)
    clips = [c.model_copy(deep=True) for c in timeline.clips] + [clip]
    tracks = merge_tracks(timeline.tracks, item.tracks, start, duration)
    commands = [SetValue(("timeline", "clips"), clips), SetValue(("timeline", "tracks"), tracks)]
    end = start + duration
    if end > timeline.duration:
        fps = timeline.fps
        commands.append(SetValue(("timeline", "duration"), math.ceil(end * fps - 1e-9) / fps))
    what = "speech" if item.kind == "speech" else "recording"
    return Batch(commands, f"Add {what} to timeline"), clip

"""The timeline: edits as undo commands with stable ids, speech clips, evaluation (no Qt).

- :mod:`~studio.timeline.commands`: fine-grained edits addressed by id -- add/move/delete
  keys, add/delete tracks, mute/solo/lock, add/move/trim/split/delete clips; drags merge.
- :mod:`~studio.timeline.key_edits`: many keys in one step -- put (paste, key the
  sliders), move (drags merge), interpolation and tangents.
- :mod:`~studio.timeline.speech`: the jobs that turn text or a recording into a clip with
  lip-sync, blink and head curves, and the one undo step that puts it on the timeline.
- :mod:`~studio.timeline.evaluate`: ``evaluate(project, t)`` and ``evaluate_many``.
- :mod:`~studio.timeline.curves`: a track's cached :class:`~studio.animate.curves.Curve`.
"""

from studio.timeline.commands import (
    AddClip,
    AddKey,
    AddTrack,
    DeleteClip,
    DeleteKeys,
    DeleteTrack,
    MoveClip,
    MoveKey,
    SetTrackFlags,
    SplitClip,
    TrimClip,
    delete_key,
    lock_track,
    mute_track,
    solo_track,
)
from studio.timeline.curves import (
    clips_end,
    curve_of,
    find_track,
    next_clip_id,
    next_key_id,
    next_track_id,
    track_from_curve,
)
from studio.timeline.evaluate import evaluate, evaluate_many, playing_tracks
from studio.timeline.key_edits import (
    KEEP,
    KeySpec,
    MoveKeys,
    PutKeys,
    SetKeyShape,
    key_channels,
)
from studio.timeline.speech import (
    MergeCurves,
    SpeechForTimeline,
    add_speech_command,
    copy_into_project,
    recording_to_timeline_job,
    speech_to_timeline_job,
)

__all__ = [
    "KEEP", "KeySpec", "MoveKeys", "PutKeys", "SetKeyShape", "key_channels",
    "AddClip", "AddKey", "AddTrack", "DeleteClip", "DeleteKeys", "DeleteTrack", "MergeCurves",
    "MoveClip", "MoveKey", "SetTrackFlags", "SpeechForTimeline", "SplitClip", "TrimClip",
    "add_speech_command", "clips_end", "copy_into_project", "curve_of", "delete_key",
    "evaluate", "evaluate_many", "find_track", "lock_track", "mute_track", "next_clip_id",
    "next_key_id", "next_track_id", "playing_tracks", "recording_to_timeline_job",
    "solo_track", "speech_to_timeline_job", "track_from_curve",
]

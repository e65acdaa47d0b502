"""Animation from speech: visemes → mouth curves, blinks, head motion (no Qt here).

Everything returns curves (:class:`~studio.animate.curves.Curve`: a channel's keys as
arrays), which the timeline turns into project tracks.
"""

from studio.animate.audio_mouth import audio_mouth_tracks
from studio.animate.blink import BlinkSettings, blink_schedule, blink_track
from studio.animate.curves import (
    Curve,
    evaluate_curve,
    keys_from_samples,
    make_key,
    make_track,
)
from studio.animate.head import HeadSettings, head_tracks
from studio.animate.lipsync import LipSyncSettings, lipsync_tracks
from studio.animate.performance import (
    AnimationSettings,
    animate_audio,
    animate_speech,
    curves_document,
)
from studio.animate.visemes import VISEMES, phoneme_to_visemes, visemes_from_phones

__all__ = [
    "VISEMES", "AnimationSettings", "Curve", "BlinkSettings", "HeadSettings", "LipSyncSettings",
    "animate_audio", "animate_speech", "audio_mouth_tracks", "blink_schedule", "blink_track",
    "curves_document", "evaluate_curve", "head_tracks", "keys_from_samples", "lipsync_tracks",
    "make_key", "make_track", "phoneme_to_visemes", "visemes_from_phones",
]

"""Voice settings: how a voice speaks (speed, pitch, timbre, expressiveness, loudness).

There is one schema, :class:`studio.core.project.VoiceSettings`: the project stores it, the
engines speak it and the CLI builds it, with one set of limits and defaults. A value out of
range is an error (``StudioError`` naming the setting and its range), never clamped.
"""

from __future__ import annotations

from studio.core.project import VOICE_DELIVERY, VoiceSettings

# name: (minimum, maximum, meaning), read from the schema (sliders, CLI help)
LIMITS: dict[str, tuple[float, float, str]] = VoiceSettings.limits()
DEFAULTS: dict[str, object] = {name: VoiceSettings.model_fields[name].default
                               for name in VOICE_DELIVERY}

__all__ = ["DEFAULTS", "LIMITS", "VOICE_DELIVERY", "VoiceSettings"]

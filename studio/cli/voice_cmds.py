"""Voice commands: ``studio speak``, ``studio voices``, ``studio align``, ``studio lipsync``.

Voices: ``joe`` (the default neural voice), a Piper ``.onnx`` path, or ``espeak:LANG``.
Timings files: ``{"phonemes": [{"phoneme", "start", "end"}], "words": [{"word", "start",
"end"}]}`` in seconds. Curves files: ``{"format": "studio.curves", "duration", "tracks":
[{"channel", "keys": [{"t", "v", "interp"}]}]}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

MAX_SEED = 2**32 - 1


def _add_voice_settings(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("voice settings")
    g.add_argument("--rate", type=float, default=1.0, help="speed, 1 = natural (0.25..4)")
    g.add_argument("--pitch", type=float, default=0.0, help="pitch shift in semitones (-12..12)")
    g.add_argument("--formant", type=float, default=0.0,
                   help="timbre: formant shift in semitones (-6..6)")
    g.add_argument("--expressiveness", type=float, default=1.0,
                   help="prosody variation, 1 = the voice's default (0..2)")
    g.add_argument("--volume", type=float, default=1.0, help="loudness, 1 = peaks at -1 dBFS")
    g.add_argument("--sentence-pause", type=float, default=0.0, metavar="SECONDS",
                   help="extra silence between sentences")
    g.add_argument("--speaker", type=int, help="speaker number of a multi-speaker Piper voice")


def _add_animation_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("animation")
    g.add_argument("--intensity", type=float, default=1.0, help="mouth movement scale (0..2)")
    g.add_argument("--no-blinks", action="store_true", help="no eye blinks")
    g.add_argument("--no-head", action="store_true", help="no head motion")
    g.add_argument("--no-visemes", action="store_true", help="no viseme.<name> weight channels")
    g.add_argument("--seed", type=int, default=0,
                   help=f"seed for blinks and head motion (0..{MAX_SEED})")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "speak", help="text to speech with phoneme timings",
        description="Speak TEXT to a WAV file. Inline tags: [pause 500ms], *emphasis*, "
                    '<break time="1s"/>, <emphasis>...</emphasis>.',
    )
    p.add_argument("text", nargs="?", help="the text ('-' reads standard input)")
    p.add_argument("--text-file", type=Path, help="read the text from this UTF-8 file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.wav")
    p.add_argument("--voice", default="joe",
                   help="joe (default), a Piper .onnx file, or espeak:LANG (e.g. espeak:de)")
    p.add_argument("--voice-dir", type=Path, action="append", default=[],
                   help="extra folder with Piper voices (repeatable)")
    p.add_argument("--timings", type=Path, metavar="OUT.json", help="write phoneme/word timings")
    p.add_argument("--curves", type=Path, metavar="OUT.json", help="write lip-sync curve tracks")
    p.add_argument("--cache-dir", type=Path, help="keep synthesis results in this folder")
    _add_voice_settings(p)
    _add_animation_options(p)
    p.set_defaults(func=cmd_speak)

    p = subparsers.add_parser("voices", help="list the voices",
                              description="List shipped Piper voices, Piper voices in the "
                                          "voice folders, and eSpeak languages.")
    p.add_argument("--voice-dir", type=Path, action="append", default=[],
                   help="extra folder with Piper voices (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-espeak", action="store_true", help="leave out the eSpeak languages")
    p.set_defaults(func=cmd_voices)

    p = subparsers.add_parser(
        "align", help="timings of a recording from its transcript",
        description="Force-align a recording (WAV, FLAC, OGG, MP3) to its English transcript. "
                    "Without a transcript, --curves gives an audio-driven mouth.",
    )
    p.add_argument("audio", type=Path)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", help="what is said in the recording")
    src.add_argument("--text-file", type=Path, help="UTF-8 file with the transcript")
    p.add_argument("--timings", type=Path, metavar="OUT.json", help="write phoneme/word timings")
    p.add_argument("--curves", type=Path, metavar="OUT.json", help="write lip-sync curve tracks")
    _add_animation_options(p)
    p.set_defaults(func=cmd_align)

    p = subparsers.add_parser(
        "lipsync", help="lip-sync curves from a timings file",
        description="Turn phoneme timings (from speak/align --timings) into curve tracks.",
    )
    p.add_argument("timings", type=Path, metavar="TIMINGS.json")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="CURVES.json")
    p.add_argument("--audio", type=Path, help="the speech audio: head motion follows its energy")
    _add_animation_options(p)
    p.set_defaults(func=cmd_lipsync)


# ------------------------------------------------------------------------- helpers


def _read_text(args: argparse.Namespace) -> str:
    """The text of ``--text-file`` (a regular UTF-8 file, read with a bound: never a FIFO
    or ``/dev/zero``), of standard input for ``-`` (bounded too), or the argument."""
    from studio.voice.synth import MAX_TEXT

    if getattr(args, "text_file", None) is not None:
        from studio.core.files import read_text_bounded

        text = read_text_bounded(args.text_file, 4 * MAX_TEXT, "text file")
        if len(text) > MAX_TEXT:
            raise StudioError(f"the text is too long ({len(text)} characters, at most "
                              f"{MAX_TEXT})", args.text_file)
        return text
    if args.text == "-":
        text = sys.stdin.read(MAX_TEXT + 1)
        if len(text) > MAX_TEXT:
            raise StudioError(f"the text on standard input is longer than {MAX_TEXT} "
                              "characters")
        return text
    return args.text or ""


def _check_seed(args: argparse.Namespace) -> None:
    if not 0 <= args.seed <= MAX_SEED:
        raise StudioError(f"--seed must be a whole number from 0 to {MAX_SEED}, not {args.seed}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_outputs(inputs: list[Path | None], outputs: list[Path | None]) -> None:
    """Refuse an output that is one of the inputs (it would be overwritten) or that two
    outputs share."""
    from studio.core.files import resolve_path

    outs = [o for o in outputs if o is not None]
    for out in outs:
        for src in inputs:
            if src is not None and (_same_file(src, out) or resolve_path(src) == resolve_path(out)):
                raise StudioError("is an input of this command; it would be overwritten: "
                                  "write the output to another file", out)
    for k, out in enumerate(outs):
        if any(resolve_path(out) == resolve_path(other) for other in outs[k + 1:]):
            raise StudioError("is given for two outputs", out)
        _check_writable(out)


def _check_writable(out: Path) -> None:
    """Before any work: the output's folder (or the first of its parents that exists) is
    a folder we may write in, and the output is not a folder."""
    if out.is_dir():
        raise StudioError("is a folder: give a file name for the output", out)
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise StudioError(f"cannot write this file: {folder} is not a folder", out)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StudioError(f"cannot write this file: no permission to write in {folder}", out)


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed write (read-only folder, full disk, a file where a folder should be)
    into one line naming the output file."""
    try:
        yield
    except StudioError:
        raise
    except OSError as exc:
        raise StudioError(f"cannot write this file: {exc.strerror or exc}", path) from None


def _animation_settings(args: argparse.Namespace):
    from dataclasses import replace

    from studio.animate import AnimationSettings

    if not 0 <= args.intensity <= 2:
        raise StudioError("--intensity must be between 0 and 2")
    _check_seed(args)
    s = AnimationSettings(blinks=not args.no_blinks, head_motion=not args.no_head)
    return replace(
        s,
        lip=replace(s.lip, intensity=args.intensity, viseme_channels=not args.no_visemes),
        blink=replace(s.blink, seed=args.seed),
        head=replace(s.head, seed=args.seed),
    )


def _write_curves(path: Path, tracks: list, duration: float) -> None:
    """The curves document, one track per line (each encoded on its own: the whole
    document as one indented string took 300 MB for 20 minutes of speech)."""
    from studio.animate import curves_document
    from studio.core.atomic import atomic_write

    doc = curves_document(tracks, duration)

    def write(f) -> None:
        f.write(b"{\n")
        for key, value in doc.items():
            if key != "tracks":
                f.write(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n"
                        .encode())
        f.write(b' "tracks": [')
        for k, track in enumerate(doc["tracks"]):
            f.write((",\n  " if k else "\n  ").encode())
            f.write(json.dumps(track, ensure_ascii=False).encode("utf-8"))
        f.write(b"\n ]\n}\n")

    with _writing(path):
        atomic_write(path, write)


def _run(name: str, fn, *args, **kwargs):
    from studio.cli.progress import run_job
    from studio.core.jobs import Job

    return run_job(Job(name, fn, *args, **kwargs))


# ------------------------------------------------------------------------ commands


def cmd_speak(args: argparse.Namespace) -> int:
    from studio.voice.cache import DEFAULT_CACHE, SpeechCache
    from studio.voice.settings import VoiceSettings

    _check_seed(args)
    if args.output.suffix.lower() not in (".wav", ".flac", ".ogg"):
        raise StudioError("the output must be a .wav, .flac or .ogg file", args.output)
    _check_outputs([args.text_file], [args.output, args.timings, args.curves])
    text = _read_text(args)
    if not text.strip():
        raise StudioError("give the text to speak (as an argument, '-' for stdin, or --text-file)")
    settings = VoiceSettings(
        rate=args.rate, pitch=args.pitch, formant=args.formant,
        expressiveness=args.expressiveness, volume=args.volume,
        sentence_pause=args.sentence_pause, speaker=args.speaker,
    )
    anim = _animation_settings(args) if args.curves else None
    cache = SpeechCache(folder=args.cache_dir) if args.cache_dir else DEFAULT_CACHE
    from studio.voice.jobs import speak_job

    result = _run("speak", speak_job, text, args.voice, settings, cache, args.voice_dir)
    from studio.voice.audio_io import save_audio
    from studio.voice.types import save_timings

    with _writing(args.output):
        save_audio(args.output, result.audio, result.sample_rate)
    if args.timings:
        with _writing(args.timings):
            save_timings(args.timings, result)
    if anim is not None:
        from studio.animate import animate_speech

        tracks = animate_speech(
            result.phonemes, result.duration, words=result.words,
            sentence_ends=result.sentence_ends, audio=result.audio,
            sample_rate=result.sample_rate, settings=anim,
        )
        _write_curves(args.curves, tracks, result.duration)
    print(f"{args.output}: {result.duration:.2f} s, {len(result.words)} words, "
          f"{len(result.phonemes)} phonemes ({result.voice})")
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    from studio.voice.voices import list_voices

    voices = list_voices(args.voice_dir, espeak=not args.no_espeak)
    if args.json:
        print(json.dumps([v.to_dict() for v in voices], ensure_ascii=False, indent=1))
        return 0
    for v in voices:
        extra = f"  [{v.license}]" if v.license and v.engine == "piper" else ""
        print(f"{v.id:<28} {v.engine:<7} {v.language:<16} {v.name}{extra}")
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    from studio.voice.audio_io import load_audio

    if not args.timings and not args.curves:
        raise StudioError("say what to write: --timings OUT.json and/or --curves OUT.json")
    _check_seed(args)
    _check_outputs([args.audio, args.text_file], [args.timings, args.curves])
    text = _read_text(args) if (args.text is not None or args.text_file is not None) else ""
    anim = _animation_settings(args) if args.curves else None
    clip = load_audio(args.audio)
    if not text.strip():
        if args.timings:
            raise StudioError("timings need the transcript (--text or --text-file); "
                              "without one, --curves gives an audio-driven mouth")
        from studio.animate import animate_audio

        tracks = animate_audio(clip.audio, clip.sample_rate, anim)
        _write_curves(args.curves, tracks, clip.duration)
        print(f"{args.curves}: audio-driven mouth for {clip.duration:.2f} s")
        return 0
    from studio.voice.jobs import align_job

    result = _run("align", align_job, clip.audio, text, clip.sample_rate)
    if args.timings:
        from studio.voice.types import save_timings

        with _writing(args.timings):
            save_timings(args.timings, result)
    if anim is not None:
        from studio.animate import animate_speech

        tracks = animate_speech(result.phonemes, result.duration, words=result.words,
                                sentence_ends=result.sentence_ends, audio=clip.audio,
                                sample_rate=clip.sample_rate, settings=anim)
        _write_curves(args.curves, tracks, result.duration)
    print(f"{args.audio}: aligned {len(result.words)} words in {result.duration:.2f} s")
    return 0


def cmd_lipsync(args: argparse.Namespace) -> int:
    from studio.animate import animate_speech
    from studio.voice.types import load_timings

    _check_seed(args)
    _check_outputs([args.timings, args.audio], [args.output])
    timings = load_timings(args.timings)
    anim = _animation_settings(args)
    audio = rate = None
    duration = timings.end_time
    if args.audio is not None:
        from studio.voice.audio_io import load_audio

        clip = load_audio(args.audio)
        audio, rate = clip.audio, clip.sample_rate
        duration = max(duration, clip.duration) if timings.duration is None else duration
    if duration <= 0:
        raise StudioError("the timings hold no phonemes or words", args.timings)
    tracks = animate_speech(timings.phonemes, duration, words=timings.words,
                            sentence_ends=timings.sentence_ends, audio=audio,
                            sample_rate=rate, settings=anim)
    _write_curves(args.output, tracks, duration)
    print(f"{args.output}: {len(tracks)} tracks for {duration:.2f} s")
    return 0

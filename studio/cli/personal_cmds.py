"""``studio train voice`` and ``studio metrics voice``: personal voices."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

TRAIN_VOICE_EPILOG = """\
The data folder holds NAME.wav + NAME.txt pairs (the transcript of each take). Takes that
are clipped, too quiet, silent or whose transcript does not match are skipped with a reason.
Prompts to read: resources/prompts/en.txt (100 sentences; 50 or more make a good voice).

examples:
  studio train voice --data my-takes -o me.safetensors
  studio speak "Hello there." --voice me.safetensors -o hello.wav
  studio metrics voice --voice me.safetensors --data my-heldout-takes
"""


def register_train_voice(tsub: Any) -> None:
    p = tsub.add_parser(
        "voice", help="train a personal voice on your recordings (WAV + TXT pairs)",
        description="Learn to convert a base voice into yours (parallel voice conversion).",
        epilog=TRAIN_VOICE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder of NAME.wav + NAME.txt")
    p.add_argument("--base-voice", default="joe", help="Piper base voice (default joe)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="VOICE.safetensors")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    p.add_argument("--run-dir", type=Path, help="checkpoint folder (default OUTPUT.run beside it)")
    p.add_argument("--resume", action="store_true", help="continue a stopped run")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_voice)


def register_metrics_voice(msub: Any) -> None:
    m = msub.add_parser(
        "voice", help="MCD, speaker similarity and WER of a personal voice on held-out takes",
        description="Speak each held-out transcript with the base voice and the personal "
        "voice and compare both with the recording.")
    m.add_argument("--voice", required=True, help="personal voice (.safetensors)")
    m.add_argument("--data", type=Path, required=True, help="held-out NAME.wav + NAME.txt")
    m.add_argument("--no-wer", action="store_true", help="skip speech recognition")
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.set_defaults(func=cmd_metrics_voice)


def cmd_train_voice(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.train.voice_train import train_voice_job

    if args.output.suffix.lower() != ".safetensors":
        raise StudioError("the output must be a .safetensors file", args.output)
    if not 1 <= args.steps <= 1_000_000:
        raise StudioError("--steps must be between 1 and 1000000")
    result = run_job(Job("train voice", train_voice_job, args.data, args.output,
                         base_voice=args.base_voice, steps=args.steps, run_dir=args.run_dir,
                         resume=args.resume, seed=args.seed))
    print(f"wrote {result['model']}: {result['takes']} takes ({result['skipped']} skipped), "
          f"pitch {result['pitch_semitones']:+.2f} semitones, rate x{1 / result['rate']:.2f}, "
          f"final loss {result['loss']:.3f}, {result['seconds']:.0f} s")
    return 0


def cmd_metrics_voice(args: argparse.Namespace) -> int:
    from studio.cli.progress import run_job
    from studio.core.jobs import Job
    from studio.voice.voice_metrics import measure_voice_steps

    def job(ctx, voice, data, wer):
        return (yield from measure_voice_steps(voice, data, ctx, wer=wer))

    result = run_job(Job("measure voice", job, args.voice, args.data, not args.no_wer))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for k, v in result.items():
        if k != "per_take":
            print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    return 0

"""Personal voice benchmark: build the test user (the shipped voice with a hidden change of
pitch x1.3, formants +2 semitones, a brighter tilt, 10% slower), train a personal voice on
N takes, measure it on 10 held-out takes against the base voice. Prints JSON: MCD base vs
converted (dB), speaker similarity (spectral proxy, not GE2E), PocketSphinx WER of base,
converted and the user's own takes, training time and the conversion's real-time factor.

    .venv/bin/python bench/voice_model.py [--takes 60] [--steps 600] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--takes", type=int, default=60)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--work", type=Path, default=Path("runs/bench-voice-model"))
    args = ap.parse_args()

    from studio.core.jobs import JobContext
    from studio.core.paths import resources_dir
    from studio.train.voice_train import train_voice_job
    from studio.voice.personal import load_personal_voice
    from studio.voice.synth import synthesize
    from studio.voice.test_user import make_test_user
    from studio.voice.voice_metrics import measure_voice_steps

    lines = (resources_dir() / "prompts" / "en.txt").read_text().splitlines()
    train, held = args.work / "train", args.work / "heldout"
    if not train.is_dir():
        make_test_user(train, lines[: args.takes])
    if not held.is_dir():
        make_test_user(held, lines[-10:], prefix="held")
    out = args.work / "voice.safetensors"

    def drive(gen):
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    t0 = time.perf_counter()
    summary = drive(train_voice_job(JobContext(), train, out, steps=args.steps))
    train_s = time.perf_counter() - t0
    metrics = drive(measure_voice_steps(out, held))
    metrics.pop("per_take")
    voice = load_personal_voice(out)
    speech = synthesize(lines[0], "joe", cache=None)
    t0 = time.perf_counter()
    voice.convert_audio(speech.audio, speech.sample_rate)
    rtf = (time.perf_counter() - t0) / speech.duration
    print(json.dumps({**metrics, "train_takes": summary["takes"],
                      "train_skipped": summary["skipped"], "train_steps": args.steps,
                      "train_seconds_total": train_s, "convert_rtf": rtf}, indent=1))


if __name__ == "__main__":
    main()

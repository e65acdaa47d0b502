"""Make the demo project (resources/demo/demo.dhproj and its audio/) with the real commands.

    .venv/bin/python resources/demo/make_demo.py [--out DIR]

1. a new project with the default avatar;
2. two sentences with ``studio timeline add-speech`` (speech clips, lip-sync, blink and
   head curves, the audio written under ``audio/``);
3. after the speech, a smile and a head turn as keys, added with the timeline's undoable
   commands (AddKey) and saved like the GUI saves;
4. ``docs/demo-frames.png``: six frames of it, rendered with ``studio render --png-dir``.

The same voice and text give the same audio, so running it again reproduces the files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SENTENCES = (
    "Hello! I am your digital human, made and animated right here on this computer.",
    "Give me a voice, a few expressions, and I will say whatever you like.",
)
SEED = 7
# (time after the speech ends, value): a smile that comes and goes, a head turn and back
SMILE_KEYS = ((0.1, 0.0), (0.5, 0.8), (1.4, 0.8), (2.0, 0.0))
HEAD_YAW_KEYS = ((0.2, 0.0), (0.8, 0.5), (1.4, 0.5), (2.0, 0.0))
TAIL_S = 2.2  # seconds of timeline after the speech
ROOT = Path(__file__).resolve().parents[2]


def studio(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "studio.cli", *args], check=True)


def add_keys(doc, channel: str, keys, t0: float) -> None:
    from studio.timeline import AddKey, AddTrack, find_track

    track = find_track(doc.project.timeline, channel)
    if track is None:
        doc.push(AddTrack(channel))
        track = find_track(doc.project.timeline, channel)
    for dt, v in keys:
        doc.push(AddKey(track.id, round(t0 + dt, 3), v, "smooth"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()

    from studio.core.document import Document
    from studio.core.history import SetValue
    from studio.core.project import Project
    from studio.timeline import clips_end

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:  # the old demo stays until the end
        path = Path(tmp) / "demo.dhproj"
        project = Project(name="Demo")
        project.avatar.seed = SEED
        Document(project).save(path)
        for sentence in SENTENCES:
            studio("timeline", "add-speech", str(path), sentence, "--voice", "joe")
        doc = Document.open(path)
        end = clips_end(doc.project.timeline)
        add_keys(doc, "smile", SMILE_KEYS, end)
        add_keys(doc, "head_yaw", HEAD_YAW_KEYS, end)
        fps = doc.project.timeline.fps
        doc.push(SetValue(("timeline", "duration"), round(round((end + TAIL_S) * fps) / fps, 6)))
        doc.save()
        shutil.rmtree(out / "audio", ignore_errors=True)
        shutil.copytree(Path(tmp) / "audio", out / "audio")
        shutil.copyfile(path, out / "demo.dhproj")
    path = out / "demo.dhproj"
    print(f"wrote {path} ({doc.project.timeline.duration:.2f} s)")
    frames_strip(path, ROOT / "docs" / "demo-frames.png")
    return 0


def frames_strip(project: Path, out: Path, size: int = 160) -> None:
    """Six telling frames of the project side by side, for the README: the start, the
    widest-open mouth, a closed mouth while speaking, the deepest blink, the largest head
    turn and the widest smile (picked from the project's own curves)."""
    import tempfile

    import numpy as np
    from PIL import Image

    from studio.core.project import load_project
    from studio.timeline.evaluate import evaluate_many

    timeline = load_project(project).timeline
    n = int(round(timeline.duration * timeline.fps))
    v = evaluate_many(load_project(project), np.arange(n) / timeline.fps)
    zero = np.zeros(n)
    mouth = v.get("mouth_open", zero)
    speaking = np.flatnonzero(mouth > 0.05)
    closed = speaking[np.argmin(mouth[speaking])] if len(speaking) else 0
    picks = [0, int(np.argmax(mouth)), int(closed), int(np.argmax(v.get("blink", zero))),
             int(np.argmax(np.abs(v.get("head_yaw", zero)))), int(np.argmax(v.get("smile", zero)))]
    with tempfile.TemporaryDirectory() as tmp:
        studio("render", str(project), "--png-dir", f"{tmp}/png", "--size", str(size))
        pngs = sorted(Path(tmp, "png").iterdir())
        strip = Image.new("RGB", (size * len(picks), size))
        for i, k in enumerate(picks):
            strip.paste(Image.open(pngs[k]).convert("RGB"), (i * size, 0))
        out.parent.mkdir(parents=True, exist_ok=True)
        strip.save(out)
    print(f"wrote {out} (frames {picks})")


if __name__ == "__main__":
    sys.exit(main())

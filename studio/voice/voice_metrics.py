"""Measuring a personal voice against held-out recordings of the user.

For every held-out take (WAV + TXT) the base voice and the personal voice speak the
transcript; each rendering is compared with the recording:

- mel-cepstral distortion (dB, DTW-aligned over speech, c̃(0) left out), lower is closer;
- speaker similarity: cosine similarity of speaker vectors (mean and standard deviation of
  the mel-cepstra and the mean log-F0 over voiced speech), a spectral proxy. It is not a
  neural speaker embedding: resemblyzer's GE2E is not a dependency of the studio;
- word error rate of PocketSphinx on the rendering (intelligibility).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

import numpy as np

from studio.core.jobs import JobContext, Progress
from studio.voice.spectral import Analysis, aligned_mcd, analyze, trim_silence


def speaker_vector(an: Analysis) -> np.ndarray:
    m = an.mcep[trim_silence(an)]
    m = m[an.speech_mask()[trim_silence(an)]]
    f0 = an.f0[an.f0 > 0]
    pitch = np.log(f0).mean() if f0.size else 0.0
    return np.concatenate([m[:, 1:].mean(0), m[:, 1:].std(0), [pitch - 5.0]])


def similarity(a: np.ndarray, b: np.ndarray, centre: np.ndarray) -> float:
    a, b = a - centre, b - centre
    return float(a @ b / max(1e-9, np.linalg.norm(a) * np.linalg.norm(b)))


def measure_voice_steps(
    voice: str | Path, data_dir: str | Path, ctx: JobContext | None = None, wer: bool = True,
) -> Generator[Progress, None, dict]:
    from studio.voice.recognize import word_errors
    from studio.voice.synth import synthesize
    from studio.voice.takes import import_takes_steps
    from studio.voice.voices import resolve_voice

    info = resolve_voice(str(voice))
    base = replace(info, converter=None)  # the base voice at its own rate
    sr = info.sample_rate
    takeset = yield from import_takes_steps(data_dir, sr, check_transcripts=False, ctx=ctx)
    rows = []
    errs = {"base": [0, 0], "voice": [0, 0], "user": [0, 0]}
    vecs: dict[str, list[np.ndarray]] = {"base": [], "voice": [], "user": []}
    n = len(takeset.takes)
    for k, take in enumerate(takeset.takes):
        if ctx is not None:
            ctx.check()
        yield Progress(k / max(1, n), f"measuring {take.audio_path.name}")
        user = analyze(take.audio, sr)
        row = {"take": take.audio_path.name}
        for key, v in (("base", base), ("voice", info)):
            spoken = synthesize(take.text, v)
            an = analyze(spoken.audio, sr)
            row[f"mcd_{key}"] = aligned_mcd(an, user)
            vecs[key].append(speaker_vector(an))
            if wer:
                e, c = word_errors(take.text, _heard(spoken.audio, sr))
                errs[key][0] += e
                errs[key][1] += c
        vecs["user"].append(speaker_vector(user))
        if wer:
            e, c = word_errors(take.text, _heard(take.audio, sr))
            errs["user"][0] += e
            errs["user"][1] += c
        rows.append(row)
    centre = np.mean(np.array(vecs["base"] + vecs["user"]), axis=0)
    user_mean = np.mean(vecs["user"], axis=0)
    out = {
        "takes": n,
        "mcd_base_db": float(np.mean([r["mcd_base"] for r in rows])),
        "mcd_voice_db": float(np.mean([r["mcd_voice"] for r in rows])),
        "similarity_base": float(np.mean([similarity(v, user_mean, centre)
                                          for v in vecs["base"]])),
        "similarity_voice": float(np.mean([similarity(v, user_mean, centre)
                                           for v in vecs["voice"]])),
        "per_take": rows,
    }
    out["mcd_reduction"] = 1.0 - out["mcd_voice_db"] / out["mcd_base_db"]
    if wer:
        for key, (e, c) in errs.items():
            out[f"wer_{key}"] = e / max(1, c)
    yield Progress(1.0, "measured")
    return out


def _heard(audio: np.ndarray, sr: int) -> str:
    from studio.voice.recognize import recognize

    return recognize(audio, sr)

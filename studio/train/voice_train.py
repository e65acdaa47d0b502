"""Training a personal voice (parallel voice conversion) as a job.

1. The takes (WAV + TXT pairs) are imported and checked; bad ones are skipped with a reason.
2. The base voice speaks every transcript; both renderings are analysed (mel-cepstra,
   pitch) and aligned frame by frame with DTW: a first pass on mean-normalised mel-cepstra,
   a second after a linear map of the base voice towards the user (so the two voices'
   different timbres do not pull the path). Every base frame gets its user frame.
3. Statistics: log-F0 mean and spread of both voices, the user's speaking-rate factor
   (speech length over the base voice's), normalisation of the features, the user's
   global variance.
4. :class:`~studio.voice.personal.MceptNet` learns base → user mel-cepstra on random
   crops of the aligned sequences (MSE), with a resumable checkpoint in the run folder.
5. The model is written as safetensors with JSON metadata.

Cancel stops at the next step; the aligned features and the checkpoint stay in the run
folder, and the same call with ``resume=True`` continues.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch

from studio.core.atomic import atomic_write_text
from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from studio.voice.personal import MceptNet, PersonalVoice, save_personal_voice
from studio.voice.spectral import analyze, dtw_path, log_f0_stats, trim_silence

PAIRS = "pairs.npz"
STATS = "stats.json"
MIN_TAKES = 5


def _linear_map(a: np.ndarray, b: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """Least-squares affine map a → b (with a ridge), as a (d+1)×d matrix."""
    x = np.hstack([a, np.ones((len(a), 1))])
    return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ b)


def _apply(w: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.hstack([a, np.ones((len(a), 1))]) @ w


def align_pairs(base: list[np.ndarray], user: list[np.ndarray]) -> list[np.ndarray]:
    """For each utterance, the user frame matched to every base frame (two DTW passes)."""
    def norm(m):
        return m[:, 1:] - m[:, 1:].mean(axis=0)

    paths = [dtw_path(norm(b), norm(u))[:2] for b, u in zip(base, user, strict=True)]
    xa = np.concatenate([b[i, 1:] for b, (i, _) in zip(base, paths, strict=True)])
    xb = np.concatenate([u[j, 1:] for u, (_, j) in zip(user, paths, strict=True)])
    w = _linear_map(xa, xb)
    out = []
    for b, u in zip(base, user, strict=True):
        i, j = dtw_path(_apply(w, b[:, 1:]), u[:, 1:])[:2]
        match = np.zeros(len(b), dtype=np.int64)
        match[i[::-1]] = j[::-1]  # the first user frame matched to each base frame
        out.append(match)
    return out


def prepare_steps(data_dir: Path, run_dir: Path, base_voice: str, ctx: JobContext,
                  min_takes: int = MIN_TAKES) -> Generator[Progress, None, None]:
    """Stages 1-3: import, speak, analyse, align; writes pairs.npz and stats.json."""
    from studio.voice.synth import synthesize
    from studio.voice.takes import import_takes_steps
    from studio.voice.voices import resolve_voice

    info = resolve_voice(base_voice)
    if info.engine != "piper":
        raise StudioError("a personal voice needs a Piper base voice (e.g. joe)")
    sr = info.sample_rate
    gen = import_takes_steps(data_dir, sr, ctx=ctx)
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            takeset = stop.value
            break
        yield Progress(0.15 * (p.fraction or 0.0), p.message)
    for path, why in takeset.rejected:
        yield Progress(0.15, f"skipped {path.name}: {why}")
    if len(takeset.takes) < min_takes:
        raise StudioError(f"only {len(takeset.takes)} usable takes; record at least "
                          f"{min_takes} (50 or more for a good voice)\n" + takeset.report(),
                          data_dir)
    base_m, user_m, f0_b, f0_u = [], [], [], []
    len_b = len_u = 0
    n = len(takeset.takes)
    for k, take in enumerate(takeset.takes):
        ctx.check()
        yield Progress(0.15 + 0.3 * k / n, f"analysing {take.audio_path.name}")
        spoken = synthesize(take.text, info)
        a, b = analyze(spoken.audio, sr), analyze(take.audio, sr)
        sa, sb = trim_silence(a), trim_silence(b)
        base_m.append(a.mcep[sa])
        user_m.append(b.mcep[sb])
        f0_b.append(a.f0[sa])
        f0_u.append(b.f0[sb])
        len_b += sa.stop - sa.start
        len_u += sb.stop - sb.start
    yield Progress(0.45, "aligning the recordings with the base voice")
    try:
        matches = align_pairs(base_m, user_m)
    except ValueError as exc:
        raise StudioError(f"cannot align the recordings with the base voice ({exc})") from None
    targets = [u[m] for u, m in zip(user_m, matches, strict=True)]
    lengths = np.array([len(b) for b in base_m])
    np.savez(run_dir / PAIRS, base=np.concatenate(base_m), user=np.concatenate(targets),
             lengths=lengths)
    try:
        lf = log_f0_stats(f0_b) + log_f0_stats(f0_u)
    except ValueError:
        raise StudioError("too few voiced frames in the recordings to learn the pitch") from None
    stats = {"base_voice": info.id, "sample_rate": sr, "log_f0": list(lf),
             "rate": float(np.clip(len_u / max(1, len_b), 0.5, 2.0)), "takes": n,
             "skipped": [[str(p), why] for p, why in takeset.rejected]}
    atomic_write_text(run_dir / STATS, json.dumps(stats, indent=1))


def _sequences(run_dir: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    with np.load(run_dir / PAIRS) as z:
        base, user, lengths = z["base"], z["user"], z["lengths"]
    cuts = np.cumsum(lengths)[:-1]
    stats = json.loads((run_dir / STATS).read_text(encoding="utf-8"))
    return np.split(base, cuts), np.split(user, cuts), stats


def train_voice_job(
    ctx: JobContext, data_dir: str | Path, output: str | Path, base_voice: str = "joe",
    steps: int = 1500, run_dir: str | Path | None = None, resume: bool = False,
    seed: int = 0, batch: int = 16, crop: int = 96, min_takes: int = MIN_TAKES,
) -> Generator[Progress, None, dict]:
    """Train a personal voice on the takes in ``data_dir``; returns a summary dict."""
    data_dir, output = Path(data_dir), Path(output)
    run_dir = Path(run_dir) if run_dir else output.with_name(output.stem + ".run")
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if not (resume and (run_dir / PAIRS).is_file() and (run_dir / STATS).is_file()):
        yield from prepare_steps(data_dir, run_dir, base_voice, ctx, min_takes)
    base, user, stats = _sequences(run_dir)
    allb, allu = np.concatenate(base), np.concatenate(user)[:, 1:]
    norm = {"in_mean": allb.mean(0), "in_std": allb.std(0) + 1e-3,
            "out_mean": allu.mean(0), "out_std": allu.std(0) + 1e-3}
    xs = [((b - norm["in_mean"]) / norm["in_std"]).astype(np.float32) for b in base]
    ys = [((u[:, 1:] - norm["out_mean"]) / norm["out_std"]).astype(np.float32) for u in user]
    norm["gv"] = np.mean([y.var(axis=0) for y in ys if len(y) > 1], axis=0)

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = MceptNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-4)
    step = 0
    if resume and has_checkpoint(run_dir):
        state = load_checkpoint(run_dir)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step = int(state["step"])
        rng = np.random.default_rng(seed + step)
    crop = min(crop, min(len(x) for x in xs))
    loss_value = float("nan")
    try:
        while step < steps:
            ctx.check()
            xb, yb = [], []
            for k in rng.integers(0, len(xs), batch):
                s = int(rng.integers(0, len(xs[k]) - crop + 1))
                xb.append(xs[k][s:s + crop].T)
                yb.append(ys[k][s:s + crop].T)
            pred = net(torch.from_numpy(np.stack(xb)))
            loss = torch.mean((pred - torch.from_numpy(np.stack(yb))) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_value = float(loss.detach())
            if step % 25 == 0 or step == steps:
                yield Progress(0.5 + 0.48 * step / steps, f"step {step}/{steps} loss {loss_value:.3f}",
                               metrics={"loss": loss_value}, step=step)
            if step % 500 == 0:
                save_checkpoint(run_dir, {"images_seen": step, "step": step,
                                          "net": net.state_dict(), "opt": opt.state_dict(),
                                          "sched": sched.state_dict()})
    except BaseException:
        save_checkpoint(run_dir, {"images_seen": step, "step": step, "net": net.state_dict(),
                                  "opt": opt.state_dict(), "sched": sched.state_dict()})
        raise
    net.eval()
    voice = PersonalVoice(
        net, {k: np.asarray(v, np.float32) for k, v in norm.items()}, stats["base_voice"],
        int(stats["sample_rate"]), tuple(stats["log_f0"]), float(stats["rate"]),
        {"name": output.stem, "takes": stats["takes"], "steps": steps},
    )
    save_personal_voice(output, voice)
    yield Progress(1.0, f"wrote {output.name}")
    return {"model": str(output), "takes": stats["takes"], "skipped": len(stats["skipped"]),
            "loss": loss_value, "rate": float(stats["rate"]),
            "pitch_semitones": voice.pitch_semitones, "seconds": time.monotonic() - t0}

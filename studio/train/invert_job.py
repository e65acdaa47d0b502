"""Avatar from a photo: the one inversion job of ``studio invert`` and File → New avatar from
photo.

The photo goes through the ingestion pipeline (decode, dlib detection and 68 landmarks,
FFHQ-style alignment at the model's resolution); :mod:`studio.face.invert` projects it into
w+ with the attribute regressor's activations as the feature loss, optionally tunes the
generator around the latent (pivotal tuning), and the job measures the result: PSNR and SSIM
against the aligned photo, the dlib identity distance, the attribute regressor's reading of
both, and (after tuning) how well edits still work. Files are written atomically next to the
project: ``STEM_latent.npy`` and, with tuning, ``STEM_face.safetensors`` (a new file: the
original model is never touched).

This sits in ``studio.train`` because it needs the photo pipeline, the face networks and
the attribute regressor together (the layers below may not import each other).
"""

from __future__ import annotations

import io
import time
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.atomic import atomic_write
from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.face.generator import Generator as StyleGenerator
from studio.face.invert import (
    InvertSettings,
    edit_consistency,
    edit_directions,
    pivotal_tune,
    project,
    to_tensor,
    to_uint8,
)
from studio.face.invert_losses import psnr, ssim_uint8
from studio.face.model_file import FaceModel, load_face_model, save_face_model

__all__ = ["AttributeFeatures", "InversionOutcome", "align_photo", "invert_image",
           "invert_photo_job", "measure", "write_avatar_files"]


class AttributeFeatures:
    """Activations of the attribute regressor's four stages, for the feature loss."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net.eval().requires_grad_(False)
        self.taps = {i for i, m in enumerate(net.trunk) if i > 0 and
                     isinstance(net.trunk[i - 1], torch.nn.Conv2d) and
                     isinstance(m, torch.nn.SiLU) and i % 5 == 4}

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.float()
        size = self.net.size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        out = []
        for i, layer in enumerate(self.net.trunk):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def load_regressor(path: Path | None = None) -> Any:
    from studio.train.attributes import find_attribute_model, load_attribute_regressor

    found = find_attribute_model(path)
    if found is None:
        raise StudioError("the attribute model (models/metrics/attributes.safetensors) is "
                          "missing; it provides the feature loss for inversion")
    return load_attribute_regressor(found)


def align_photo(path: Path, size: int) -> np.ndarray:
    """The largest face of a photo, aligned FFHQ-style at ``size`` px. StudioError naming
    the file for an unreadable photo or one without a face."""
    from studio.photos.align import align_face, ffhq_quad
    from studio.photos.decode import load_photo
    from studio.photos.faces import shared_finder
    from studio.photos.report import Rejected

    path = Path(path)
    try:
        photo = load_photo(path)
    except Rejected as rej:
        raise StudioError(rej.message, path) from None
    faces = []
    for face in shared_finder().find(photo.rgb):
        try:
            faces.append((ffhq_quad(face.landmarks).size, face))
        except ValueError:
            continue
    if not faces:
        raise StudioError("no face found in this photo (faces must be upright and frontal, "
                          "and at least about 40 pixels across)", path)
    faces.sort(key=lambda sf: sf[0], reverse=True)
    try:
        return align_face(photo.rgb, faces[0][1].landmarks, size).image
    except ValueError as exc:
        raise StudioError(f"cannot align the face: {exc}", path) from None


@dataclass
class InversionOutcome:
    ws: np.ndarray
    target: np.ndarray  # the aligned photo at the model's resolution
    recon_w: np.ndarray  # reconstruction by w+ alone (original generator)
    G_tuned: StyleGenerator | None = None
    recon_tuned: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def measure(target: np.ndarray, recon: np.ndarray, regressor: Any = None,
            identity: Any = None) -> dict[str, Any]:
    """PSNR, SSIM, identity distance and attribute agreement of a reconstruction."""
    out: dict[str, Any] = {"psnr": round(psnr(target, recon), 3),
                           "ssim": round(ssim_uint8(target, recon), 4)}
    if identity is not None:
        out["identity_distance"] = round(identity.distance(target, recon), 4)
    if regressor is not None:
        out["attributes"] = attribute_agreement(regressor, target, recon)
    return out


def attribute_agreement(regressor: Any, target: np.ndarray,
                        recon: np.ndarray) -> dict[str, Any]:
    """Per attribute, the regressor's reading of target and reconstruction: categorical
    ones agree when the most likely class is the same; continuous ones report the
    difference as a share of the attribute's range."""
    pred = regressor.predict(np.stack([target, recon]))
    per: dict[str, Any] = {}
    agree = []
    for a in regressor.attributes:
        p = pred[a.name]
        if a.kind == "categorical":
            t, r = a.choices[int(np.argmax(p[0]))], a.choices[int(np.argmax(p[1]))]
            per[a.name] = {"target": t, "reconstruction": r}
            agree.append(t == r)
        else:
            diff = abs(float(p[0]) - float(p[1])) / max(a.high - a.low, 1e-9)
            per[a.name] = {"target": round(float(p[0]), 3),
                           "reconstruction": round(float(p[1]), 3), "diff": round(diff, 3)}
            agree.append(diff < 0.15)
    return {"agree": round(float(np.mean(agree)), 3), "per_attribute": per}


def invert_image(ctx: JobContext | None, target: np.ndarray, model: FaceModel,
                 settings: InvertSettings, regressor: Any = None, identity: Any = None,
                 ) -> Generator[Progress, None, InversionOutcome]:
    """Invert an aligned ``R x R x 3`` uint8 face with ``model`` (two phases when
    ``settings.pivotal_steps``); yields progress over the whole run."""
    G = model.G
    R = G.img_resolution
    if target.shape != (R, R, 3) or target.dtype != np.uint8:
        raise StudioError(f"the face must be a {R}x{R} RGB image for this model, "
                          f"not {target.shape}")
    features = AttributeFeatures(regressor.net) if regressor is not None else None
    tuned = settings.pivotal_steps > 0
    s = replace(settings, optimize_noise=settings.optimize_noise and tuned)
    total = s.steps + s.pivotal_steps
    t = to_tensor(target)
    t0 = time.monotonic()
    gen = project(G, t, s, features)
    proj = yield from _scaled(gen, 0.0, s.steps / total, ctx)
    t_proj = time.monotonic() - t0
    out = InversionOutcome(ws=proj.ws, target=target, recon_w=proj.image)
    out.metrics["w_plus"] = {**measure(target, proj.image, regressor, identity),
                             "seconds": round(t_proj, 2)}
    if tuned:
        t1 = time.monotonic()
        gen = pivotal_tune(G, t, proj.ws, s, features, proj.noises)
        G_t = yield from _scaled(gen, s.steps / total, 1.0, ctx, s.steps)
        t_pt = time.monotonic() - t1
        with torch.no_grad():
            img = G_t.synthesis(torch.from_numpy(proj.ws)[None].to(G.mapping.w_avg.device),
                                noise_mode="const")
        out.G_tuned, out.recon_tuned = G_t, to_uint8(img)
        dirs = edit_directions(G, model.controls)
        consist = edit_consistency(G, G_t, proj.ws, dirs)
        out.metrics["pivotal"] = {**measure(target, out.recon_tuned, regressor, identity),
                                  "seconds": round(t_proj + t_pt, 2),
                                  "edit_consistency": round(consist["mean"], 4)}
    return out


def _scaled(gen: Generator[Progress, None, Any], lo: float, hi: float,
            ctx: JobContext | None, step_offset: int = 0) -> Generator[Progress, None, Any]:
    """Re-yield a phase's progress with its fraction mapped into ``[lo, hi]`` and its step
    numbers after ``step_offset`` (one x axis for both phases)."""
    while True:
        if ctx is not None:
            ctx.check()
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        f = None if p.fraction is None else lo + (hi - lo) * p.fraction
        step = None if p.step is None else p.step + step_offset
        yield Progress(f, p.message, p.preview, p.metrics, step)


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    for i in range(2, 10_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise StudioError("too many files with this name", path)


def write_avatar_files(out: InversionOutcome, folder: Path, stem: str, model: FaceModel,
                       ) -> tuple[Path, Path | None]:
    """Write ``STEM_latent.npy`` (and ``STEM_face.safetensors`` after tuning) into
    ``folder`` atomically; existing files are never overwritten (a number is added)."""
    folder.mkdir(parents=True, exist_ok=True)
    latent = _unique(folder / f"{stem}_latent.npy")
    buf = io.BytesIO()
    np.save(buf, out.ws.astype(np.float32), allow_pickle=False)
    atomic_write(latent, lambda f: f.write(buf.getvalue()))
    tuned_path = None
    if out.G_tuned is not None:
        tuned_path = _unique(folder / f"{stem}_face.safetensors")
        src = model.path.name if model.path is not None else model.name
        save_face_model(tuned_path, out.G_tuned, name=f"{model.name or 'face'} tuned on {stem}",
                        source=f"pivotal tuning of {src}",
                        license=str(model.meta.get("license", "")),
                        training={"kind": "pivotal_tuning", "base": src,
                                  "metrics": out.metrics.get("pivotal", {})},
                        controls=model.controls or None)
    return latent, tuned_path


def invert_photo_job(ctx: JobContext, photo: Path, *, model_path: Path, folder: Path,
                     stem: str | None = None, model_ref: str | None = None,
                     settings: InvertSettings | None = None,
                     project_path: Path | None = None,
                     device: str = "auto") -> Generator[Progress, None, dict[str, Any]]:
    """The inversion job (kind ``invert``). Writes the avatar files into ``folder``; with
    ``project_path`` also writes that project (a new one, or the existing one with its
    avatar replaced; atomic, the previous file kept as ``.bak``). Returns a dict with the
    avatar fields (``model``, ``latent``: references relative to ``folder``), the file
    paths and the metrics."""
    from studio.core.devices import select_device

    settings = settings or InvertSettings()
    photo = Path(photo)
    stem = stem or photo.stem
    yield Progress(None, f"Loading {Path(model_path).name}")
    choice = select_device(device)
    model = load_face_model(model_path, device=choice.torch_device)
    regressor = load_regressor()
    from studio.photos.identity import shared_identity_meter

    identity = shared_identity_meter()
    yield Progress(0.0, f"Finding and aligning the face in {photo.name}")
    ctx.check()
    target = align_photo(photo, model.resolution)
    outcome = yield from invert_image(ctx, target, model, settings, regressor, identity)
    yield Progress(1.0, "Saving")
    latent, tuned = write_avatar_files(outcome, folder, stem, model)
    ref = tuned.name if tuned is not None else (model_ref or "default")
    result: dict[str, Any] = {
        "photo": str(photo), "latent": latent.name, "model": ref,
        "latent_path": str(latent), "model_path": str(tuned or model_path),
        "metrics": outcome.metrics, "preview": outcome.recon_tuned
        if outcome.recon_tuned is not None else outcome.recon_w,
    }
    if project_path is not None:
        result["project"] = str(write_project(project_path, ref, latent.name, stem))
    return result


def write_project(path: Path, model_ref: str, latent_rel: str, name: str) -> Path:
    """A project whose avatar is the inverted face: the file at ``path`` with its avatar
    replaced (the rest kept), or a new project."""
    from studio.core.atomic import atomic_write_bytes
    from studio.core.project import Avatar, Project, load_project, project_to_bytes

    path = Path(path)
    if path.exists():
        project = load_project(path)
        project.avatar = Avatar(model=model_ref, latent=latent_rel)
    else:
        project = Project(name=name, avatar=Avatar(model=model_ref, latent=latent_rel))
    atomic_write_bytes(path, project_to_bytes(project, path), backup=True)
    return path


def model_reference(model_path: Path, project_path: Path) -> str:
    """How the project will name the (untuned) model: ``default``, ``library:NAME`` or a
    path next to the project. StudioError, before any work, for a model elsewhere."""
    from studio.core import paths
    from studio.face.model_ref import reference_for

    return reference_for(Path(model_path), Path(project_path).resolve(),
                         [paths.user_models_dir()])


def bf16_default(device: str = "auto") -> bool:
    """Whether inversion uses bf16 autocast by default. Off: on the development machine
    (AMD EPYC with AVX512-BF16, 2 shared cores) autocast did not make a projection step of
    the 64 px model faster (about 0.9 s either way, measured while busy);
    ``bench/invert.py`` prints the ratio for this machine, ``--bf16 on`` turns it on."""
    del device
    return False

"""One frame request, Qt-free: everything that decides a face's pixels, and the one way to
turn it into w+ and an image.

The Face panel's preview, ``studio generate``, timeline playback and ``studio render`` all
build a :class:`FaceRequest` and render it with :func:`request_ws` / :func:`render_request`,
so the same request gives the same pixels everywhere. The checks live here once: a request
the CLI refuses is refused by the preview too (no silent clamping).

Style-mixing layers are a half-open range ``[a, b)``: layers ``a`` to ``b - 1`` come from
the mix seed, the CLI's ``A:B`` and the Face panel's "from / up to" alike.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.errors import FileFormatError, StudioError
from studio.core.files import check_regular_file
from studio.core.project import (
    DEFAULT_TRUNCATION,
    MAX_SEED,
    TRUNCATION_RANGE,
    Project,
    resolve_asset,
)

if TYPE_CHECKING:
    from studio.face.engine import FaceEngine

NOISE_MODES = ("const", "random", "none")
MAX_LATENT_BYTES = 64 * 1024 * 1024  # a w+ of 18 x 512 float32 is 37 KB; be generous
SIZE_RANGE = (8, 8192)

__all__ = [
    "DEFAULT_TRUNCATION", "FaceRequest", "RequestError", "avatar_request", "check_request",
    "controls_offset", "load_latent", "render_request", "render_requests", "request_edits",
    "request_ws",
]


class RequestError(StudioError):
    """A request that cannot be rendered (out-of-range seed, layers, latent shape...).
    ``field`` names the request field at fault, so a front end can point at its widget or
    option."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, eq=False)
class FaceRequest:
    """What to render. ``latent`` (w+ from inversion) overrides ``seed``/``z``; ``z``
    overrides ``seed``. ``controls`` are named control values, applied with the model's
    control directions; ``w_offset`` is an extra additive offset in W (``[w_dim]`` or
    ``[num_ws, w_dim]``)."""

    seed: int = 0
    truncation: float = DEFAULT_TRUNCATION
    mix_seed: int | None = None
    mix_layers: tuple[int, int] | None = None  # None: the upper half
    noise_mode: str = "const"
    z: np.ndarray | None = None
    latent: np.ndarray | None = None
    controls: Mapping[str, float] = field(default_factory=dict)
    w_offset: np.ndarray | None = None
    size: int | None = None  # output size in pixels; None: the model's resolution
    # blend: w+ interpolated towards another face (``blend_latent`` overrides
    # ``blend_seed``, which is mapped at this request's truncation) by ``blend_amount``
    blend_seed: int | None = None
    blend_latent: np.ndarray | None = None
    blend_amount: float = 0.0


def check_request(req: FaceRequest, num_ws: int | None = None) -> None:
    """Raise :class:`RequestError` for anything out of range. With ``num_ws`` (the model's
    number of w layers) the mixing range is checked against the model too."""
    if isinstance(req.seed, bool) or not isinstance(req.seed, int | np.integer):
        raise RequestError(f"the seed must be a whole number, not {req.seed!r}", "seed")
    if not 0 <= int(req.seed) <= MAX_SEED:
        raise RequestError(f"the seed must be between 0 and {MAX_SEED}, not {req.seed}", "seed")
    if req.mix_seed is not None and not 0 <= int(req.mix_seed) <= MAX_SEED:
        raise RequestError(f"the mix seed must be between 0 and {MAX_SEED}, not {req.mix_seed}",
                           "mix_seed")
    lo, hi = TRUNCATION_RANGE
    psi = req.truncation
    if not isinstance(psi, int | float) or not math.isfinite(psi) or not lo <= psi <= hi:
        raise RequestError(f"truncation must be a number from {lo:g} to {hi:g}, not {psi!r}",
                           "truncation")
    if req.noise_mode not in NOISE_MODES:
        raise RequestError(f"noise mode must be one of {', '.join(NOISE_MODES)}, "
                           f"not {req.noise_mode!r}", "noise_mode")
    if req.size is not None and not SIZE_RANGE[0] <= int(req.size) <= SIZE_RANGE[1]:
        raise RequestError(f"the size must be between {SIZE_RANGE[0]} and {SIZE_RANGE[1]} "
                           f"pixels, not {req.size}", "size")
    if req.mix_seed is not None and req.mix_layers is not None and num_ws is not None:
        a, b = req.mix_layers
        if not 0 <= a < b <= num_ws:
            raise RequestError(
                f"style-mixing layers {a} up to {b} do not fit this model: it has {num_ws} "
                f"w layers, so the range must satisfy 0 <= from < up-to <= {num_ws}",
                "mix_layers")
    for name, value in req.controls.items():
        if not math.isfinite(float(value)):
            raise RequestError(f"control {name!r} is not a finite number", "controls")
    if req.blend_seed is not None and not 0 <= int(req.blend_seed) <= MAX_SEED:
        raise RequestError(f"the blend seed must be between 0 and {MAX_SEED}, not "
                           f"{req.blend_seed}", "blend_seed")
    amount = req.blend_amount
    if not isinstance(amount, int | float) or not math.isfinite(amount) or not 0 <= amount <= 1:
        raise RequestError(f"the blend amount must be a number from 0 to 1, not {amount!r}",
                           "blend_amount")
    for what, arr in (("z", req.z), ("latent", req.latent), ("w offset", req.w_offset),
                      ("blend latent", req.blend_latent)):
        if arr is not None and not np.isfinite(arr).all():
            raise RequestError(f"the {what} contains NaN or infinity", what.replace(" ", "_"))


def controls_offset(controls: Mapping[str, np.ndarray], values: Mapping[str, float],
                    num_ws: int, w_dim: int) -> np.ndarray | None:
    """The W offset of named control values: ``sum(value * direction)``. Names the model
    has no direction for contribute nothing (a rig may drive channels a model lacks)."""
    total = None
    for name, value in values.items():
        direction = controls.get(name)
        if direction is None or value == 0:
            continue
        d = np.asarray(direction, np.float32)
        d = np.broadcast_to(d, (num_ws, w_dim)) if d.shape == (w_dim,) else d
        total = d * np.float32(value) if total is None else total + d * np.float32(value)
    return total


def request_ws(engine: FaceEngine, req: FaceRequest) -> np.ndarray:
    """w+ ``[num_ws, w_dim]`` for a request (before controls and offsets), blended."""
    check_request(req, engine.num_ws)
    ws = _source_ws(engine, req)
    if req.blend_amount == 0 or (req.blend_seed is None and req.blend_latent is None):
        return ws
    if req.blend_latent is not None:
        other = _fit_latent(engine, req.blend_latent, "blend_latent")
    else:
        other = engine.ws_for(int(req.blend_seed), float(req.truncation))
    a = np.float32(req.blend_amount)
    return ((np.float32(1) - a) * ws + a * other).astype(np.float32)


def _fit_latent(engine: FaceEngine, latent: np.ndarray, field: str) -> np.ndarray:
    ws = np.array(latent, np.float32)  # a copy: cached latents are read-only
    if ws.shape == (engine.w_dim,):
        ws = np.broadcast_to(ws, (engine.num_ws, engine.w_dim)).copy()
    if ws.shape != (engine.num_ws, engine.w_dim):
        what = "the blend latent" if field == "blend_latent" else "the latent"
        raise RequestError(f"{what} has shape {ws.shape}; this model needs "
                           f"({engine.num_ws}, {engine.w_dim}) or ({engine.w_dim},)", field)
    return ws


def _source_ws(engine: FaceEngine, req: FaceRequest) -> np.ndarray:
    if req.latent is not None:
        return _fit_latent(engine, req.latent, "latent")
    src: Any = int(req.seed)
    if req.z is not None:
        z = np.asarray(req.z, np.float64)
        if z.shape not in ((engine.z_dim,), (1, engine.z_dim)):
            raise RequestError(f"z has shape {z.shape}; this model needs ({engine.z_dim},)", "z")
        src = z.reshape(engine.z_dim)
    return engine.ws_for(src, float(req.truncation), req.mix_seed,
                         req.mix_layers if req.mix_seed is not None else None)


def request_edits(engine: FaceEngine, req: FaceRequest,
                  ws: np.ndarray | None = None) -> np.ndarray | None:
    """The total W offset of a request: its controls (:func:`studio.face.controls.controls_edit`:
    directions, and parametric controls through the model's encoder at the face ``ws``,
    computed from the request when not given) plus its explicit offset."""
    from studio.face.controls import ControlError, controls_edit

    if ws is None and any(c.kind == "parametric" for c in engine.model.control_set):
        ws = request_ws(engine, req)
    try:
        edits = controls_edit(engine.model, ws, req.controls)
    except ControlError as exc:
        raise RequestError(str(exc), "controls") from None
    if req.w_offset is not None:
        off = np.asarray(req.w_offset, np.float32)
        edits = off if edits is None else edits + off
    return edits


def render_request(engine: FaceEngine, req: FaceRequest, coarse: bool = False) -> np.ndarray:
    """The ``H x W x 3`` uint8 frame of a request. ``coarse`` gives the quick low-resolution
    preview frame (scaled to the same size)."""
    ws = request_ws(engine, req)
    edits = request_edits(engine, req, ws)
    size = req.size if req.size is not None else engine.resolution
    if coarse:
        return engine.render_preview(ws, noise_mode=req.noise_mode, edits=edits, size=size)
    return engine.render(ws, noise_mode=req.noise_mode, edits=edits,
                         size=None if size == engine.resolution else size)


def render_requests(engine: FaceEngine, reqs: Sequence[FaceRequest]) -> np.ndarray:
    """``N x H x W x 3`` uint8 frames of several requests, rendered in batches with
    :meth:`FaceEngine.render_batch` (the same pixels as :func:`render_request` one by one;
    consecutive requests with the same noise mode and size share a batch)."""
    out: list[np.ndarray] = []
    i = 0
    while i < len(reqs):
        key = (reqs[i].noise_mode, reqs[i].size)
        j = i
        while j < len(reqs) and (reqs[j].noise_mode, reqs[j].size) == key:
            j += 1
        group = reqs[i:j]
        size = key[1] if key[1] is not None else engine.resolution
        ws_list = [request_ws(engine, r) for r in group]
        out.append(engine.render_batch(ws_list,
                                       noise_mode=key[0],
                                       edits=[request_edits(engine, r, w)
                                              for r, w in zip(group, ws_list, strict=True)],
                                       size=None if size == engine.resolution else size))
        i = j
    if not out:
        return np.zeros((0, engine.resolution, engine.resolution, 3), np.uint8)
    return out[0] if len(out) == 1 else np.concatenate(out)


# -- latent files ------------------------------------------------------------------------

_latent_cache: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
_latent_lock = threading.Lock()


def _read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npy.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = npy.read_array_header_2_0(f)
            else:  # pragma: no cover - numpy raises for unknown versions first
                raise ValueError(f"unknown .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise FileFormatError(f"not a NumPy .npy array ({exc})", path) from None
    return tuple(int(n) for n in shape), dtype


def load_latent(path: str | os.PathLike[str]) -> np.ndarray:
    """A w+ (or z/w) array from a ``.npy`` file: bounded, numeric, finite. The header is
    checked before anything is allocated; results are cached by (path, size, mtime), so a
    slider drag does not read the file again."""
    path = Path(path)
    size = check_regular_file(path, MAX_LATENT_BYTES, "latent (.npy) file")
    st = path.stat()
    key = (str(path.resolve()), size, st.st_mtime_ns)
    with _latent_lock:
        hit = _latent_cache.get(key)
        if hit is not None:
            _latent_cache.move_to_end(key)
            return hit
    if size == 0:
        raise FileFormatError("the latent file is empty", path)
    shape, dtype = _read_npy_header(path)
    if dtype.hasobject or dtype.kind not in "fiu":
        raise FileFormatError(f"the latent must hold numbers, not {dtype}", path)
    count = math.prod(shape) if shape else 1
    if len(shape) > 3 or count == 0 or count * dtype.itemsize > size:
        raise FileFormatError(f"the latent's shape {shape} does not fit the file", path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FileFormatError(f"not a NumPy .npy array ({exc})", path) from None
    arr = np.asarray(arr, np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if not np.isfinite(arr).all():
        raise FileFormatError("the latent contains NaN or infinity", path)
    arr.setflags(write=False)
    with _latent_lock:
        _latent_cache[key] = arr
        while len(_latent_cache) > 16:
            _latent_cache.popitem(last=False)
    return arr


def avatar_request(project: Project, project_path: Path | None,
                   controls: Mapping[str, float] | None = None,
                   size: int | None = None) -> FaceRequest:
    """The project's avatar as a request. ``controls`` (e.g. the timeline's values at some
    time) are added on top of the avatar's own control values."""
    a = project.avatar
    latent = None
    if a.latent:
        latent = load_latent(resolve_asset(project_path, a.latent))
    values = dict(a.controls)
    for name, v in (controls or {}).items():
        values[name] = values.get(name, 0.0) + float(v)
    b = a.blend
    blend_latent = None
    if b is not None and b.latent:
        blend_latent = load_latent(resolve_asset(project_path, b.latent))
    return FaceRequest(seed=a.seed, truncation=a.truncation, mix_seed=a.mix_seed,
                       mix_layers=tuple(a.mix_layers) if a.mix_seed is not None else None,
                       noise_mode=a.noise_mode, latent=latent, controls=values, size=size,
                       blend_seed=b.seed if b is not None else None, blend_latent=blend_latent,
                       blend_amount=b.amount if b is not None else 0.0)

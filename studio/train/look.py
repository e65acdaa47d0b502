"""How often a face model makes a given *look* (e.g. red hair with glasses), read by the
attribute regressor, and how close its images are to a data set (Fréchet distance).

This is the measurement behind "fine-tuning on a subset moves the model towards it":
:func:`look_report` before and after a fine-tune on, say, 200 red-haired faces with glasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.core.errors import StudioError

Look = dict[str, tuple[str, ...]]


def parse_look(text: str) -> Look:
    """``"hair_color=red,glasses=round|square"`` -> ``{"hair_color": ("red",), "glasses":
    ("round", "square")}``: every named categorical attribute must take one of its values."""
    look: Look = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, values = part.partition("=")
        choices = tuple(v.strip() for v in values.split("|") if v.strip())
        if not sep or not name.strip() or not choices:
            raise StudioError(f"bad look {part!r}: write attribute=value or attribute=a|b")
        look[name.strip()] = choices
    if not look:
        raise StudioError("the look names no attribute")
    return look


def look_mask(regressor: Any, images: np.ndarray, look: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Boolean ``[N]``: which images the regressor reads as having the look."""
    attrs = {a.name: a for a in regressor.attributes}
    for name, values in look.items():
        a = attrs.get(name)
        if a is None or a.kind != "categorical":
            raise StudioError(f"the attribute model has no categorical attribute {name!r}")
        bad = [v for v in values if v not in a.choices]
        if bad:
            raise StudioError(f"{name} has no value {bad[0]!r} (it has {', '.join(a.choices)})")
    pred = regressor.predict(images)
    mask = np.ones(len(images), bool)
    for name, values in look.items():
        choices = attrs[name].choices
        wanted = np.array([c in values for c in choices])
        mask &= wanted[pred[name].argmax(1)]
    return mask


def look_report(G: Any, regressor: Any, look: Mapping[str, Sequence[str]], real: np.ndarray,
                n: int = 500, seed: int = 0, psi: float = 1.0) -> dict[str, float]:
    """Share of ``n`` generated faces with the look, the share in ``real`` (the regressor's
    reading of the data itself), and the Fréchet distance (fixed random features) between
    the generated faces and ``real``."""
    import torch

    from studio.train.metrics import (
        RandomFeatures,
        compute_features,
        fd_from_features,
        sample_images,
    )

    with torch.no_grad():
        fake = sample_images(G, n, seed=seed, truncation_psi=psi)
    extractor = RandomFeatures()
    fd = fd_from_features(compute_features(real, extractor), compute_features(fake, extractor))
    return {"share": float(look_mask(regressor, fake, look).mean()),
            "share_in_data": float(look_mask(regressor, real, look).mean()),
            "fd": float(fd), "n": int(n)}

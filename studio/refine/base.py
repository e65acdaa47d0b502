"""The one interface every refiner backend implements, and what they share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from studio.core.errors import StudioError

# on_step(done, total): called after each denoising step; raising stops the refiner there
StepCallback = Callable[[int, int], None]

SCHEDULERS = ("ddim", "dpm++")
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class RefineParams:
    """How to refine. ``strength`` 0 returns the input resized to the output size; 1 starts
    from pure noise (the default refiner then keeps only its conditioning on the frame).
    ``steps`` is the schedule's length: ``int(steps x strength)`` steps run."""

    strength: float = 0.3
    steps: int = 20
    seed: int = 0
    prompt: str = ""
    negative_prompt: str = ""
    guidance: float = 5.0
    scheduler: str = "ddim"
    size: int | None = None  # output side in px; None: the backend's natural size
    feather: float = 8.0  # mask feathering radius in output px

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise StudioError(f"strength {self.strength} is outside 0..1")
        if not 1 <= self.steps <= 500:
            raise StudioError(f"steps {self.steps} is outside 1..500")
        if not 0 <= self.seed <= MAX_SEED:
            raise StudioError(f"seed {self.seed} is outside 0..{MAX_SEED}")
        if not 0.0 <= self.guidance <= 50.0:
            raise StudioError(f"guidance {self.guidance} is outside 0..50")
        if self.scheduler not in SCHEDULERS:
            raise StudioError(f"unknown scheduler {self.scheduler!r}; choose one of "
                              f"{', '.join(SCHEDULERS)}")
        if self.size is not None and not 8 <= self.size <= 4096:
            raise StudioError(f"size {self.size} is outside 8..4096")

    @property
    def active_steps(self) -> int:
        """How many denoising steps run (0 at strength 0)."""
        # diffusers' img2img rule, so both backends count the same
        return min(self.steps, int(self.steps * self.strength + 1e-9))


class Refiner(Protocol):
    """A loaded refiner model."""

    name: str
    takes_text: bool  # prompt, negative prompt and guidance mean something

    def output_size(self, height: int, width: int, params: RefineParams) -> tuple[int, int]:
        ...

    def refine(self, image: np.ndarray, params: RefineParams,
               on_step: StepCallback | None = None) -> np.ndarray:
        """``image`` HxWx3 uint8 -> the refined image at ``output_size`` (uint8)."""
        ...


def make_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A diffusers scheduler of the chosen family built from a scheduler config."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if name == "ddim":
        return DDIMScheduler.from_config(config)
    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++",
                                                       solver_order=2)
    raise StudioError(f"unknown scheduler {name!r}")


OOM_ADVICE = ("out of memory while refining: lower the output size or the steps, use fp16/bf16 "
              "(Preferences → Precision), close other GPU programs, or run on the CPU")


@contextlib.contextmanager
def memory_errors(what: str) -> Iterator[None]:
    """Turn an out-of-memory error into a StudioError with advice."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError:
        raise StudioError(f"{what}: {OOM_ADVICE}") from None
    except RuntimeError as exc:
        text = str(exc).lower()
        if "out of memory" in text or "can't allocate memory" in text:
            raise StudioError(f"{what}: {OOM_ADVICE}") from None
        raise

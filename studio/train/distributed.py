"""Several CUDA devices: data-parallel training when launched with ``torchrun``.

``torchrun --nproc_per_node=N -m studio.cli train face ...`` starts one process per GPU
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` in the environment). Each process trains on its
own slice of every batch; gradients are averaged across processes before each optimiser
step, exactly what ``DistributedDataParallel`` does. We all-reduce by hand instead of
wrapping the networks in DDP because the lazy R1 and path-length penalties take gradients
of gradients (``create_graph=True``), which DDP's reducer does not support; StyleGAN2-ADA
does the same. Parameters are broadcast from rank 0 at the start, the ADA statistics are
summed over processes, and only rank 0 writes checkpoints, previews and the model.

Without those variables (or with ``WORLD_SIZE=1``) nothing here does anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast_module(self, module: torch.nn.Module) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def average_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients of ``params`` over all processes (one flat all-reduce)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        params = [p for p in params if p.requires_grad]
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def sum_floats(self, values: list[float], device: torch.device) -> list[float]:
        if not self.enabled:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return [float(v) for v in t.cpu()]

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


def init_distributed() -> Dist:
    """Join the process group ``torchrun`` set up, or a single-process Dist."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:  # CPU processes (tests, debugging): gloo
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank)

"""Data-parallel training on ``torch.distributed``: run the trainer under ``torchrun``.

Each process takes a strided shard of every global mini-batch (DistributedSampler-style); the
loss computation is wrapped in :class:`torch.nn.parallel.DistributedDataParallel`, which
broadcasts rank 0's weights at construction and all-reduces (averages) the gradients in buckets
during the backward pass. With losses scaled as in :class:`icnn.learn.Trainer`, the averaged
gradient equals the gradient of the global batch mean, so N processes take the same steps as
one process on the same global batches.

DDP wraps the *loss* (model + loss function, :class:`icnn.learn.trainer.LossModule`), not the
bare model: an energy is evaluated many times per step inside ``argmin`` and the solvers need the
bare model, while DDP expects one forward and one backward per step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` in ``0..world_size-1``."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistContext:
    """Join the process group described by torchrun's environment (``WORLD_SIZE``, ``RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``); a no-op for a single process.

    Args:
        backend: ``"gloo"`` (CPU) or ``"nccl"``; default nccl when CUDA is available.
    """
    if dist.is_available() and dist.is_initialized():
        return current_context()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return current_context()


def current_context() -> DistContext:
    """The running process group's rank and size, or a single-process context."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size())
    return DistContext()


def shard(indices: Tensor, context: DistContext) -> Tensor:
    """This process's part of a global batch of example indices: ``indices[rank::world]``."""
    return indices[context.rank::context.world_size]


def wrap_loss(module: nn.Module, context: DistContext, *, find_unused_parameters: bool = False
              ) -> nn.Module:
    """``DistributedDataParallel(module)`` when running distributed, else ``module`` itself.

    Set ``find_unused_parameters`` when some parameters get no gradient in a step (e.g. a frozen
    branch); it costs one traversal of the autograd graph per step.
    """
    if not context.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device = next(module.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids,
                                   find_unused_parameters=find_unused_parameters)


def all_reduce_sum(values: Tensor, context: DistContext) -> Tensor:
    """Sum ``values`` over processes (a copy; identity for one process)."""
    values = values.clone()
    if context.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_flag(flag: bool, context: DistContext) -> bool:
    """Rank 0's ``flag`` on every process (keeps early stopping in lockstep)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.broadcast(value, src=0)
    return bool(value.item())


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()

"""Data-parallel training on ``torch.distributed`` (run the trainer under ``torchrun``).

Each process takes a strided shard of every global mini-batch (DistributedSampler-style), the
parameters start equal (broadcast from rank 0), and after each backward pass the gradients are
averaged over processes in one flat all-reduce (DDP's bucketed reduction, in one bucket). The
step is therefore the full-batch step: with losses scaled as in :class:`icnn.learn.Trainer`, the
averaged gradient equals the gradient of the global batch mean.

Why not the ``DistributedDataParallel`` wrapper: an energy is evaluated many times per step
inside ``argmin`` (loss-augmented inference, unrolled descent), and the solvers need the bare
model (its ``convex_input_shape``), which DDP's one-forward-one-backward reducer does not allow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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


@torch.no_grad()
def broadcast_module(module: nn.Module, context: DistContext) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if not context.enabled:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


@torch.no_grad()
def average_gradients(parameters: Iterable[nn.Parameter], context: DistContext) -> None:
    """Replace each ``.grad`` by its mean over processes (missing gradients count as zero)."""
    if not context.enabled:
        return
    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= context.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


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

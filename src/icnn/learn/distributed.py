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

Collectives run on the process group's device: the current CUDA device under NCCL (which
rejects CPU tensors), the CPU under gloo and MPI (:func:`collective_device`). Under NCCL each
process first selects ``cuda:LOCAL_RANK`` (:func:`init_distributed`), and the model it trains must
live there (:func:`check_module_device`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

CPU_BACKENDS = ("gloo", "mpi")
CUDA_BACKENDS = ("nccl",)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits.

    ``rank`` in ``0..world_size-1``, and ``device``, the device of the tensors its collectives exchange (and,
    under NCCL, of the model it trains).
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files and logs."""
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistContext:
    """Join the process group that torchrun describes, or run alone.

    Join the process group described by torchrun's environment (``WORLD_SIZE``, ``RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``); a no-op for a single process.

    Under NCCL, this process's CUDA device is set to ``cuda:LOCAL_RANK`` first, so the context's
    ``device`` is the GPU the model and data of this rank belong on.

    Args:
        backend: ``"gloo"`` (CPU) or ``"nccl"``; default nccl when CUDA is available.
    """
    if dist.is_available() and dist.is_initialized():
        return current_context()
    world_size = _int_env("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistContext()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if _device_type(backend) == "cuda":
        local_rank = _int_env("LOCAL_RANK", None)
        if not 0 <= local_rank < torch.cuda.device_count():
            raise ValueError(f"expected LOCAL_RANK in [0, {torch.cuda.device_count()}) (one CUDA "
                             f"device per process on this node), got {local_rank}")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return current_context()


def _int_env(name: str, default: int | None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ValueError(f"expected the environment variable {name} (set by torchrun), "
                             "found none")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an int in the environment variable {name}, got "
                         f"{value!r}") from None


def collective_device(backend: str, cuda_index: int | None = None) -> torch.device:
    """The device of the tensors that collectives of a ``backend`` process group exchange.

    ``"nccl"`` (or ``"cuda:nccl"``): ``cuda:cuda_index``, by default the current CUDA device;
    ``"gloo"``/``"mpi"``, or a per-device backend string with a CPU entry
    (``"cpu:gloo,cuda:nccl"``): the CPU.

    Raises:
        ValueError: an unknown backend.
    """
    if _device_type(backend) == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device() if cuda_index is None else cuda_index)


def _device_type(backend: str) -> str:
    """``"cpu"`` or ``"cuda"``: where a ``backend`` group's collectives take their tensors."""
    names: dict[str, str] = {}
    for entry in str(backend).lower().split(","):
        device_type, _, name = entry.strip().rpartition(":")
        if name:
            names[device_type or "any"] = name
    known = CPU_BACKENDS + CUDA_BACKENDS
    if not names or not set(names.values()) <= set(known):
        raise ValueError(f"expected a torch.distributed backend among {known} (or a per-device "
                         f"string like 'cpu:gloo,cuda:nccl'), got {backend!r}")
    return "cpu" if names.get("cpu", names.get("any")) in CPU_BACKENDS else "cuda"


def current_context() -> DistContext:
    """The running process group's rank, size and collective device, or a single process."""
    if dist.is_available() and dist.is_initialized():
        device = collective_device(str(dist.get_backend()))
        return DistContext(dist.get_rank(), dist.get_world_size(), device)
    return DistContext()


def check_module_device(module: nn.Module, context: DistContext) -> None:
    """Refuse to train ``module`` distributed off the process group's CUDA device.

    Under NCCL every parameter must be on ``context.device`` (``cuda:LOCAL_RANK``); a
    single process or a CPU group (gloo) is not checked.

    Raises:
        ValueError: a parameter lives elsewhere.
    """
    if not context.enabled or context.device.type != "cuda":
        return
    devices = sorted({str(p.device) for p in module.parameters()})
    if devices != [str(context.device)]:
        raise ValueError(f"expected every parameter of {type(module).__name__} on "
                         f"{context.device} (this rank's device under NCCL; move it with "
                         f".to({str(context.device)!r})), got parameters on {devices}")


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
    """Sum ``values`` over processes (a copy on ``values``' device; identity for one process).

    The reduction runs on ``context.device`` (the CUDA device under NCCL).
    """
    if not context.enabled:
        return values.clone()
    reduced = values.to(context.device, copy=True)
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(values.device)


def broadcast_flag(flag: bool, context: DistContext) -> bool:
    """Rank 0's ``flag`` on every process (keeps early stopping in lockstep)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=context.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def any_rank_flags(flag: bool, context: DistContext) -> list[int]:
    """The ranks whose ``flag`` is set, the same list on every process (one all-reduce).

    Every process must call it at the same point; a failure seen by one rank then stops all of
    them together instead of leaving the others waiting in the next collective.
    """
    if not context.enabled:
        return [0] if flag else []
    flags = torch.zeros(context.world_size, dtype=torch.int64, device=context.device)
    flags[context.rank] = int(bool(flag))
    dist.all_reduce(flags, op=dist.ReduceOp.SUM)
    return [rank for rank, value in enumerate(flags.tolist()) if value]


def all_gather_objects(value: Any, context: DistContext) -> list[Any]:
    """``value`` of every process, indexed by rank (``[value]`` for one process)."""
    if not context.enabled:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(context: DistContext) -> None:
    """Wait for every process (on this rank's GPU under NCCL)."""
    if context.enabled:
        if context.device.type == "cuda":
            dist.barrier(device_ids=[context.device.index])
        else:
            dist.barrier()

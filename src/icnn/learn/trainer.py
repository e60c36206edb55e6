"""One trainer for every task.

Mini-batches, optimiser and schedule, clipping, evaluation, early stopping, metrics files, exact resume and
data-parallel runs under ``torchrun``.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from ..checkpoint import atomic_write
from ..nn.constraints import project_constrained_
from ..nn.weight_decay import constrained_weight_penalty, decay_groups
from . import distributed as ddp
from .averaging import WeightAverage
from .seeding import seed_everything
from .state import load_checkpoint, rng_state, save_checkpoint, save_weights, set_rng_state

LossFn = Callable[[nn.Module, tuple[Tensor, ...]], Tensor]
EvalFn = Callable[[nn.Module], dict[str, float]]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step")
# settings a checkpoint fixes: a resumed run with other values would silently follow the
# checkpoint's (the optimiser state carries lr, decay and momentum) or leave the trajectory
RESUME_KEYS = ("batch_size", "optimizer", "lr", "weight_decay", "momentum", "schedule",
               "step_size", "gamma", "grad_clip", "shuffle", "drop_last", "seed",
               "monitor", "mode", "min_delta")

__all__ = ["LossModule", "Trainer", "TrainerConfig", "seed_everything"]


@dataclass
class TrainerConfig:
    """Hyper-parameters of :class:`Trainer` (the CLI maps its flags onto these one to one).

    Attributes:
        epochs: passes over the training set.
        batch_size: *global* mini-batch size; under ``torchrun`` each of the ``N`` processes
            takes every ``N``-th example of each global batch.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``; lr, weight_decay, momentum: its settings.
            ``weight_decay`` shrinks every weight toward 0, the constrained ``W^(z)`` included: for
            softplus/exp-parametrised weights it is an L2 penalty on ``W`` added to the loss, not
            the optimiser's decay of the raw parameter (:mod:`icnn.nn.weight_decay`).
        schedule: ``"constant"``, ``"cosine"`` (to 0 over ``epochs``) or ``"step"``
            (times ``gamma`` every ``step_size`` epochs); stepped once per epoch.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        average: keep an exponential moving average of the weights with this decay (about
            ``1 / (1 - average)`` steps; :class:`icnn.learn.averaging.WeightAverage`): the
            evaluation hook, the best model and the final model use the averaged weights
            (None: no averaging).
        shuffle: reshuffle each epoch (permutation seeded by ``seed`` and the epoch).
        drop_last: drop the last incomplete global batch.
        seed: seeds torch, numpy and Python's ``random`` at the start of a fresh run
            (:func:`icnn.learn.seed_everything`); an int in ``[0, 2**32)``.
        eval_every: run the evaluation hook every this many epochs.
        monitor, mode: metric of the evaluation hook (or ``"train_loss"``) that selects the best
            model and drives early stopping, minimised (``"min"``) or maximised (``"max"``).
        patience: stop after this many evaluations without improvement by ``min_delta``
            (None: never stop early).
        checkpoint_every: write a resumable checkpoint every this many epochs (and at the end).
        progress: show a tqdm progress bar (main process only).
        find_unused_parameters: tell DDP that some parameters may get no gradient in a step.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "constant"
    step_size: int = 30
    gamma: float = 0.1
    grad_clip: float | None = None
    average: float | None = None
    shuffle: bool = True
    drop_last: bool = False
    seed: int = 0
    eval_every: int = 1
    monitor: str = "train_loss"
    mode: str = "min"
    patience: int | None = None
    min_delta: float = 0.0
    checkpoint_every: int = 1
    progress: bool = True
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "checkpoint_every", "step_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"TrainerConfig.{name} must be a positive int, got {value!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        for name, low, strict in (("lr", 0.0, True), ("weight_decay", 0.0, False),
                                  ("momentum", 0.0, False), ("gamma", 0.0, True),
                                  ("min_delta", 0.0, False)):
            _check_number(name, getattr(self, name), low, strict)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, 0.0, True, "or None")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not (
                0 <= self.seed < 2**32):
            raise ValueError(f"TrainerConfig.seed must be an int in [0, 2**32), got {self.seed!r}")
        if self.average is not None and not 0.0 < self.average < 1.0:
            raise ValueError(f"average must be a decay in (0, 1) or None, got {self.average}")
        if self.patience is not None and (isinstance(self.patience, bool)
                                          or not isinstance(self.patience, int)
                                          or self.patience <= 0):
            raise ValueError(f"patience must be a positive int or None, got {self.patience!r}")


def _check_number(name: str, value: object, low: float, strict: bool, extra: str = "") -> None:
    """Refuse a non-finite ``value`` or one below ``low`` (``<= low`` when ``strict``)."""
    ok = (isinstance(value, int | float) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if strict else value >= low))
    if not ok:
        bound = f"{'>' if strict else '>='} {low:g}"
        raise ValueError(f"TrainerConfig.{name} must be a finite number {bound}"
                         f"{' ' + extra if extra else ''}, got {value!r}")


class LossModule(nn.Module):
    """``loss_fn(model, batch)`` as a module: the unit that ``DistributedDataParallel`` wraps.

    Inside one forward the loss may evaluate the bare model any number of times (argmin,
    loss-augmented inference, unrolled descent); DDP sees one forward and one backward per step,
    and its reducer all-reduces every parameter's gradient during that backward.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, tuple[Tensor, ...]], Tensor]
                 ) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: tuple[Tensor, ...], count: int) -> Tensor:
        """Sum of the per-example losses of ``batch`` (``count`` examples), a scalar."""
        losses = self.loss_fn(self.model, batch)
        if losses.ndim == 0:
            return losses * count
        if losses.shape != (count,):
            raise ValueError(f"loss_fn must return a scalar or per-example losses of shape "
                             f"({count},), got {tuple(losses.shape)}")
        return losses.sum()


class Trainer:
    """Mini-batch training of ``model`` on ``loss_fn``.

    ``loss_fn(model, batch)`` gets the bare model and a tuple of tensors (this process's rows of
    the global batch) and returns either the batch-mean loss (a scalar) or per-example losses
    ``(batch,)``. The trainer rescales it so that, across processes, the step follows the
    gradient of the mean over the *global* batch. After each optimiser step it projects every
    constrained layer anywhere in ``model`` (:func:`icnn.nn.project_constrained_`; a no-op for
    softplus/exp-parametrised weights), so a wrapper holding a projected model stays convex.

    Under ``torchrun`` every process runs the same calls; the model must be on the process
    group's device (``cuda:LOCAL_RANK`` under NCCL). A non-finite loss on any process stops every
    process with the same :class:`FloatingPointError`. Checkpoints hold the RNG state of every
    process, so a resumed data-parallel run ends with the weights of an uninterrupted one.

    Args:
        model: the module to train (icnn models are checkpointed with ``icnn.save``).
        loss_fn: as above.
        config: :class:`TrainerConfig`.
        out_dir: where ``metrics.json``, ``metrics.csv``, ``best.safetensors`` and
            ``checkpoints/`` go (None: nothing is written).
        eval_fn: ``eval_fn(model) -> {"name": value}``, called every ``eval_every`` epochs.
        parameters: what the optimiser updates (default: ``model.parameters()``).

    Example:
        >>> trainer = Trainer(model, lambda m, b: (m(b[0]) - b[1]).square().mean(),
        ...                   TrainerConfig(epochs=5), out_dir="runs/x")
        >>> history = trainer.fit((y, target))
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, config: TrainerConfig | None = None, *,
        out_dir: str | Path | None = None, eval_fn: EvalFn | None = None,
        parameters: Sequence[nn.Parameter] | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.config = config or TrainerConfig()
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.eval_fn = eval_fn
        self.context = ddp.current_context()
        self.params = list(model.parameters() if parameters is None else parameters)
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.average = (None if self.config.average is None
                        else WeightAverage(model, self.config.average))
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best: float | None = None
        self.stale = 0

    # -- construction -------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        # raw softplus/exp parameters get no optimiser decay; their W is decayed by the penalty
        # added in _step (see icnn.nn.weight_decay)
        # (without decay the single group of before is kept, so older checkpoints still resume)
        groups = (decay_groups(self.model, c.weight_decay, self.params) if c.weight_decay
                  else self.params)
        if c.optimizer == "adam":
            return torch.optim.Adam(groups, lr=c.lr, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        c = self.config
        if c.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=c.epochs)
        if c.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, c.step_size, gamma=c.gamma)
        return torch.optim.lr_scheduler.ConstantLR(self.optimizer, factor=1.0, total_iters=0)

    # -- public -------------------------------------------------------------------------------
    def fit(self, data: TensorDataset | Sequence[Tensor], *, resume: bool = False
            ) -> list[dict[str, float]]:
        """Train for ``config.epochs`` epochs (or until early stopping) and return the history.

        Args:
            data: a ``TensorDataset`` or a sequence of tensors sharing their first dimension.
            resume: continue from ``out_dir/checkpoints`` if a checkpoint is there; the resumed
                run ends with exactly the weights of an uninterrupted one.
        """
        tensors = _as_tensors(data)
        ddp.check_module_device(self.model, self.context)
        seed_everything(self.config.seed)
        self._any_batch = tuple(t[:1] for t in tensors)
        if resume:
            self._restore()
        # DDP broadcasts rank 0's weights when it wraps the loss (after a resume too)
        self._loss_module = ddp.wrap_loss(
            LossModule(self.model, self.loss_fn), self.context,
            find_unused_parameters=self.config.find_unused_parameters)
        try:
            self._run_epochs(tensors)
        finally:
            # release DDP's reducer (its communication state) now, not whenever it is
            # collected: one that outlives the process group aborts the process at exit
            del self._loss_module
            gc.collect()
        if self.average is not None:
            self.average.copy_to_model()
        return self.history

    def _run_epochs(self, tensors: tuple[Tensor, ...]) -> None:
        n = tensors[0].shape[0]
        stopped = self.epoch >= self.config.epochs or self._patience_exhausted()
        while not stopped:
            record = self._train_epoch(tensors, n)
            with self._averaged():
                record.update(self._evaluate())
                self.epoch += 1
                self.history.append(record)
                improved = self._track_best(record)
                if improved and self.context.is_main and self.out_dir is not None:
                    save_weights(self.model, self.out_dir / "best.safetensors",
                                 metadata={"epoch": self.epoch, **_jsonable(record)})
            stopped = ddp.broadcast_flag(self._patience_exhausted(), self.context)
            if self.out_dir is not None:
                last = stopped or self.epoch >= self.config.epochs
                due = last or self.epoch % self.config.checkpoint_every == 0
                # every process hands its RNG state to the checkpoint (a collective)
                rngs = ddp.all_gather_objects(rng_state(), self.context) if due else None
                if self.context.is_main:
                    self._write_metrics()
                    if rngs is not None:
                        save_checkpoint(self.out_dir / "checkpoints", self.epoch, self.model,
                                        self._state(rngs))
            ddp.barrier(self.context)
            stopped = stopped or self.epoch >= self.config.epochs

    # -- one epoch ----------------------------------------------------------------------------
    def _global_batches(self, n: int) -> list[Tensor]:
        c = self.config
        if c.shuffle:
            generator = torch.Generator().manual_seed(c.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        batches = list(order.split(c.batch_size))
        if c.drop_last and batches and batches[-1].numel() < c.batch_size:
            batches.pop()
        return batches

    def _train_epoch(self, tensors: tuple[Tensor, ...], n: int) -> dict[str, float]:
        self.model.train()
        batches = self._global_batches(n)
        bar = None
        if self.config.progress and self.context.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(batches), desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
                       leave=False, dynamic_ncols=True)
        totals = torch.zeros(2, dtype=torch.float64)  # (sum of losses, count) on this process
        started = time.perf_counter()
        for step, global_batch in enumerate(batches):
            local = ddp.shard(global_batch, self.context)
            loss_sum = self._step(tuple(t[local] for t in tensors), local.numel(),
                                  global_batch.numel(), step)
            totals += torch.tensor([loss_sum, local.numel()], dtype=torch.float64)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / max(local.numel(), 1):.4g}")
        if bar is not None:
            bar.close()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        totals = ddp.all_reduce_sum(totals, self.context)
        return {"epoch": self.epoch + 1, "train_loss": float(totals[0] / max(totals[1], 1)),
                "lr": lr, "seconds": time.perf_counter() - started}

    def _step(self, batch: tuple[Tensor, ...], local_count: int, global_count: int,
              step: int) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        weight = self.context.world_size / global_count
        if local_count == 0:
            # this process got no example of a short last batch: it still takes part in DDP's
            # gradient all-reduce, with a zero-weighted loss on a borrowed example
            batch, local_count, weight = self._any_batch, 1, 0.0
        local_sum = self._loss_module(batch, local_count)
        # every process learns which ones failed before any of them raises: a lone raise would
        # leave the others waiting in the gradient all-reduce
        failed = ddp.any_rank_flags(not bool(torch.isfinite(local_sum)), self.context)
        if failed:
            where = (f" on rank {', '.join(map(str, failed))} of {self.context.world_size}"
                     if self.context.enabled else "")
            raise FloatingPointError(f"non-finite training loss at epoch {self.epoch + 1}, "
                                     f"batch {step + 1}{where}; expected finite losses (lower "
                                     "the learning rate, clip gradients or check the data)")
        # DDP averages gradients over processes, so this is the gradient of the global batch mean
        objective = local_sum * weight
        if self.config.weight_decay > 0:  # every process adds it: the average is the penalty
            objective = objective + self.config.weight_decay * constrained_weight_penalty(
                self.model
            )
        objective.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        project_constrained_(self.model)
        if self.average is not None:
            self.average.update()
        return float(local_sum.detach()) if weight else 0.0

    def _evaluate(self) -> dict[str, float]:
        if self.eval_fn is None or (self.epoch + 1) % self.config.eval_every != 0:
            return {}
        self.model.eval()
        metrics = {k: float(v) for k, v in self.eval_fn(self.model).items()}
        self.model.train()
        return metrics

    def _averaged(self) -> contextlib.AbstractContextManager[Any]:
        """Evaluate and select on the averaged weights when averaging."""
        return contextlib.nullcontext() if self.average is None else self.average.applied()

    # -- best model and early stopping --------------------------------------------------------
    def _track_best(self, record: dict[str, float]) -> bool:
        value = record.get(self.config.monitor)
        if value is None or not math.isfinite(value):
            return False
        sign = 1.0 if self.config.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.config.min_delta:
            self.best, self.stale = value, 0
            return True
        self.stale += 1
        return False

    def _patience_exhausted(self) -> bool:
        return self.config.patience is not None and self.stale >= self.config.patience

    # -- persistence --------------------------------------------------------------------------
    def _state(self, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        """What a checkpoint holds besides the weights; ``rngs``: every process's RNG state."""
        return {
            "epoch": self.epoch, "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rngs[0], "rng_per_rank": rngs,
            "world_size": self.context.world_size,
            "history": json.dumps(self.history), "best": self.best, "stale": self.stale,
            "config": json.dumps(asdict(self.config)),
            "average": None if self.average is None else self.average.state_dict(),
        }

    def _restore(self) -> bool:
        if self.out_dir is None:
            raise ValueError("resume=True needs an out_dir holding checkpoints/")
        state = load_checkpoint(self.out_dir / "checkpoints", self.model)
        if state is None:
            return False
        saved = json.loads(state["config"])
        # the cosine schedule is laid out over the planned epochs; the others may be extended
        keys = RESUME_KEYS + (("epochs",) if self.config.schedule == "cosine" else ())
        for key in keys:
            if key in saved and saved[key] != getattr(self.config, key):
                raise ValueError(f"cannot resume: checkpoint has {key}={saved[key]!r}, this run "
                                 f"has {getattr(self.config, key)!r}; expected the same value "
                                 "(start a new out_dir to change it)")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(self._own_rng_state(state))
        self.epoch = int(state["epoch"])
        self.history = json.loads(state["history"])
        self.best, self.stale = state["best"], int(state["stale"])
        if self.average is not None:
            if state.get("average") is None:
                raise ValueError("cannot resume: this run averages weights, the checkpoint "
                                 "has no weight average")
            self.average.load_state_dict(state["average"])
        return True

    def _own_rng_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """This process's saved RNG state; refused when the checkpoint's processes differ."""
        world = self.context.world_size
        per_rank = state.get("rng_per_rank")
        if per_rank is None:  # written before per-process states were kept: one process's
            if world > 1:
                raise ValueError(f"cannot resume on {world} processes exactly: the checkpoint "
                                 "holds the random state of one process only")
            return state["rng"]
        if len(per_rank) != world:
            raise ValueError(f"cannot resume: checkpoint was written by {len(per_rank)} "
                             f"process(es), this run has {world}; expected the same number "
                             "(each continues its own random stream)")
        return per_rank[self.context.rank]

    def _write_metrics(self) -> None:
        assert self.out_dir is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.history, indent=1)
        atomic_write(self.out_dir / "metrics.json", lambda tmp: Path(tmp).write_text(text))
        columns: list[str] = []
        for record in self.history:
            columns += [k for k in record if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write(self.out_dir / "metrics.csv",
                     lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def _as_tensors(data: TensorDataset | Sequence[Tensor]) -> tuple[Tensor, ...]:
    tensors = tuple(data.tensors) if isinstance(data, TensorDataset) else tuple(data)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ValueError("data must be a TensorDataset or a non-empty sequence of tensors")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError(f"all data tensors must share their first dimension, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    if n == 0:
        raise ValueError("data is empty")
    return tensors


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if isinstance(v, int | float | str)}

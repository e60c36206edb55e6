"""One trainer for the three neural W2 solvers: :func:`fit_transport`.

The solvers differ only in their per-pair loss (:func:`icnn.ot.mm.mm_loss`,
:func:`icnn.ot.w2gn.w2gn_loss`, :func:`icnn.ot.amortized.amortized_loss`); mini-batches, Adam,
the tqdm bar, safetensors checkpoints, exact resume and data-parallel runs under ``torchrun`` are
:class:`icnn.learn.Trainer`'s. An epoch is one pass over ``max(N, M)`` (source, target) index
pairs; the source and target samples of a batch are drawn independently of each other.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..learn import Trainer, TrainerConfig
from ..learn.seeding import seed_everything
from ..learn.state import LATEST
from .amortized import AMORTIZATION, ConjugateStats, amortized_loss, refined_inverse
from .identity import check_identity, run_identity, write_identity
from .metrics import GroundTruth, transport_metrics, w2_squared
from .mm import mm_loss, mm_phase
from .samples import check_pair, check_samples, second_moment
from .transport_model import PotentialConfig, TransportModel
from .w2gn import w2gn_loss

SOLVERS = ("mm", "w2gn", "amortized")
"""The neural W2 solvers of :func:`fit_transport` (``OTConfig.solver``)."""
STARTS = ("gaussian", "identity", "random")

__all__ = ["SOLVERS", "START_TOLERANCE", "DivergenceError", "FitResult", "InexactStartWarning", "OTConfig",
           "fit_transport", "inverse_map", "start_warning"]

DIVERGENCE_FACTOR = 1e4
"""A training loss beyond this many times ``1 + E|x|² + E|y|²`` (the scale of every solver's loss
at and near the optimum: potentials, inner products and squared distances of the samples) means
the run diverged (too large a step, or a dual that is unbounded below)."""


START_TOLERANCE = 0.05
"""A start whose relative error against its map exceeds this is reported as inexact."""


class InexactStartWarning(UserWarning):
    """The Gaussian/identity start is far from its map (quadratic rank below D - 1)."""


class DivergenceError(ValueError):
    """The training loss became non-finite or exploded: the run diverged (a user-facing error)."""


@dataclass(frozen=True)
class OTConfig:
    """Settings of :func:`fit_transport` (the ``icnn ot`` flags map onto these one to one).

    Attributes:
        solver: ``"mm"``, ``"w2gn"`` or ``"amortized"``.
        hidden, activation, strong_convexity, quadratic_rank: the networks
            (:class:`PotentialConfig`).
        start: ``"gaussian"`` (``∇f`` starts as the Gaussian map between the samples' moments,
            ``g`` as its inverse; needs ``quadratic_rank > 0`` and is exact only with
            ``quadratic_rank >= D - 1``, otherwise an :class:`InexactStartWarning` and
            ``FitResult.start_error``), ``"identity"`` (likewise with the identity) or
            ``"random"`` (the networks' own initialisation).
        output_quadratic: ``"on"``: each potential gets a full-rank PSD quadratic on its output
            (:class:`icnn.ot.transport_model.QuadraticOutput`), which makes the start exact at any
            rank; ``"off"``: never (the models of before); ``"auto"``: exactly when the start
            needs it (``start != "random"`` and ``quadratic_rank < D - 1``).
        epochs, batch_size, lr, seed, average, schedule: the :class:`icnn.learn.TrainerConfig`
            settings of the same names (Adam).
        cycle: W2GN's cycle weight λ.
        mm_inner: MM's ``g`` steps per ``f`` step.
        amortization: ``"regression"`` or ``"objective"`` (amortised solver).
        conjugate_tol, conjugate_max_iter: the conjugate solver's tolerance and cap (amortised
            training and every inverse map of an amortised model).
        eval_points: source samples on which the sample-only W2² estimate is logged each epoch.
        progress: tqdm bar.
    """

    solver: str = "w2gn"
    hidden: tuple[int, ...] = (64, 64, 32)
    activation: str = "celu"
    strong_convexity: float = 1e-3
    quadratic_rank: int = 1
    start: str = "gaussian"
    output_quadratic: str = "auto"
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    average: float | None = None
    schedule: str = "constant"
    cycle: float = 1.0
    mm_inner: int = 1
    amortization: str = "regression"
    conjugate_tol: float = 1e-4
    conjugate_max_iter: int = 100
    eval_points: int = 2048
    progress: bool = False

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"expected a solver in {SOLVERS}, got {self.solver!r}")
        if self.start not in STARTS:
            raise ValueError(f"expected a start in {STARTS}, got {self.start!r}")
        if self.start != "random" and self.quadratic_rank < 1:
            raise ValueError(f"expected quadratic_rank >= 1 for start={self.start!r} (the start lives in "
                             f"the quadratic terms), got {self.quadratic_rank}")
        if self.output_quadratic not in ("auto", "on", "off"):
            raise ValueError(f"expected output_quadratic in ('auto', 'on', 'off'), got "
                             f"{self.output_quadratic!r}")
        if self.amortization not in AMORTIZATION:
            raise ValueError(f"expected amortization in {AMORTIZATION}, got {self.amortization!r}")
        if not (math.isfinite(self.cycle) and self.cycle >= 0):
            raise ValueError(f"expected a finite cycle weight >= 0, got {self.cycle}")
        if isinstance(self.mm_inner, bool) or not isinstance(self.mm_inner, int) or self.mm_inner < 1:
            raise ValueError(f"expected mm_inner >= 1 (g steps per f step), got {self.mm_inner!r}")
        if not (math.isfinite(self.conjugate_tol) and self.conjugate_tol > 0):
            raise ValueError(f"expected a finite conjugate tolerance > 0, got {self.conjugate_tol}")
        if isinstance(self.conjugate_max_iter, bool) or not isinstance(self.conjugate_max_iter, int) \
                or self.conjugate_max_iter < 1:
            raise ValueError(f"expected conjugate_max_iter >= 1, got {self.conjugate_max_iter!r}")
        if isinstance(self.eval_points, bool) or not isinstance(self.eval_points, int) \
                or self.eval_points < 1:
            raise ValueError(f"expected eval_points >= 1, got {self.eval_points!r}")

    def trainer_config(self) -> TrainerConfig:
        """The :class:`TrainerConfig` of this run (validates epochs, batch size, lr, seed, ...)."""
        return TrainerConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                             average=self.average, schedule=self.schedule, progress=self.progress,
                             optimizer="adam", find_unused_parameters=self.solver == "mm")

    def potential_config(self, dim: int, context_dim: int) -> PotentialConfig:
        """The :class:`PotentialConfig` of this run for data of size ``dim``, contexts of ``context_dim``."""
        return PotentialConfig(dim=dim, context_dim=context_dim, hidden=tuple(self.hidden),
                               activation=self.activation, strong_convexity=self.strong_convexity,
                               quadratic_rank=self.quadratic_rank,
                               g_kind="mlp" if self.solver == "amortized" else "icnn",
                               output_quadratic=self.output_quadratic == "on" or (
                                   self.output_quadratic == "auto" and self.start != "random"
                                   and self.quadratic_rank < dim - 1))


@dataclass
class FitResult:
    """A trained model, its per-epoch history, wall time and the start's error.

    The history holds the train loss, the training seconds (``seconds``, evaluation excluded),
    the evaluation seconds (``eval_seconds``) and logged scores per epoch, across resumes;
    ``seconds`` is their training total (every epoch, the resumed ones too). The start's error is
    its largest relative error against the map it was set to (None for a random start; a
    quadratic rank below D − 1 represents a Gaussian map only approximately).
    """

    model: TransportModel
    history: list[dict[str, float]]
    seconds: float
    start_error: float | None = None


def inverse_map(model: TransportModel, config: OTConfig, z: Tensor, x: Tensor | None = None,
                stats: ConjugateStats | None = None) -> Tensor:
    """The fitted ``Q → P`` map.

    ``∇g(z)`` for MM/W2GN, the refined conjugate ``∇f*(z)`` for the amortised solver; ``(batch, D)``,
    detached.
    """
    if model.config.g_kind == "mlp":
        return refined_inverse(model, z, x, tol=config.conjugate_tol, max_iter=config.conjugate_max_iter,
                               stats=stats).y.detach()
    with torch.no_grad():
        return model.inverse_predict(z, x)


class _StepClock:
    """The index of the current step inside its epoch.

    The index of the current step inside its epoch, read from the trainer's epoch (restored on
    resume) and the calls seen since that epoch began: MM's alternation survives a resume.
    """

    def __init__(self) -> None:
        self.trainer: Trainer | None = None
        self.epoch, self.step = -1, 0

    def tick(self) -> int:
        epoch = 0 if self.trainer is None else self.trainer.epoch
        if epoch != self.epoch:
            self.epoch, self.step = epoch, 0
        self.step += 1
        return self.step - 1


def _loss(config: OTConfig, stats: ConjugateStats, clock: _StepClock) -> Callable[..., Tensor]:
    if config.solver == "mm":
        return lambda *a: mm_loss(*a, phase=mm_phase(clock.tick(), config.mm_inner))
    if config.solver == "w2gn":
        return lambda *a: w2gn_loss(*a, cycle=config.cycle)
    return lambda *a: amortized_loss(*a, amortization=config.amortization, tol=config.conjugate_tol,
                                     max_iter=config.conjugate_max_iter, stats=stats)


def fit_transport(source: Tensor, target: Tensor, config: OTConfig, *, source_context: Tensor | None = None,
                  target_context: Tensor | None = None, truth: GroundTruth | None = None,
                  out_dir: str | Path | None = None, resume: bool = False,
                  data_description: dict[str, Any] | None = None) -> FitResult:
    """Fit ``f`` (and ``g``) so that ``∇f`` transports the source samples onto the target samples.

    Args:
        source: ``(N, D)`` samples of P, on the device and dtype the model is built on.
        target: ``(M, D)`` samples of Q, on the same device and dtype.
        config: :class:`OTConfig`.
        source_context: ``(N, C)`` per-sample contexts of the source: a conditional map
            (PICNN) per context; None for one map.
        target_context: ``(M, C)`` per-sample contexts of the target (None for one map).
        truth: the true map on test points, only to *log* scores each epoch (selects nothing).
        out_dir: the trainer's folder (``checkpoints/``, its ``metrics.json``); None: no files.
        resume: continue from ``out_dir/checkpoints`` (ends with the uninterrupted weights);
            refused unless the folder's ``identity.json`` (settings and data, see
            :mod:`icnn.ot.identity`) matches this call's.
        data_description: where the data came from (JSON values), stored in the identity.

    Returns:
        :class:`FitResult` with the final (not the best) weights.

    Raises:
        ValueError: refused samples (shape, NaN, too few, mismatched dimensions, contexts that
            do not overlap) or settings, or a resume of another run;
            DivergenceError (a ValueError): the loss became non-finite or exploded.
    """
    check_samples(source, "source")
    check_samples(target, "target")
    dim = check_pair(source, target, source_context, target_context)
    context_dim = 0 if source_context is None else int(source_context.shape[1])
    trainer_config = config.trainer_config()
    if out_dir is not None:
        identity = run_identity(describe(config), source, target, source_context, target_context,
                                data_description)
        if resume and (Path(out_dir) / "checkpoints" / LATEST).is_file():
            check_identity(out_dir, identity)
        else:
            write_identity(out_dir, identity)
    seed_everything(config.seed)
    model = TransportModel(config.potential_config(dim, context_dim)).to(device=source.device,
                                                                         dtype=source.dtype)
    start_error = None
    if config.start != "random":
        gaussian = config.start == "gaussian"
        start_error = model.start_gaussian(source if gaussian else None, target if gaussian else None)
        if start_error > START_TOLERANCE:
            warnings.warn(start_warning(config, dim, start_error), InexactStartWarning, stacklevel=2)
    n, m = source.shape[0], target.shape[0]
    length = max(n, m)
    order = torch.Generator().manual_seed(config.seed + 1)
    pairs = (torch.arange(length) % n, torch.randperm(length, generator=order) % m)
    stats = ConjugateStats()
    clock = _StepClock()
    per_pair = _loss(config, stats, clock)
    device = source.device
    bound = DIVERGENCE_FACTOR * (1.0 + second_moment(source) + second_moment(target))
    trainer: Trainer | None = None

    def loss_fn(module: TransportModel, batch: tuple[Tensor, ...]) -> Tensor:
        si, ti = (b.to(device) for b in batch)
        cx = None if source_context is None else source_context[si]
        cy = None if target_context is None else target_context[ti]
        try:
            loss = per_pair(module, source[si], target[ti], cx, cy)
        except ValueError as error:  # e.g. the conjugate solver refusing non-finite weights
            if all(torch.isfinite(p).all() for p in module.parameters()):
                raise
            raise _diverged(config, trainer, "non-finite weights") from error
        value = float(loss.detach().mean())  # per-pair losses: their mean
        if not math.isfinite(value) or abs(value) > bound:
            raise _diverged(config, trainer, f"loss {value:.4g} (bound {bound:.3g})")
        return loss

    evaluation = source[: config.eval_points]
    evaluation_context = None if source_context is None else source_context[: config.eval_points]

    def eval_fn(module: TransportModel) -> dict[str, float]:
        started = time.perf_counter()
        scores = stats.summary()
        with torch.no_grad():
            pushed = module.forward_map(evaluation, evaluation_context)
        scores["w2_squared_estimate"] = w2_squared(evaluation, pushed)
        if truth is not None and context_dim == 0:
            for key, value in transport_metrics(
                    lambda p: _forward(module, p), lambda p: inverse_map(module, config, p),
                    truth).items():
                scores[key] = value
        scores["eval_seconds"] = time.perf_counter() - started
        return scores

    trainer = Trainer(model, loss_fn, trainer_config, out_dir=out_dir, eval_fn=eval_fn)
    clock.trainer = trainer
    history = trainer.fit(pairs, resume=resume)
    return FitResult(model, history, float(sum(r["seconds"] for r in history)), start_error)


def start_warning(config: OTConfig, dim: int, error: float) -> str:
    """The one-line warning of an inexact start (also recorded in ``metrics.json``)."""
    return (f"the {config.start} start is not the {config.start} map: relative error {error:.3g} > "
            f"{START_TOLERANCE} because --quadratic-rank {config.quadratic_rank} < D - 1 = {dim - 1} "
            f"(the output unit holds only a rank-{config.quadratic_rank} part of the map's matrix); "
            f"pass --output-quadratic on (or --quadratic-rank {max(dim - 1, 1)}) for an exact start")


def _diverged(config: OTConfig, trainer: Trainer | None, what: str) -> DivergenceError:
    epoch = 1 if trainer is None else trainer.epoch + 1
    return DivergenceError(f"expected a bounded, finite training loss, got {what} at epoch {epoch}: the "
                           f"{config.solver} run diverged; try a lower --lr (now {config.lr:g}) or check "
                           "that the source and target (and their contexts) overlap")


def _forward(model: TransportModel, points: Tensor) -> Tensor:
    with torch.no_grad():
        return model.forward_map(points)


def describe(config: OTConfig) -> dict[str, Any]:
    """The run's settings as plain JSON values."""
    return {key: (list(value) if isinstance(value, tuple) else value)
            for key, value in config.__dict__.items()}

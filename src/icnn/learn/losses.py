"""Structured-prediction losses: max-margin with loss-augmented inference (Section 5.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..nn.input_checks import check_tensor
from ..solvers.domain import Box
from ..solvers.entropy import box_negative_entropy, check_entropy_box
from .margin import LossAugmentedEnergy, hamming_margin

Solver = str | Callable[[nn.Module, Tensor], Tensor]


def max_margin(
    model: nn.Module, x: Tensor | None, y_true: Tensor, *, margin: float = 1.0,
    solver: Solver = "auto", domain: Box | None = None, entropy: bool | None = None,
    solver_options: dict[str, Any] | None = None, reduction: str = "mean",
) -> Tensor:
    r"""Structured hinge loss of Section 5.1, batched.

    .. math::
        \ell_i = \Big(\tilde f(x_i, y_i) - \min_{y \in Y}\big[\tilde f(x_i, y)
                 - s\,\Delta(y_i, y)\big]\Big)_+

    with ``Δ`` the linear Hamming margin (:func:`icnn.learn.hamming_margin`) and
    ``f̃ = f − H`` when ``entropy``, ``H`` taken on the rescaled box ``u = (y − lo)/(hi − lo)``
    of ``domain`` exactly as the bundle entropy method takes it
    (:func:`icnn.solvers.entropy.box_negative_entropy`), so any box gives the same hinge.
    Loss-augmented inference is solved by :func:`icnn.argmin` on a :class:`LossAugmentedEnergy`;
    by Danskin's theorem the gradient with respect to the weights is
    ``∇f̃(x_i, y_i) − ∇f̃(x_i, y*)`` at the *detached* minimiser ``y*``, so nothing is
    differentiated through the solver.

    Args:
        model: energy convex in ``y`` (``FICNN``: pass ``x=None``; ``PICNN``: ``x`` required).
        x: ``(batch, *context_shape)`` or None.
        y_true: ``(batch, *convex_input_shape)``, usually binary.
        margin: scale ``s >= 0`` of ``Δ``.
        solver: an :func:`icnn.argmin` method name (``"auto"``, ``"pgd"``, ``"bundle"``,
            ``"bundle_entropy"``, ...) or a callable ``solver(energy, context) -> y`` that
            minimises ``energy(context, y)`` over ``domain``.
        domain: feasible set, default ``icnn.Box(0, 1)``.
        entropy: use ``f̃ = f − H``; defaults to True exactly for ``solver="bundle_entropy"``
            (which adds ``−H`` to the inner problem itself, so there ``False`` is refused). Needs a
            bounded ``domain`` and ``y_true`` inside it.
        solver_options: extra keyword arguments for :func:`icnn.argmin` (``tol``, ``max_iter``);
            no ``fixed`` with the entropy (the solver would leave those coordinates out of it).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-example, ``(batch,)``).

    Returns:
        scalar (or ``(batch,)`` with ``reduction="none"``).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    shape = getattr(model, "convex_input_shape", None)
    if shape is None:
        raise ValueError(f"model must expose convex_input_shape, got {type(model).__name__}")
    dtype = next(model.parameters()).dtype
    check_tensor("y_true", y_true, shape, dtype=dtype)
    if entropy is None:
        entropy = solver == "bundle_entropy"
    domain = Box(0.0, 1.0) if domain is None else domain
    solver_adds_entropy = solver == "bundle_entropy"
    options = dict(solver_options or {})
    if solver_adds_entropy and not entropy:
        raise ValueError("solver='bundle_entropy' minimises f − Δ − H, not f − Δ: its minimiser "
                         "is not the one the hinge without the entropy needs. Pass entropy=True "
                         "(or leave it None) with bundle_entropy, or choose another solver for "
                         "entropy=False")
    if entropy:
        lo, hi = domain.bounds(y_true.shape[0], tuple(shape), y_true.dtype, y_true.device)
        outside = (y_true < lo) | (y_true > hi)
        if bool(outside.any()):
            raise ValueError(f"entropy=True needs y_true inside the domain (−H is +inf "
                             f"elsewhere), got {int(outside.sum())} entries outside [lo, hi]")
        check_entropy_box(lo, hi)
        if "fixed" in options:
            raise ValueError("entropy=True takes no solver_options['fixed']: the solver would "
                             "leave fixed coordinates out of the entropy the hinge adds")

    energy = LossAugmentedEnergy(model, margin, entropy=entropy and not solver_adds_entropy,
                                 domain=domain)
    context = energy.context(x, y_true)
    with torch.no_grad():
        y_star = _solve(energy, context, solver, domain, options)
    y_star = y_star.detach()

    true_energy = _energy(model, x, y_true)
    star_energy = _energy(model, x, y_star)
    if entropy:
        # the same function, on the same box, as the solver minimised
        true_energy = true_energy + box_negative_entropy(y_true, lo, hi)
        star_energy = star_energy + box_negative_entropy(y_star, lo, hi)
    augmented_min = star_energy - energy.margin * hamming_margin(y_true, y_star)
    losses = torch.relu(true_energy - augmented_min)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _energy(model: nn.Module, x: Tensor | None, y: Tensor) -> Tensor:
    return model(y) if x is None else model(x, y)


def _solve(energy: LossAugmentedEnergy, context: Tensor, solver: Solver, domain: Box,
           options: dict[str, Any]) -> Tensor:
    if callable(solver):
        y = solver(energy, context)
    elif isinstance(solver, str):
        from ..solvers import argmin  # solvers sit below learn; imported late to keep it light

        y = argmin(energy, context, domain=domain, method=solver, **options).y
    else:
        raise ValueError(f"solver must be an argmin method name or a callable, got "
                         f"{type(solver).__name__}")
    expected = (context.shape[0], *energy.convex_input_shape)
    if not isinstance(y, Tensor) or tuple(y.shape) != expected:
        raise ValueError(f"solver must return y of shape {expected}, got "
                         f"{getattr(y, 'shape', type(y).__name__)}")
    return y

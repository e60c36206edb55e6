"""``icnn.argmin``: the one entry point to inference over the convex input."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .domain import Box
from .handle import (  # noqa: F401 - re-exported: the constants have lived here
    DEFAULT_MAX_ITER,
    DEFAULT_TOL,
    DIFFERENTIABLE,
    METHOD_OPTIONS,
    METHODS,
    Argmin,
)
from .result import ArgminResult


def argmin(
    model: nn.Module, x: Tensor | None = None, *, domain: Box | None = None,
    y0: Tensor | None = None, fixed: tuple[Tensor, Tensor] | None = None, method: str = "auto",
    tol: float = DEFAULT_TOL, max_iter: int | None = None, differentiable: str | None = None,
    allow_unbounded: bool = False, **options: Any,
) -> ArgminResult:
    r"""``y* = argmin_{y in domain} f(x, y)`` for a batch, with per-example convergence.

    Args:
        model: a module convex in ``y``: an FICNN (``model(y)``), a PICNN (``model(x, y)``), a
            convolutional variant (image-shaped ``y``), or any module implementing
            :class:`icnn.ConvexEnergy` (shapes and :class:`icnn.EnergyTraits`). A model that
            declares itself not convex (``convex=False`` ablation, ``constraint="project"``
            before ``project_()``) runs only with ``pgd``/``lbfgs``/``unroll`` and gets no
            certificate (``converged`` False, ``gap`` None).
        x: ``(batch, *context_shape)`` context, or None for fully convex models.
        domain: None (all of ``R^n``) or :class:`icnn.Box` ``(lo, hi)``, e.g. ``Box(0, 1)``.
        y0: ``(batch, *shape)`` warm start (projected onto the domain); default the box centre.
        fixed: ``(mask, values)`` broadcastable to ``(batch, *shape)``: masked coordinates keep
            their values and only the others move (image completion, conditioning on labels).
        method: ``"pgd"``, ``"lbfgs"``, ``"bundle"``, ``"bundle_entropy"``, ``"exact"`` or
            ``"auto"`` (see :func:`icnn.solvers.auto.choose_method`: ``bundle`` for a
            piecewise-linear energy on a bounded domain, else ``lbfgs``; with ``options``, the
            method that takes them).
        tol: relative tolerance of each method's stopping test (certified gap
            ``<= tol * max(1, |f|)`` wherever a lower bound exists).
        max_iter: iteration limit (default per method, :data:`DEFAULT_MAX_ITER`).
        differentiable: None (``y`` detached), ``"unroll"`` (``max_iter`` accelerated projected
            gradient steps kept in the graph; ``method`` must be ``"auto"`` or ``"pgd"``) or
            ``"implicit"`` (solve, then attach the implicit-function gradient at ``y*``).
        allow_unbounded: run on an unbounded domain without strong convexity, where the
            minimum may not exist; ``converged`` then reports a stationarity test.
        options: method-specific keyword arguments (``memory`` for lbfgs, ``callback`` for
            pgd/lbfgs, ``lipschitz`` for pgd: a first estimate of ``L``, see
            :func:`icnn.solvers.pgd.solve_pgd`).

    Returns:
        :class:`icnn.solvers.ArgminResult` with ``y: (batch, *shape)``, ``value: (batch,)``,
        ``iterations``, ``converged: (batch,)`` (True only where the stopping test passed),
        ``gap``/``lower_bound`` where the method certifies one, and ``method`` (resolved).

    Raises:
        ValueError: bad shapes, dtypes (float32/float64 only) or non-finite inputs, ``lo > hi``
            or bounds whose width overflows, an empty batch, an unknown method or option, a
            method that cannot handle the model or domain, an unbounded domain without strong
            convexity (unless ``allow_unbounded``) or with a barrier energy, a model that is not
            convex now with a certifying method or ``implicit``, an implicit gradient no rule
            covers (see :mod:`icnn.solvers.implicit`), or an energy that is NaN at the answer.
        TypeError: a model that does not implement :class:`icnn.ConvexEnergy`.

    Every answer keeps three invariants: ``value`` is the model at ``y``; ``converged`` is True
    only with a finite value (and, where certified, a gap within ``tol``); a reported
    ``lower_bound`` is finite or ``-inf`` and never above the objective reached.

    This is the one-call form of :class:`icnn.Argmin` (the same code): for repeated solves of
    one model, build the handle once and call it.
    """
    solver = Argmin(model, domain=domain, method=method, tol=tol, max_iter=max_iter,
                    differentiable=differentiable, allow_unbounded=allow_unbounded, **options)
    return solver(x, y0=y0, fixed=fixed)

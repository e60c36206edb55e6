r"""Convex conjugates ``f^*(z) = max_y <y, z> - f(x, y)`` by the library's batched solvers.

The maximiser ``y^*(z) = \nabla f^*(z)`` is the inverse of the gradient map: ``\nabla_y f(x,
y^*) = z``. It is the argmin of the tilted energy ``h(y) = f(x, y) - <y, z>``
(:class:`icnn.potentials.tilted_energy.TiltedEnergy`), which :func:`icnn.argmin` minimises with
per-example L-BFGS (or projected gradient), warm-started from ``y0``.

Stopping is per example on the *relative residual* of the first-order condition,

.. math:: r = \frac{\|P(y - \nabla h(y)) - y\|}{\max(1, \|z\|)}
          \;=\; \frac{\|\nabla_y f(x, y) - z\|}{\max(1, \|z\|)} \text{ without a domain},

where ``P`` projects onto the domain. The solver is run in rounds of :data:`ROUND` iterations;
after each round the residual is measured on the examples still running, and only those that
have not reached ``tol`` run again (from where they stopped). A potential with kinks (a ReLU
part) may have its maximiser at a kink, where no (sub)gradient the network computes is small;
for such potentials an example is also converged once the solver's *certified* gap (from its
cutting planes, see :mod:`icnn.solvers.certificate`) is ``<= tol * max(1, |f^*(z)|)``.

Gradients by the envelope theorem: ``value`` is ``<y^*, z> - f(x, y^*)`` evaluated with
``y^*`` detached, so autograd gives ``d value / dz = y^*``, ``d value / d theta = -d f / d theta
(x, y^*)`` and ``d value / dx = -d_x f(x, y^*)`` (a PICNN's context), exactly the derivatives
of ``f^*`` at the maximiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn.input_checks import check_tensor, validation
from ..solvers.argmin import argmin
from ..solvers.domain import Box
from ._inputs import check_point_and_context, check_potential
from .tilted_energy import TiltedEnergy

METHODS = ("lbfgs", "pgd")
DEFAULT_MAX_ITER = 500
ROUND = 25
"""Solver iterations between two residual checks (each check costs one gradient evaluation
per running example; a new round restarts the L-BFGS memory)."""


@dataclass
class ConjugateResult:
    r"""``f^*(z)`` for a batch, with per-example convergence.

    Attributes:
        value: ``(batch,)`` ``<y, z> - f(x, y)`` at the ``y`` found: ``f^*(z)`` once converged,
            and always a lower bound on it (it is the objective at a feasible point).
            Differentiable w.r.t. ``z``, ``x`` and the potential's parameters (envelope
            theorem).
        y: ``(batch, *shape)`` the maximiser found, ``\nabla f^*(z)`` (detached).
        iterations: solver iterations run, summed over rounds (each round runs the batch's
            slowest example; an example stops when its own test passes).
        evaluations: ``(batch,)`` gradient evaluations spent on each example (solver and
            residual checks).
        residual: ``(batch,)`` ``||P(y - grad h) - y|| / max(1, ||z||)``, i.e.
            ``||grad_y f(x, y) - z|| / max(1, ||z||)`` without a domain.
        converged: ``(batch,)`` bool: ``residual <= tol``, or, for a potential with kinks,
            the certified gap ``<= tol * max(1, |value|)``. False where the maximum is not
            attained or infinite (``z`` outside the range of ``grad f`` for a potential that
            is not strongly convex): there the residual stays away from zero.
        upper_bound: ``(batch,)`` certified upper bound on ``f^*(z)`` (``+inf`` where the
            solver has none: no strong convexity and no bounded domain).
        gap: ``(batch,)`` ``upper_bound - value`` (``>= 0``, ``+inf`` where uncertified).
        method: the solver that ran.
    """

    value: Tensor
    y: Tensor
    iterations: int
    evaluations: Tensor
    residual: Tensor
    converged: Tensor
    upper_bound: Tensor
    gap: Tensor
    method: str


def conjugate(model: nn.Module, z: Tensor, x: Tensor | None = None, *, y0: Tensor | None = None,
              method: str = "lbfgs", tol: float = 1e-6, max_iter: int = DEFAULT_MAX_ITER,
              domain: Box | None = None) -> ConjugateResult:
    r"""``f^*(z) = max_{y in domain} <y, z> - f(x, y)`` and its maximiser, batched.

    Args:
        model: the potential, convex in ``y``: an FICNN, a PICNN (then ``x`` is required), or
            any module implementing :class:`icnn.ConvexEnergy`.
        z: ``(batch, *convex_input_shape)`` dual points.
        x: ``(batch, *context_shape)`` contexts of a conditional potential, else None.
        y0: ``(batch, *convex_input_shape)`` warm start (e.g. an amortised prediction of
            ``y^*``); default ``z`` (exact for ``f = ||y||^2 / 2``).
        method: ``"lbfgs"`` (default) or ``"pgd"``, the :func:`icnn.argmin` method.
        tol: relative residual at which an example stops (see :class:`ConjugateResult`).
        max_iter: total solver iterations (over all rounds).
        domain: None (all of ``R^n``) or an :class:`icnn.Box` to maximise over.

    Returns:
        :class:`ConjugateResult`.

    Raises:
        TypeError: ``model`` does not implement :class:`icnn.ConvexEnergy`.
        ValueError: ``z``, ``x`` or ``y0`` of the wrong shape, dtype or batch size, or not
            finite; an unknown method; ``tol`` not finite and ``>= 0``; ``max_iter`` not a
            positive int; a potential that is not convex now; or whatever :func:`icnn.argmin`
            refuses (a barrier energy without a bounded domain).
    """
    traits = check_potential(model)
    if not traits.convex:
        raise ValueError(f"expected a potential convex in y (a conjugate of a non-convex "
                         f"function is not given by a local search), got one that is not: "
                         f"{'; '.join(traits.issues)}")
    if method not in METHODS:
        raise ValueError(f"expected method in {METHODS}, got {method!r}")
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not math.isfinite(tol) \
            or tol < 0:
        raise ValueError(f"expected tol a finite number >= 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"expected max_iter a positive int, got {max_iter!r}")
    z, x = check_point_and_context(model, z, x, name="z")
    batch, shape = z.shape[0], tuple(z.shape[1:])
    if y0 is None:
        y = z.detach().clone()
    else:
        y = check_tensor("y0", y0, shape, dtype=z.dtype, batch=batch).detach().clone()
    if domain is not None and not isinstance(domain, Box):
        raise ValueError(f"expected domain None or icnn.Box, got {type(domain).__name__}")
    lo, hi = (domain if domain is not None else Box(-math.inf, math.inf)).bounds(
        batch, shape, z.dtype, z.device)

    tilted = TiltedEnergy(model)
    context = tilted.pack(z, x)
    with torch.no_grad():
        energy = tilted.condition(context)
    scale = z.detach().flatten(1).norm(dim=1).clamp_min(1.0)
    # a kinked potential may stop on its certificate; a smooth one only on its residual
    solver_tol = float(tol) if traits.kinks else 0.0

    evaluations = torch.ones(batch, dtype=torch.long, device=z.device)
    residual = _residual(energy, y, None, lo, hi) / scale
    upper = torch.full((batch,), math.inf, dtype=z.dtype, device=z.device)
    solver_value = torch.zeros(batch, dtype=z.dtype, device=z.device)
    previous = torch.full((batch,), -math.inf, dtype=z.dtype, device=z.device)
    done = residual <= tol
    running = (~done).nonzero().squeeze(1)
    iterations = 0
    while running.numel() and iterations < max_iter:
        result = argmin(tilted, context[running], y0=y[running],
                        domain=Box(lo[running], hi[running]), method=method, tol=solver_tol,
                        max_iter=min(ROUND, max_iter - iterations), allow_unbounded=True)
        iterations += result.iterations
        y[running] = result.y
        solver_value[running] = -result.value.detach()
        evaluations[running] += result.info.get("evaluations", result.iterations) + 1
        residual[running] = _residual(energy, y[running], running, lo[running],
                                      hi[running]) / scale[running]
        stopped = residual[running] <= tol
        if result.lower_bound is not None:
            upper[running] = -result.lower_bound.detach().to(z.dtype)
            if traits.kinks:
                gap = upper[running] - solver_value[running]
                stopped |= gap <= tol * solver_value[running].abs().clamp_min(1.0)
        # a stalled L-BFGS gets a fresh memory next round, unless the round gained nothing
        stalled = result.info.get("stalled")
        finished = stopped
        if stalled is not None:
            finished = finished | (stalled & ~(solver_value[running] > previous[running]))
        previous[running] = solver_value[running]
        done[running] = stopped
        if result.iterations == 0:
            break
        running = running[~finished]

    y = y.detach()
    with validation(False):
        value = (y * z).flatten(1).sum(dim=1) - (model(y) if x is None else model(x, y))
    finite = torch.isfinite(value.detach())
    # the solver's bound against the value recomputed here: equal up to rounding
    upper = torch.maximum(upper, value.detach())
    gap = upper - value.detach()
    converged = finite & (done | (residual <= tol))
    return ConjugateResult(value=value, y=y, iterations=iterations, evaluations=evaluations,
                           residual=residual, converged=converged, upper_bound=upper, gap=gap,
                           method=method)


def _residual(energy, y: Tensor, index: Tensor | None, lo: Tensor, hi: Tensor) -> Tensor:
    """``||P(y - grad h(y)) - y||`` per example, ``(len(y),)``, for the rows ``index``."""
    with torch.enable_grad():
        point = y.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(point, index).sum(), point)
    moved = torch.maximum(torch.minimum(y - grad, hi), lo) - y
    return moved.detach().flatten(1).norm(dim=1)

r"""Convex conjugates ``f^*(z) = max_y <y, z> - f(x, y)`` by the library's batched solvers.

The maximiser ``y^*(z) = \nabla f^*(z)`` is the inverse of the gradient map: ``\nabla_y f(x,
y^*) = z``. It is the argmin of the tilted energy ``h(y) = f(x, y) - <y, z>``
(:class:`icnn.potentials.tilted_energy.TiltedEnergy`), which :func:`icnn.argmin` minimises with
per-example L-BFGS (or projected gradient), warm-started from ``y0``.

Stopping is per example on the *relative residual* of the first-order condition,

.. math:: r(y) = \frac{\|\mathrm{clamp}(z - \nabla_y f(x, y),\; lo - y,\; hi - y)\|}
                      {\max(\|z\|, \|\nabla_y f(x, y)\|)}
          \;=\; \frac{\|\nabla_y f(x, y) - z\|}{\max(\|z\|, \|\nabla_y f(x, y)\|)}
          \text{ without a domain},

the projected-gradient step of the tilted energy (computed as a clamp of ``-grad h``, never as
``P(y - grad h) - y``, which rounds to 0 once ``|y| >> |grad h| / eps``) relative to the larger
of the two gradients it compares. It is scale-free (``r <= 2``; a ``z`` of norm ``1e-7`` is held
to the same relative accuracy as one of norm ``1``) and ``r = 1`` exactly where ``grad f(y) = 0``
and ``z != 0``. (At ``z = 0`` it asks for ``grad f(y) = 0`` to relative accuracy: only an exact
stationary point passes, so ``z = 0`` may come back unconverged in float32.) The solver is run
in rounds of :data:`ROUND` iterations, always at least one round (a warm start is never accepted
without a solver call); after each round the residual is measured on the examples still running,
and only those that have not reached ``tol`` run again (from where they stopped). A potential
with kinks (a ReLU part) may have its maximiser at a kink, where no (sub)gradient the network
computes is small; for such potentials an example is also converged once the solver's
*certified* gap (from its cutting planes, see :mod:`icnn.solvers.certificate`) is ``<= tol *
max(|<y, z>|, |f(x, y)|)``.

Gradients by the envelope theorem: ``value`` is ``<y^*, z> - f(x, y^*)`` evaluated with
``y^*`` detached, so autograd gives ``d value / dz = y^*``, ``d value / d theta = -d f / d theta
(x, y^*)`` and ``d value / dx = -d_x f(x, y^*)`` (a PICNN's context), exactly the derivatives
of ``f^*`` at the maximiser. They are those derivatives only where the maximiser was found: rows
that did not converge carry by default *no* gradient (their ``value`` is detached, with a
:class:`UnconvergedConjugateWarning`), so a training loop never receives the huge envelope
gradients of a point far from ``y^*`` (see ``unconverged`` in :func:`conjugate`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn.input_checks import check_tensor, validation
from ..solvers.argmin import argmin
from ..solvers.domain import Box
from ..solvers.iterative import projected_step
from ._inputs import check_point_and_context, check_potential
from .tilted_energy import TiltedEnergy

METHODS = ("lbfgs", "pgd")
UNCONVERGED = ("detach", "keep", "raise")
DEFAULT_MAX_ITER = 500
ROUND = 25
"""Solver iterations between two residual checks (each check costs one gradient evaluation
per running example; a new round restarts the L-BFGS memory)."""


class UnconvergedConjugateWarning(RuntimeWarning):
    """Some rows of :func:`conjugate` did not converge; their ``value`` carries no gradient."""


class UnconvergedConjugateError(RuntimeError):
    """Some rows of :func:`conjugate` did not converge (``unconverged="raise"``)."""


@dataclass
class ConjugateResult:
    r"""``f^*(z)`` for a batch, with per-example convergence.

    Attributes:
        value: ``(batch,)`` ``<y, z> - f(x, y)`` at the ``y`` found: ``f^*(z)`` once converged,
            and otherwise a lower bound on it (the objective at a feasible point), both up to
            the rounding of one evaluation of ``f`` in the model's dtype (in float32 ``value``
            may exceed ``f^*(z)`` by a few ``1e-7`` relative). Differentiable w.r.t. ``z``,
            ``x`` and the potential's parameters (envelope theorem) on converged rows; on the
            others as ``unconverged`` says (default: detached, no gradient).
        y: ``(batch, *shape)`` the maximiser found, ``\nabla f^*(z)`` (detached).
        iterations: solver iterations run, summed over rounds (each round runs the batch's
            slowest example; an example stops when its own test passes). The solver is always
            called (``evaluations >= 2``), but reports 0 iterations where its own test already
            certifies ``y0`` (a gap of exactly 0).
        evaluations: ``(batch,)`` gradient evaluations spent on each example (solver and
            residual checks).
        residual: ``(batch,)`` ``||clamp(z - grad_y f(x, y), lo - y, hi - y)|| / max(||z||,
            ||grad_y f(x, y)||)`` at the returned ``y``; without a domain ``||grad_y f(x, y) -
            z|| / max(||z||, ||grad_y f(x, y)||)`` (see the module docstring).
        converged: ``(batch,)`` bool: ``residual <= tol``, or, for a potential with kinks,
            the certified gap ``<= tol * max(|<y, z>|, |f(x, y)|)`` (relative to the terms
            ``value`` is the difference of, so as scale-free as the residual). False where the maximum is not
            attained or infinite (``z`` outside the range of ``grad f`` for a potential that
            is not strongly convex): there the residual stays near 1.
        upper_bound: ``(batch,)`` certified upper bound on ``f^*(z)``: the solver's cutting-plane
            bound or ``value + max_{u in domain} <-grad h(y), u - y> - mu ||u - y||^2 / 2``
            (``= value + ||grad h(y)||^2 / (2 mu)`` without a domain), whichever is lower;
            ``+inf`` where neither exists (no strong convexity and no bounded domain). Exact
            up to the rounding of ``f``'s evaluation.
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
              domain: Box | None = None, unconverged: str = "detach") -> ConjugateResult:
    r"""``f^*(z) = max_{y in domain} <y, z> - f(x, y)`` and its maximiser, batched.

    Args:
        model: the potential, convex in ``y``: an FICNN, a PICNN (then ``x`` is required), or
            any module implementing :class:`icnn.ConvexEnergy`.
        z: ``(batch, *convex_input_shape)`` dual points.
        x: ``(batch, *context_shape)`` contexts of a conditional potential, else None.
        y0: ``(batch, *convex_input_shape)`` warm start (e.g. an amortised prediction of
            ``y^*``); default ``z`` (exact for ``f = ||y||^2 / 2``). At least one solver round
            runs from it, however good it is.
        method: ``"lbfgs"`` (default) or ``"pgd"``, the :func:`icnn.argmin` method.
        tol: relative residual at which an example stops (see :class:`ConjugateResult`).
        max_iter: total solver iterations (over all rounds).
        domain: None (all of ``R^n``) or an :class:`icnn.Box` to maximise over.
        unconverged: what ``value`` carries on rows with ``converged=False`` when it would carry
            gradients: ``"detach"`` (default: detached, so no gradient reaches ``z``, ``x`` or
            the parameters from those rows, and an :class:`UnconvergedConjugateWarning` says how
            many), ``"keep"`` (the envelope gradients at the point reached, no warning: for
            callers who read ``converged`` themselves) or ``"raise"`` (an
            :class:`UnconvergedConjugateError`).

    Returns:
        :class:`ConjugateResult`.

    Raises:
        TypeError: ``model`` does not implement :class:`icnn.ConvexEnergy`; ``domain`` not
            None or an :class:`icnn.Box`.
        ValueError: ``z``, ``x`` or ``y0`` of the wrong shape, dtype or batch size, or not
            finite; an unknown method or ``unconverged``; ``tol`` not finite and ``>= 0``;
            ``max_iter`` not a positive int; a potential that is not convex now; or whatever
            :func:`icnn.argmin` refuses (a barrier energy without a bounded domain).
        UnconvergedConjugateError: ``unconverged="raise"`` and some row did not converge.
    """
    traits = check_potential(model)
    if not traits.convex:
        raise ValueError(f"expected a potential convex in y (a conjugate of a non-convex "
                         f"function is not given by a local search), got one that is not: "
                         f"{'; '.join(traits.issues)}")
    if method not in METHODS:
        raise ValueError(f"expected method in {METHODS}, got {method!r}")
    if unconverged not in UNCONVERGED:
        raise ValueError(f"expected unconverged in {UNCONVERGED}, got {unconverged!r}")
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not math.isfinite(tol) \
            or tol < 0:
        raise ValueError(f"expected tol a finite number >= 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"expected max_iter a positive int, got {max_iter!r}")
    if domain is not None and not isinstance(domain, Box):
        raise TypeError(f"expected domain None or an icnn.Box (e.g. icnn.Box(-1.0, 1.0)), got "
                        f"{type(domain).__name__} {domain!r}")
    z, x = check_point_and_context(model, z, x, name="z")
    batch, shape = z.shape[0], tuple(z.shape[1:])
    if y0 is None:
        y = z.detach().clone()
    else:
        y = check_tensor("y0", y0, shape, dtype=z.dtype, batch=batch).detach().clone()
    lo, hi = (domain if domain is not None else Box(-math.inf, math.inf)).bounds(
        batch, shape, z.dtype, z.device)

    tilted = TiltedEnergy(model)
    context = tilted.pack(z, x)
    with torch.no_grad():
        energy = tilted.condition(context)
    z_flat = z.detach().flatten(1)
    # the solver runs its rounds in full (tol 0: its own test is relative to max(1, |value|),
    # absolute for small values); the tests here are scale-free

    evaluations = torch.zeros(batch, dtype=torch.long, device=z.device)
    residual = torch.full((batch,), math.inf, dtype=z.dtype, device=z.device)
    grad_h = torch.zeros_like(z_flat)
    upper = torch.full((batch,), math.inf, dtype=z.dtype, device=z.device)
    solver_value = torch.zeros(batch, dtype=z.dtype, device=z.device)
    previous = torch.full((batch,), -math.inf, dtype=z.dtype, device=z.device)
    done = torch.zeros(batch, dtype=torch.bool, device=z.device)
    running = torch.arange(batch, device=z.device)
    iterations = 0
    while running.numel() and iterations < max_iter:  # the first round always runs
        result = argmin(tilted, context[running], y0=y[running],
                        domain=Box(lo[running], hi[running]), method=method, tol=0.0,
                        max_iter=min(ROUND, max_iter - iterations), allow_unbounded=True)
        iterations += result.iterations
        y[running] = result.y
        solver_value[running] = -result.value.detach()
        evaluations[running] += result.info.get("evaluations", result.iterations) + 1
        residual[running], grad_h[running] = _residual(energy, y[running], running, lo[running],
                                                       hi[running], z_flat[running])
        stopped = residual[running] <= tol
        if result.lower_bound is not None:
            upper[running] = -result.lower_bound.detach().to(z.dtype)
            if traits.kinks:
                gap = upper[running] - solver_value[running]
                stopped |= gap <= tol * _value_scale(y[running], z_flat[running],
                                                     solver_value[running])
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
    bound = value.detach() + _quadratic_bound(grad_h, y.flatten(1), lo.flatten(1), hi.flatten(1),
                                             float(traits.strong_convexity)).to(z.dtype)
    # the solver's bound against the value recomputed here: equal up to rounding
    upper = torch.maximum(torch.minimum(upper, bound), value.detach())
    gap = upper - value.detach()
    converged = finite & (done | (residual <= tol))
    if value.requires_grad and not bool(converged.all()):
        value = _unconverged_value(value, converged, residual, unconverged)
    return ConjugateResult(value=value, y=y, iterations=iterations, evaluations=evaluations,
                           residual=residual, converged=converged, upper_bound=upper, gap=gap,
                           method=method)


def _unconverged_value(value: Tensor, converged: Tensor, residual: Tensor, mode: str) -> Tensor:
    """``value`` with the rows ``~converged`` handled as ``mode`` says (see :func:`conjugate`)."""
    count, worst = int((~converged).sum()), float(residual[~converged].max())
    message = (f"{count} of {len(converged)} conjugate rows did not converge (largest residual "
               f"{worst:.3g}; raise max_iter, give a better y0, or check that z lies in the range "
               f"of grad f)")
    if mode == "raise":
        raise UnconvergedConjugateError(f"expected every row to converge, got {message}")
    if mode == "keep":
        return value
    warnings.warn(f"{message}; their value is detached (no gradient); pass unconverged='keep' to "
                  f"keep their envelope gradients", UnconvergedConjugateWarning, stacklevel=3)
    return torch.where(converged, value, value.detach())


def _value_scale(y: Tensor, z: Tensor, value: Tensor) -> Tensor:
    """``max(|<y, z>|, |f(x, y)|)`` per row, the size of the terms of ``value = <y, z> - f``."""
    inner = (y.flatten(1) * z).sum(dim=1)
    return torch.maximum(inner.abs(), (inner - value).abs())


def _residual(energy, y: Tensor, index: Tensor, lo: Tensor, hi: Tensor, z: Tensor
              ) -> tuple[Tensor, Tensor]:
    """The relative residual ``(len(y),)`` and ``grad h(y)`` ``(len(y), n)`` of the rows ``index``.

    The projected step is ``clamp(-grad h, lo - y, hi - y)`` (exactly ``-grad h`` on an unbounded
    domain, however large ``y``), relative to ``max(||z||, ||grad f(y)||)``.
    """
    with torch.enable_grad():
        point = y.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(point, index).sum(), point)
    grad = grad.detach().flatten(1)
    step = projected_step(grad.reshape(y.shape), y, lo, hi).flatten(1)
    scale = torch.maximum(z.norm(dim=1), (grad + z).norm(dim=1))
    scale = scale.clamp_min(torch.finfo(y.dtype).tiny)
    return step.norm(dim=1) / scale, grad


def _quadratic_bound(grad: Tensor, y: Tensor, lo: Tensor, hi: Tensor, mu: float) -> Tensor:
    r"""``max_{u in [lo, hi]} <-g, u - y> - mu ||u - y||^2 / 2`` per row, ``(batch,)`` float64.

    By (strong) convexity ``h(u) >= h(y) + <g, u - y> + mu ||u - y||^2 / 2`` for a (sub)gradient
    ``g`` of ``h`` at ``y``, so ``min h >= h(y) - this`` and ``f^* <= value + this``. Per
    coordinate the maximiser is ``d = clamp(-g / mu, lo - y, hi - y)`` (``mu = 0``: the bound of
    the box ``-g`` points to; ``+inf`` on an unbounded side).
    """
    g, lower, upper = grad.double(), (lo - y).double(), (hi - y).double()
    if mu > 0.0:
        d = torch.minimum(torch.maximum(-g / mu, lower), upper)
    else:
        d = torch.where(g > 0, lower, upper)
    gain = torch.where(g == 0, torch.zeros_like(g), -g * d)
    if mu > 0.0:
        gain = gain - 0.5 * mu * d.square()
    return gain.sum(dim=1)

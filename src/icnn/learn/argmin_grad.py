"""Learning through the argmin (Section 5.2).

Predictions ``ŷ(x; θ) = argmin_y f(x, y; θ)`` that carry gradients to ``θ``, by unrolling or implicitly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..solvers.domain import Box

DIFFERENTIABLE = ("unroll", "implicit")


def predict(
    model: nn.Module, x: Tensor | None = None, *, differentiable: str = "unroll",
    method: str = "auto", domain: Box | None = None, y0: Tensor | None = None,
    **solver_options: Any,
) -> Tensor:
    """``ŷ = argmin_{y ∈ domain} f(x, y)`` differentiable with respect to the model's weights.

    A thin training-side front to :func:`icnn.argmin` with ``differentiable`` set:
    ``"unroll"`` backpropagates through the solver's iterations (SPEN-style), ``"implicit"``
    differentiates the optimality conditions at the solution (Proposition 3 for
    ``bundle_entropy``). At convergence both give the same gradient.

    Args:
        model: energy convex in ``y``.
        x: ``(batch, *context_shape)`` or None.
        differentiable: ``"unroll"`` or ``"implicit"``.
        method: as :func:`icnn.argmin`.
        domain: as :func:`icnn.argmin`.
        y0: as :func:`icnn.argmin`.
        **solver_options: as :func:`icnn.argmin`.

    Returns:
        ``(batch, *convex_input_shape)``.
    """
    if differentiable not in DIFFERENTIABLE:
        raise ValueError(f"differentiable must be one of {DIFFERENTIABLE}, got {differentiable!r}")
    from ..solvers import argmin

    return argmin(model, x, domain=domain, y0=y0, method=method,
                  differentiable=differentiable, **solver_options).y


def unrolled_gd(
    model: nn.Module | Callable[..., Tensor], x: Tensor | None, y0: Tensor, *, steps: int = 30,
    lr: float = 0.01, momentum: float = 0.9, domain: Box | None = None,
    fixed: tuple[Tensor, Tensor] | None = None, create_graph: bool = True,
) -> Tensor:
    r"""``steps`` of projected heavy-ball gradient descent on ``y``, kept in the autograd graph.

    .. math:: v_{t+1} = \mu v_t + \nabla_y f(x, y_t), \qquad y_{t+1} = P(y_t - \alpha v_{t+1})

    with ``P`` the projection onto ``domain`` that also pins the ``fixed`` coordinates, and
    ``y_0 = P(y0)``. This is the paper's "back-optimisation" prediction (reference notes §3.4;
    the authors' ``icnn.back.py``): the synthetic experiment uses 30 steps, ``α = 0.01``,
    ``μ = 0.9``, ``y_0 = 0.5``; image completion five steps over ``[0, 1]`` with the observed
    pixels pinned. It needs no convexity (the non-convex ablations use it too). With
    ``create_graph`` the result is differentiable in the weights, in ``x`` and in ``y0``;
    without, it carries no graph. (:func:`icnn.solvers.unroll.solve_unrolled`, behind
    ``argmin(differentiable="unroll")``, is a different algorithm: accelerated projected
    gradient with a backtracked step.)

    Args:
        model: the energy, ``model(x, y)`` (or ``model(y)`` when ``x`` is None) returning
            ``(batch,)``: a module or any callable.
        x: ``(batch, *context_shape)`` or None.
        y0: ``(batch, *convex_input_shape)`` start point, floating point.
        steps: number of steps, ``>= 0``.
        lr: step size ``α > 0``.
        momentum: ``μ`` in ``[0, 1)``.
        domain: optional box; iterates are projected (clamped) onto it.
        fixed: optional ``(mask, values)``, both broadcastable to ``y0``: where ``mask`` (bool)
            is True, ``y`` stays at ``values``.
        create_graph: keep every step in the graph (training); otherwise ``y`` is detached after
            each step.

    Returns:
        ``(batch, *convex_input_shape)``.
    """
    _check_descent_inputs(y0, steps, lr, momentum, fixed)
    lo = hi = None
    if domain is not None:
        lo, hi = domain.bounds(y0.shape[0], tuple(y0.shape[1:]), y0.dtype, y0.device)

    def project(y: Tensor) -> Tensor:
        if lo is not None:
            y = torch.maximum(torch.minimum(y, hi), lo)
        return y if fixed is None else torch.where(fixed[0], fixed[1].to(y.dtype), y)

    y = project(y0 if create_graph else y0.detach())
    velocity = torch.zeros_like(y0)
    with torch.enable_grad():
        for step in range(steps):
            if not y.requires_grad:
                y = y.detach().requires_grad_(True)
            energy = model(y) if x is None else model(x, y)
            if step == 0 and tuple(energy.shape) != (y0.shape[0],):
                raise ValueError(f"expected the energy to return shape ({y0.shape[0]},), one "
                                 f"value per example, got {tuple(energy.shape)}")
            (grad,) = torch.autograd.grad(energy.sum(), y, create_graph=create_graph)
            velocity = momentum * velocity + grad
            y = project(y - lr * velocity)
            if not create_graph:
                y, velocity = y.detach(), velocity.detach()
    return y if create_graph else y.detach()


def _check_descent_inputs(y0: Tensor, steps: int, lr: float, momentum: float,
                          fixed: tuple[Tensor, Tensor] | None) -> None:
    if not isinstance(y0, Tensor) or not y0.is_floating_point() or y0.ndim < 2:
        raise ValueError(f"expected y0 a floating-point tensor of shape (batch, *shape), got "
                         f"{getattr(y0, 'dtype', type(y0).__name__)} "
                         f"{tuple(getattr(y0, 'shape', ()))}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"expected lr a finite number > 0, got {lr!r}")
    if not (isinstance(momentum, int | float) and 0 <= momentum < 1):
        raise ValueError(f"expected momentum in [0, 1), got {momentum!r}")
    if fixed is not None:
        mask, values = fixed
        if mask.dtype != torch.bool:
            raise TypeError(f"expected a bool fixed mask, got dtype {mask.dtype}")
        for name, t in (("mask", mask), ("values", values)):
            try:
                fits = torch.broadcast_shapes(t.shape, y0.shape) == y0.shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(f"expected fixed {name} broadcastable to y0's shape "
                                 f"{tuple(y0.shape)}, got {tuple(t.shape)}")

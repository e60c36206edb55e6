"""Learning through the argmin (Section 5.2): predictions ``ŷ(x; θ) = argmin_y f(x, y; θ)``
that carry gradients to ``θ``, by unrolling or implicitly."""

from __future__ import annotations

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
        model: energy convex in ``y``; x: ``(batch, *context_shape)`` or None.
        differentiable: ``"unroll"`` or ``"implicit"``.
        method, domain, y0, solver_options: as :func:`icnn.argmin`.

    Returns:
        ``(batch, *convex_input_shape)``.
    """
    if differentiable not in DIFFERENTIABLE:
        raise ValueError(f"differentiable must be one of {DIFFERENTIABLE}, got {differentiable!r}")
    from ..solvers import argmin

    return argmin(model, x, domain=domain, y0=y0, method=method,
                  differentiable=differentiable, **solver_options).y


def unrolled_gd(
    model: nn.Module, x: Tensor | None, y0: Tensor, *, steps: int = 30, lr: float = 0.01,
    momentum: float = 0.9, domain: Box | None = None, create_graph: bool = True,
) -> Tensor:
    r"""``steps`` of heavy-ball gradient descent on ``y``, kept in the autograd graph.

    .. math:: v_{t+1} = \mu v_t + \nabla_y f(x, y_t), \qquad y_{t+1} = P(y_t - \alpha v_{t+1})

    This is the paper's "back-optimisation" prediction (reference notes §3.4; the synthetic
    experiment uses 30 steps, ``α = 0.01``, ``μ = 0.9``, ``y_0 = 0.5``). With ``create_graph``
    the result is differentiable in the weights (and in ``x``).

    Args:
        model: energy convex in ``y``; x: ``(batch, *context_shape)`` or None.
        y0: ``(batch, *convex_input_shape)`` start point.
        domain: optional box; iterates are projected (clamped) onto it.

    Returns:
        ``(batch, *convex_input_shape)``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    lo = hi = None
    if domain is not None:
        lo, hi = domain.bounds(y0.shape[0], tuple(y0.shape[1:]), y0.dtype, y0.device)
    y = y0 if create_graph else y0.detach()
    velocity = torch.zeros_like(y0)
    with torch.enable_grad():
        if not y.requires_grad:
            y = y.clone().requires_grad_(True)
        for _ in range(steps):
            energy = model(y) if x is None else model(x, y)
            (grad,) = torch.autograd.grad(energy.sum(), y, create_graph=create_graph)
            velocity = momentum * velocity + grad
            y = y - lr * velocity
            if lo is not None:
                y = torch.maximum(torch.minimum(y, hi), lo)
            if not create_graph:
                y = y.detach().requires_grad_(True)
    return y if create_graph else y.detach()

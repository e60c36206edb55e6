r"""Completion as inference: ``ŷ = argmin_y f(x, y)`` over ``[0, 1]`` with observed pixels pinned.

Two routes, both differentiable in the weights for training (paper Section 5.2):

* ``"bundle_entropy"``: :func:`icnn.argmin` with ``method="bundle_entropy"`` (minimises
  ``f - H``, the entropy being part of the prediction) and ``differentiable="implicit"``
  (Proposition 3) while training;
* ``"gd"``: ``steps`` of heavy-ball gradient descent projected onto the box, unrolled in the
  graph — the authors' ``icnn.back.py``:

  .. math:: v_{t+1} = \mu v_t + \nabla_y f(x, y_t), \qquad y_{t+1} = P(y_t - \alpha v_{t+1})

  This needs no convexity, so it also serves the non-convex ablation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .energy import CompletionEnergy
from .ensemble import CompletionEnsemble

METHODS = ("bundle_entropy", "gd")


@dataclass(frozen=True)
class InferenceConfig:
    """How ``ŷ`` is computed.

    Attributes:
        method: ``"bundle_entropy"`` or ``"gd"``.
        steps: bundle-entropy subproblems (paper: 5, authors' code: 30) or unrolled GD steps.
        lr, momentum: of the GD steps (the authors' ``α = 0.01``, ``μ = 0.9``).
        tol: relative gap at which bundle entropy stops early (0: always ``steps``).
    """

    method: str = "bundle_entropy"
    steps: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    tol: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"inference method must be one of {METHODS}, got {self.method!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"inference steps must be a positive int, got {self.steps!r}")
        if not self.lr > 0 or not 0 <= self.momentum < 1:
            raise ValueError(f"expected lr > 0 and momentum in [0, 1), got {self.lr}, "
                             f"{self.momentum}")


def unrolled_momentum_gd(
    energy: Callable[[Tensor], Tensor], y0: Tensor, *, steps: int, lr: float, momentum: float,
    fixed: tuple[Tensor, Tensor] | None = None, create_graph: bool = True,
) -> Tensor:
    """Projected heavy-ball descent on ``energy`` over ``[0, 1]^n``, pinned where ``fixed``.

    Args:
        energy: ``y -> (batch,)`` energies.
        y0: ``(batch, *shape)`` start; it is projected first.
        fixed: ``(mask, values)``: coordinates where ``mask`` is True stay at ``values``.
        create_graph: keep every step in the autograd graph (training); otherwise ``y`` is
            detached after each step and the result carries no graph.

    Returns:
        ``(batch, *shape)``.
    """
    mask, values = fixed if fixed is not None else (None, None)

    def project(t: Tensor) -> Tensor:
        t = t.clamp(0.0, 1.0)
        return t if mask is None else torch.where(mask, values, t)

    y = project(y0.detach())
    velocity = torch.zeros_like(y)
    with torch.enable_grad():
        for _ in range(steps):
            if not y.requires_grad:
                y = y.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(y).sum(), y, create_graph=create_graph)
            velocity = momentum * velocity + grad
            y = project(y - lr * velocity)
            if not create_graph:
                y, velocity = y.detach(), velocity.detach()
    return y


def complete(
    energy: CompletionEnergy | CompletionEnsemble, features: Tensor, y0: Tensor, config: InferenceConfig, *,
    fixed: tuple[Tensor, Tensor] | None = None, differentiable: bool = False,
) -> Tensor:
    """``ŷ: (batch, *y_shape)`` for contexts ``features = energy.features(x)``, from ``y0``.

    With ``differentiable`` the result carries gradients to the weights and the features
    (unrolled steps, or the implicit bundle-entropy gradient); otherwise it has no graph.
    """
    if config.method == "gd":
        return unrolled_momentum_gd(lambda y: energy.energy(features, y), y0, steps=config.steps,
                                    lr=config.lr, momentum=config.momentum, fixed=fixed,
                                    create_graph=differentiable)
    if not energy.is_convex:
        raise ValueError("bundle entropy needs a model convex in y; the convex=False ablation "
                         "is trained and evaluated with method 'gd'")
    from ...solvers import Box, argmin

    result = argmin(energy, features, domain=Box(0.0, 1.0), y0=y0, fixed=fixed,
                    method="bundle_entropy", max_iter=config.steps, tol=config.tol,
                    differentiable="implicit" if differentiable else None)
    return result.y

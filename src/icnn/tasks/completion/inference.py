r"""Completion as inference: ``ŷ = argmin_y f(x, y)`` over ``[0, 1]`` with observed pixels pinned.

Two routes, both differentiable in the weights for training (paper Section 5.2):

* ``"bundle_entropy"``: :func:`icnn.argmin` with ``method="bundle_entropy"`` (minimises
  ``f - H``, the entropy being part of the prediction) and ``differentiable="implicit"``
  (Proposition 3) while training;
* ``"gd"``: ``steps`` of heavy-ball gradient descent projected onto the box, unrolled in the
  graph — the authors' ``icnn.back.py``, :func:`icnn.learn.unrolled_gd` (the one
  implementation, shared with the synthetic experiment). It needs no convexity, so it also
  serves the non-convex ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ...learn.argmin_grad import unrolled_gd
from ...solvers.domain import Box
from .energy import FeatureEnergy

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


def complete(
    energy: FeatureEnergy, features: Tensor, y0: Tensor, config: InferenceConfig, *,
    fixed: tuple[Tensor, Tensor] | None = None, differentiable: bool = False,
) -> Tensor:
    """``ŷ: (batch, *y_shape)`` for contexts ``features = energy.features(x)``, from ``y0``.

    With ``differentiable`` the result carries gradients to the weights and the features
    (unrolled steps, or the implicit bundle-entropy gradient); otherwise it has no graph.
    """
    if config.method == "gd":
        return unrolled_gd(energy.energy, features, y0, steps=config.steps, lr=config.lr,
                           momentum=config.momentum, domain=Box(0.0, 1.0), fixed=fixed,
                           create_graph=differentiable)
    if not energy.is_convex:
        raise ValueError("bundle entropy needs a model convex in y; the convex=False ablation "
                         "is trained and evaluated with method 'gd'")
    from ...solvers import argmin

    result = argmin(energy, features, domain=Box(0.0, 1.0), y0=y0, fixed=fixed,
                    method="bundle_entropy", max_iter=config.steps, tol=config.tol,
                    differentiable="implicit" if differentiable else None)
    return result.y

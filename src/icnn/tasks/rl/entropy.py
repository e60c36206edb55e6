"""The reference code's action objective: ``−Q(s, a) − w·H((a + 1)/2)`` over ``[-1, 1]^dA``.

The ICML RL code chose actions by minimising ``negQ(s, a) − H((a+1)/2)`` (reference-notes §2.5;
Algorithm 3 with the bundle-entropy method, ``Q̃ = Q + H``), where

    H(p) = −Σ_j p_j log p_j + (1 − p_j) log(1 − p_j),     p = (a + 1) / 2 ∈ [0, 1]^dA.

``−H`` is convex, smallest at the box centre and steep at the faces: the chosen action is pulled
inward, a soft version of ``argmax_a Q``. In ``a`` its Hessian is at least the identity (the
second derivative of ``p log p + (1−p) log(1−p)`` is ``1/p + 1/(1−p) ≥ 4``, times ``(dp/da)² =
1/4``), so ``w·(−H)`` adds ``w`` to the energy's strong convexity.

:class:`EntropyRegularizedEnergy` wraps a convex energy so that :func:`icnn.argmin` solves that
objective with any of its methods (and keeps the energy's fast ``condition``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from icnn.solvers.iterative import model_strong_convexity

# Below EDGE (above 1 − EDGE) the barrier continues along its tangent: finite, C¹ and still
# convex at the box faces, where projected solvers evaluate it.
EDGE = 1e-6


def negative_entropy(action: Tensor) -> Tensor:
    """``−H((a + 1)/2)`` summed over the action: ``(..., act_dim)`` → ``(...)``; ≤ 0, 0 at corners.

    Exact on ``[−1 + 2·EDGE, 1 − 2·EDGE]``; outside, the tangent there (convex, finite).
    """
    p = (action + 1.0) / 2.0
    c = p.clamp(EDGE, 1.0 - EDGE)
    value = c * torch.log(c) + (1.0 - c) * torch.log1p(-c)
    slope = torch.log(c) - torch.log1p(-c)  # d/dp of p log p + (1 − p) log(1 − p)
    return (value + slope * (p - c)).sum(-1)


class EntropyRegularizedEnergy(nn.Module):
    """``f(s, a) + weight · (−H((a + 1)/2))``, convex in ``a`` when ``f`` is.

    Shape: ``s: (batch, *context_shape)``, ``a: (batch, act_dim)`` → ``(batch,)``.

    Args:
        energy: the convex energy (e.g. the ICNN-Q :class:`icnn.PICNN`), used as is: no copy.
        weight: ``w > 0``, in the energy's units.
    """

    def __init__(self, energy: nn.Module, weight: float) -> None:
        super().__init__()
        if not weight > 0:
            raise ValueError(f"expected an entropy weight > 0, got {weight}")
        self.energy = energy
        self.weight = float(weight)
        self.convex_input_shape = energy.convex_input_shape
        self.context_shape = getattr(energy, "context_shape", None)
        # the solvers read the strong convexity from config (icnn.solvers.iterative)
        self.config = {"strong_convexity": model_strong_convexity(energy) + self.weight}

    def barrier(self, action: Tensor) -> Tensor:
        """``weight · (−H((a + 1)/2))``, ``(batch, act_dim)`` → ``(batch,)``."""
        return self.weight * negative_entropy(action)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.energy(x, y) + self.barrier(y)

    def condition(self, x: Tensor) -> Callable[[Tensor, Tensor | None], Tensor]:
        """The wrapped energy's :meth:`condition` plus the barrier (which needs no context)."""
        energy = self.energy.condition(x)

        def regularized(y: Tensor, index: Tensor | None = None) -> Tensor:
            return energy(y, index) + self.barrier(y)

        return regularized

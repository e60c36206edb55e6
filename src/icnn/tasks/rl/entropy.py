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

import torch
from torch import Tensor, nn

from icnn.nn.energy import BARRIER, EnergyTraits
from icnn.solvers.entropy import interior_entropy_terms
from icnn.tasks.rl.energy_plus_term import EnergyPlusTerm, Term

# Below EDGE (above 1 − EDGE) the barrier continues along its tangent: finite, C¹ and still
# convex at the box faces, where projected solvers evaluate it.
EDGE = 1e-6


def action_negative_entropy(action: Tensor) -> Tensor:
    """``−H((a + 1)/2)`` summed over the action: ``(..., act_dim)`` → ``(...)``; ≤ 0, 0 at corners.

    The shared :func:`icnn.solvers.entropy.negative_entropy` of ``p = (a + 1)/2``, to the last
    bit, on ``[−1 + 2·EDGE, 1 − 2·EDGE]``; outside, its tangent at ``p = EDGE`` (``1 − EDGE``),
    which is convex, finite and defined beyond the box (so it extends, and does not replace,
    the shared function).
    """
    p = (action + 1.0) / 2.0
    c = p.clamp(EDGE, 1.0 - EDGE)
    slope = torch.log(c) - torch.log1p(-c)  # d/dp of p log p + (1 − p) log(1 − p)
    return (interior_entropy_terms(c) + slope * (p - c)).sum(-1)


class EntropyRegularizedEnergy(EnergyPlusTerm):
    """``f(s, a) + weight · (−H((a + 1)/2))``, convex in ``a`` when ``f`` is.

    Shape: ``s: (batch, *context_shape)``, ``a: (batch, act_dim)`` → ``(batch,)``.

    Args:
        energy: the convex energy (e.g. the ICNN-Q :class:`icnn.PICNN`), used as is: no copy.
        weight: ``w > 0``, in the energy's units; it adds ``w`` to the strong convexity.
    """

    def __init__(self, energy: nn.Module, weight: float) -> None:
        if not weight > 0:
            raise ValueError(f"expected an entropy weight > 0, got {weight}")
        # on [-1, 1] the barrier's Hessian is >= weight * I (the module docstring)
        super().__init__(energy, EnergyTraits(convex=True, strong_convexity=float(weight),
                                              curvature=BARRIER))
        self.weight = float(weight)

    def barrier(self, action: Tensor) -> Tensor:
        """``weight · (−H((a + 1)/2))``, ``(batch, act_dim)`` → ``(batch,)``."""
        return self.weight * action_negative_entropy(action)

    def term_given(self, x: Tensor) -> Term:
        """The barrier, which needs no context."""
        return lambda y, index=None: self.barrier(y)

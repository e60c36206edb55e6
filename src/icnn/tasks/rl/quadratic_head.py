"""A NAF-style quadratic added to a convex energy: ``f(s, a) + ½ Σ_j d_j(s) (a_j − m_j(s))²``.

NAF models the advantage as a concave quadratic in the action, and wins on tasks whose action
value is close to one (Reacher's reward is ``−distance − ‖a‖²``). A PICNN has to build that
curvature out of softplus units. :class:`QuadraticHeadEnergy` adds a diagonal quadratic whose
curvature ``d(s) = softplus(·) ≥ 0`` and centre ``m(s) = tanh(·) ∈ [-1, 1]`` come from a small
state network: for every state it is a convex quadratic in ``a``, so the sum stays convex in
``a`` (the energy's promise holds whatever the head's weights are). With the head, ICNN-Q can
represent NAF with a diagonal ``P(s)`` (the PICNN's state path carrying the value ``V(s)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icnn.nn.energy import SMOOTH, EnergyTraits
from icnn.tasks.rl.energy_plus_term import EnergyPlusTerm, Term
from icnn.tasks.rl.networks import mlp

INITIAL_CURVATURE_BIAS = -3.0  # softplus(−3) ≈ 0.049: the head starts almost flat


class QuadraticHeadEnergy(EnergyPlusTerm):
    """``energy(s, a) + ½ Σ_j softplus(c_j(s)) (a_j − tanh(m_j(s)))²``, convex in ``a``.

    Shape: ``s: (batch, obs_dim)``, ``a: (batch, act_dim)`` → ``(batch,)``.

    Args:
        energy: a convex energy with a ``(obs_dim,)`` context (e.g. a :class:`icnn.PICNN`).
        obs_dim, act_dim: sizes of ``s`` and ``a``.
        hidden: widths of the head's state network (ReLU). Its last layer starts near zero
            (DDPG's ±3e-3) with the curvature bias at −3, so at initialisation the head adds
            about ``0.025 ‖a‖²`` and no pull off the centre.
    """

    def __init__(self, energy: nn.Module, obs_dim: int, act_dim: int,
                 hidden: tuple[int, ...] = (64,)) -> None:
        # the head's curvature is state-dependent and may be ~0: only the energy's is certain
        super().__init__(energy, EnergyTraits(convex=True, curvature=SMOOTH))
        self.head = mlp(obs_dim, hidden, 2 * act_dim)
        with torch.no_grad():
            self.head[-1].bias[:act_dim] = INITIAL_CURVATURE_BIAS

    def curvature_and_centre(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``d(s) ≥ 0`` and ``m(s) ∈ [-1, 1]``, each ``(batch, act_dim)``."""
        raw_curvature, raw_centre = self.head(x).chunk(2, dim=-1)
        return F.softplus(raw_curvature), raw_centre.tanh()

    def term_given(self, x: Tensor) -> Term:
        """The quadratic with its coefficients computed at ``x`` once."""
        curvature, centre = self.curvature_and_centre(x)

        def quadratic(y: Tensor, index: Tensor | None = None) -> Tensor:
            d, m = (curvature, centre) if index is None else (curvature[index], centre[index])
            return 0.5 * (d * (y - m).square()).sum(-1)

        return quadratic

    def project_(self) -> QuadraticHeadEnergy:
        """Project the wrapped energy's constrained weights (the head needs none)."""
        self.energy.project_()
        return self


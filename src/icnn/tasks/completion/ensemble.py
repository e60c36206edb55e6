"""An ensemble of completion energies: the mean of K independently trained energies.

``E(x, y) = (1/K) sum_k E_k(x, y)`` is convex in ``y`` when every ``E_k`` is (a non-negative
combination of convex functions), so the ensemble's prediction is still one convex problem,
``argmin_y E(x, y)``, solved by the same inference (bundle entropy or GD). For energies whose
minimisers are nearly separable per pixel (logits ``-grad E_k``), averaging the energies
averages the members' logits, the geometric mean of their predictions; it removes much of the
seed-to-seed variance of single models trained on a few hundred images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...nn.energy import EnergyTraits, sum_traits
from .energy import CompletionEnergy, FeatureEnergy


class CompletionEnsemble(FeatureEnergy):
    """``E(features, y) = mean_k E_k(features_k, y)``, the features of every member packed.

    Args:
        members: trained :class:`CompletionEnergy` models with the same ``y`` shape.

    Shape:
        Input ``features: (batch, sum_k n_k)`` from :meth:`features`, ``y: (batch, *y_shape)``
        -> Output ``(batch,)``.
    """

    def __init__(self, members: Sequence[CompletionEnergy]) -> None:
        super().__init__()
        if not members:
            raise ValueError("expected at least one member energy")
        shapes = {tuple(m.convex_input_shape) for m in members}
        if len(shapes) != 1:
            raise ValueError(f"expected members with one y shape, got {sorted(shapes)}")
        self.members = nn.ModuleList(members)
        self.convex_input_shape = members[0].convex_input_shape
        self.sizes = [m.context_shape[0] for m in members]
        self.context_shape = (sum(self.sizes),)
        self.config = {"members": len(members), "constraint": members[0].config["constraint"],
                       "strong_convexity": 0.0}

    @property
    def is_convex(self) -> bool:
        """True when every member is convex now."""
        return all(m.is_convex for m in self.members)

    def energy_traits(self) -> EnergyTraits:
        """The members' traits summed and divided by their number."""
        return sum_traits([m.energy_traits() for m in self.members]).scaled(1 / len(self.members))

    @property
    def scale(self) -> float:
        """Mean energy scale of the members (reporting only)."""
        return sum(m.scale for m in self.members) / len(self.members)

    def features(self, x: Tensor) -> Tensor:
        """``(batch, sum_k n_k)``: every member's context features of ``x``, concatenated."""
        return torch.cat([m.features(x) for m in self.members], dim=1)

    def energy(self, features: Tensor, y: Tensor) -> Tensor:
        """The mean member energy, without input validation (for inner loops)."""
        parts = features.split(self.sizes, dim=1)
        total = sum(m.energy(f, y) for m, f in zip(self.members, parts, strict=True))
        return total / len(self.members)

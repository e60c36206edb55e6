"""The three models of Figure 3: a feedforward classifier and two energies over the label."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ... import FICNN, PICNN
from ...learn import unrolled_gd
from ...nn.energy import EnergyTraits
from ...solvers.domain import Box

MODELS = ("ff", "ficnn", "picnn")


class FeedForward(nn.Module):
    """Plain classifier ``x -> ŷ`` (two ReLU hidden layers, linear output).

    Shape: ``x: (batch, 2)`` -> ``(batch, 1)``.
    """

    def __init__(self, x_dim: int = 2, hidden: tuple[int, ...] = (200, 200)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for n_in, n_out in zip((x_dim, *hidden), hidden, strict=False):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1], 1))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits of points ``x: (batch, 2)``."""
        return self.net(x)


class JointEnergy(nn.Module):
    """``E(x, y) = f([x; y])`` with ``f`` an FICNN.

    Jointly convex in ``(x, y)``, hence convex in ``y`` for every ``x``. Exposes
    ``convex_input_shape``/``context_shape`` like a PICNN.

    Shape: ``x: (batch, x_dim)``, ``y: (batch, y_dim)`` -> ``(batch,)``.
    """

    def __init__(self, x_dim: int = 2, y_dim: int = 1, hidden: tuple[int, ...] = (200, 200)):
        super().__init__()
        self.ficnn = FICNN(x_dim + y_dim, hidden=hidden)
        self.convex_input_shape = (y_dim,)
        self.context_shape = (x_dim,)

    def energy_traits(self) -> EnergyTraits:
        """The FICNN's: jointly convex in ``(x, y)``, so convex in ``y``."""
        return self.ficnn.energy_traits()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """The FICNN of ``(x, y)`` jointly, ``(batch,)``."""
        return self.ficnn(torch.cat([x, y], dim=1))


class EnergyClassifier(nn.Module):
    """``ŷ(x) = argmin_y E(x, y)`` by unrolled momentum descent from ``y0`` (differentiable).

    Args:
        energy: ``JointEnergy`` or ``PICNN`` with a 1-D ``y``.
        steps, lr, momentum, y0: the inference settings (paper: 30, 0.01, 0.9, 0.5).
        domain: iterates are projected onto this box (None: unconstrained, as the authors).
    """

    def __init__(self, energy: nn.Module, steps: int = 30, lr: float = 0.01,
                 momentum: float = 0.9, y0: float = 0.5, domain: Box | None = None) -> None:
        super().__init__()
        self.energy = energy
        self.steps, self.lr, self.momentum, self.y0 = steps, lr, momentum, y0
        self.domain = domain

    def forward(self, x: Tensor) -> Tensor:
        """The prediction ``y_hat`` by unrolled momentum descent on the energy, ``(batch, 1)``."""
        start = torch.full((x.shape[0], 1), self.y0, dtype=x.dtype, device=x.device)
        return unrolled_gd(self.energy, x, start, steps=self.steps, lr=self.lr,
                           momentum=self.momentum, domain=self.domain,
                           create_graph=self.training)


def build_model(kind: str, hidden: tuple[int, ...], steps: int, lr: float,
                domain: Box | None = None) -> nn.Module:
    """``"ff"``, ``"ficnn"`` or ``"picnn"`` as a classifier ``x -> ŷ (batch, 1)``."""
    if kind == "ff":
        return FeedForward(2, hidden)
    if kind == "ficnn":
        return EnergyClassifier(JointEnergy(2, 1, hidden), steps=steps, lr=lr, domain=domain)
    if kind == "picnn":
        return EnergyClassifier(PICNN(2, 1, hidden=hidden), steps=steps, lr=lr, domain=domain)
    raise ValueError(f"model must be one of {MODELS}, got {kind!r}")

r"""The weight of the entropy in bundle-entropy inference, as a scale on the energy.

Bundle entropy minimises ``f(x, y) - H(y)`` (paper Section 4.4). A weight ``w > 0`` on the
entropy gives the same minimiser as the energy divided by ``w``::

    argmin_y f(x, y) - w H(y) = argmin_y f(x, y) / w - H(y),

so :class:`EntropyWeighted` (``f / w``) is all the solvers need. For a warm-started PICNN the
linear term is started at ``-w phi(x)^T y`` (:func:`.warm_start.picnn_from_feedforward` with
``linear_scale = w``), so epoch 0 still predicts ``sigmoid(phi(x))``; what ``w`` changes is how
strongly the convex y-path (the label interactions) and the entropy compete, and the step sizes
Adam takes on the energy's output layer. After training, :func:`fold_entropy_weight` writes the
``1 / w`` into the PICNN's output layer, so the saved model is a plain PICNN whose ``f - H``
argmin is the trained predictor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from icnn.nn.energy import EnergyTraits
from icnn.solvers.conditioning import energy_at


def check_entropy_weight(weight: float) -> float:
    """``weight`` as a float after checking it is finite and positive.

    Raises:
        ValueError: otherwise.
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
            math.isfinite(weight) and weight > 0):
        raise ValueError(f"expected entropy_weight to be a finite number > 0, got {weight!r}")
    return float(weight)


class EntropyWeighted(nn.Module):
    """``f(x, y) / weight`` for an energy ``f`` (a PICNN or a wrapper of one).

    Args:
        energy: the module ``f(x, y)`` (:class:`icnn.ConvexEnergy` with a context).
        weight: the entropy weight ``w > 0``.

    Shape:
        ``x: (batch, *context_shape)``, ``y: (batch, L)`` -> ``(batch,)``.

    Raises:
        ValueError: ``weight`` not finite and positive.
    """

    def __init__(self, energy: nn.Module, weight: float) -> None:
        super().__init__()
        self.energy = energy
        self.weight = check_entropy_weight(weight)
        self.convex_input_shape = tuple(energy.convex_input_shape)
        self.context_shape = energy.context_shape

    @property
    def has_context(self) -> bool:
        """True when the wrapped energy takes a context."""
        return self.context_shape is not None

    def energy_traits(self) -> EnergyTraits:
        """The wrapped energy's traits divided by the weight."""
        return self.energy.energy_traits().scaled(1.0 / self.weight)

    def condition(self, x: Tensor) -> Callable[[Tensor, Tensor | None], Tensor]:
        """The wrapped energy's solver hook, divided by the weight."""
        inner = energy_at(self.energy, x, differentiable=torch.is_grad_enabled())
        return lambda y, index=None: inner(y, index) / self.weight

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """The wrapped energy divided by the weight, ``(batch,)``."""
        return self.energy(x, y) / self.weight

    def extra_repr(self) -> str:
        """The weight."""
        return f"weight={self.weight}"


@torch.no_grad()
def fold_entropy_weight(picnn: nn.Module, weight: float) -> nn.Module:
    """Divide a one-hidden-layer PICNN's energy by ``weight`` in place, through its output layer.

    The output is ``W^(z)_1 (z_1 o [W^(zu) u + b^(z)]_+) + W^(y)_1 (y o gate) + W^(u) u + b``;
    dividing the ``z``-gate rows (a positive factor passes through the ReLU), ``W^(y)_1`` and the
    ``W^(u)``, ``b`` rows by ``weight`` divides the whole energy. Requires no strong convexity
    term (it would need its own rescaling).

    Raises:
        ValueError: if the PICNN is not of that shape or has ``strong_convexity > 0``.
    """
    weight = check_entropy_weight(weight)
    if len(picnn.y_layers) != 2 or picnn.strong_convexity != 0.0:
        raise ValueError(f"expected a PICNN with one y-path hidden layer and strong_convexity 0, "
                         f"got {len(picnn.y_layers) - 1} hidden layers and strong_convexity "
                         f"{picnn.strong_convexity}")
    z_gate_w, _, linear_w = picnn.u_maps[1].weight.split(picnn.split_sizes[1])
    z_gate_b, _, linear_b = picnn.u_maps[1].bias.split(picnn.split_sizes[1])
    for part in (z_gate_w, z_gate_b, linear_w, linear_b, picnn.y_layers[1].weight):
        part.div_(weight)
    return picnn

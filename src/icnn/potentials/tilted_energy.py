r"""The tilted energy ``h(y) = f(x, y) - <y, z>``: a conjugate is an argmin over it.

``f^*(z) = max_y <y, z> - f(x, y) = -min_y h(y)``, so the library's batched solvers compute
conjugates once ``h`` is an energy they accept. :class:`TiltedEnergy` is that energy: its
context carries ``x`` (when ``f`` has one) and ``z`` side by side, so every solver's per-example
indexing picks the right ``z`` for each row, and its traits are ``f``'s plus a linear term
(:data:`icnn.nn.energy.LINEAR_TERM`): the same convexity, strong convexity, curvature and kinks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..nn.conditioned import ConditionedEnergy, accumulate
from ..nn.energy import LINEAR_TERM, EnergyTraits, energy_traits
from ..solvers.conditioning import energy_at

Energy = Callable[[Tensor, Tensor | None], Tensor]


class TiltedEnergy(nn.Module):
    r"""``h(c, y) = f(x, y) - <y, z>`` with the context ``c = [flatten(x), flatten(z)]``.

    Args:
        model: the potential ``f``, a module implementing :class:`icnn.ConvexEnergy`.

    Shape:
        ``context: (batch, x_numel + y_numel)`` (see :meth:`pack`), ``y: (batch,
        *convex_input_shape)`` -> ``(batch,)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        energy_traits(model)  # refuses a module that is not a convex energy
        self.model = model
        self.convex_input_shape = tuple(model.convex_input_shape)
        self.inner_context_shape = None if model.context_shape is None \
            else tuple(model.context_shape)
        self.x_numel = 0 if self.inner_context_shape is None else math.prod(self.inner_context_shape)
        self.y_numel = math.prod(self.convex_input_shape)
        self.context_shape = (self.x_numel + self.y_numel,)

    def energy_traits(self) -> EnergyTraits:
        """``f``'s traits plus those of a linear term: a tilt changes no curvature."""
        return energy_traits(self.model).plus(LINEAR_TERM)

    def pack(self, z: Tensor, x: Tensor | None) -> Tensor:
        """The context ``(batch, x_numel + y_numel)`` holding ``x`` and ``z`` (detached)."""
        parts = [] if x is None else [x.detach().flatten(1)]
        return torch.cat([*parts, z.detach().flatten(1)], dim=1)

    def unpack(self, context: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(z, x)`` back from a context made by :meth:`pack`."""
        batch = context.shape[0]
        z = context[:, self.x_numel:].reshape(batch, *self.convex_input_shape)
        if self.inner_context_shape is None:
            return z, None
        return z, context[:, :self.x_numel].reshape(batch, *self.inner_context_shape)

    def forward(self, context: Tensor, y: Tensor) -> Tensor:
        """``f(x, y) - <y, z>`` for the packed context ``(x, z)``, ``(batch,)``."""
        return self.condition(context)(y, None)

    def condition(self, context: Tensor) -> ConditionedEnergy:
        """``energy(y, index) = f(x[index], y) - <y, z[index]>``.

        ``energy(y, index) = f(x[index], y) - <y, z[index]>``, with ``f``'s own
        conditioning (a PICNN's context path computed once) when it has one.
        """
        z, x = self.unpack(context)
        model = self.model
        inner = energy_at(model, x, differentiable=torch.is_grad_enabled())

        def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
            z_i = z if index is None else z[index]
            return inner(y, index) - (y * z_i).flatten(1).sum(dim=1)

        if not (isinstance(inner, ConditionedEnergy) and inner.hand_written):
            return ConditionedEnergy(energy)

        def value_and_grad(y: Tensor, index: Tensor | None, start: Tensor | None
                           ) -> tuple[Tensor, Tensor]:
            # autograd's order: the tilt's gradient -z arrives first (its operations are
            # recorded last), then f's; a - b is a + (-b) to the bit
            z_i = z if index is None else z[index]
            tilt = accumulate(start, -z_i)
            value, grad = inner.value_and_grad(y, index, start=tilt)
            return value - (y * z_i).flatten(1).sum(dim=1), grad

        return ConditionedEnergy(energy, value_and_grad)

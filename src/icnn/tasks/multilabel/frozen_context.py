"""A PICNN whose x-path is fixed, fed its x-path output once instead of recomputing it.

Argmin training calls the energy many times per mini-batch: every bundle-entropy iteration and,
in the implicit backward pass, once per cutting plane on ``batch * planes`` rows. On BibTeX the
x-path ``ReLU(W x + b)`` (1836 -> 600) is the largest matrix product of each call. When that
path is frozen (fine-tuning a warm-started energy head), :class:`PrecomputedContext` takes the
context ``c = [x, u_1]`` with ``u_1`` computed once per run by :func:`precompute_context`, and
evaluates only the gates and the convex y-path; its values equal the PICNN's exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from icnn.nn.energy import EnergyTraits


class PrecomputedContext(nn.Module):
    """``f(c, y) = picnn(x, y)`` for ``c = [x, u_1]`` (``u_1`` the PICNN's x-path output).

    The wrapped PICNN's x-path parameters are set to ``requires_grad=False``; every other
    parameter trains and is shared with ``picnn`` (the trained PICNN is used as is afterwards).

    Shape:
        Input ``c: (batch, x_dim + x_hidden)``, ``y: (batch, L)`` -> Output ``(batch,)``.
    """

    def __init__(self, picnn: nn.Module) -> None:
        super().__init__()
        if len(picnn.x_layers) != 1:
            raise ValueError(f"expected a PICNN with one x-path layer, got {len(picnn.x_layers)}")
        self.picnn = picnn
        for parameter in picnn.x_layers.parameters():
            parameter.requires_grad_(False)
        self.x_dim = picnn.u_sizes[0]
        self.convex_input_shape = tuple(picnn.convex_input_shape)
        self.context_shape = (picnn.u_sizes[0] + picnn.u_sizes[1],)

    @property
    def has_context(self) -> bool:
        """Always True: the context is the precomputed x-path features."""
        return True

    def energy_traits(self) -> EnergyTraits:
        """The wrapped PICNN's (the context changes only how x is fed)."""
        return self.picnn.energy_traits()

    def condition(self, context: Tensor) -> Callable[[Tensor, Tensor | None], Tensor]:
        """``energy(y, index) = f(context[index], y)`` with the gates computed once.

        ``energy(y, index) = f(context[index], y)`` with the gates computed once (the hook
        :func:`icnn.solvers.conditioning.conditioned_energy` looks for).
        """
        return self.picnn.condition_on_path([context[:, :self.x_dim], context[:, self.x_dim:]])

    def forward(self, context: Tensor, y: Tensor) -> Tensor:
        """The PICNN's energy ``(batch,)`` from precomputed context features."""
        return self.condition(context)(y, None)


@torch.no_grad()
def precompute_context(picnn: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """``[x, u_1(x)]``, ``(N, x_dim + x_hidden)``: the context :class:`PrecomputedContext` takes."""
    chunks = [torch.cat(picnn.context_path(chunk), dim=-1) for chunk in x.split(batch_size)]
    return torch.cat(chunks)

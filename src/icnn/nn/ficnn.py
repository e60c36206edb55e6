"""Fully input convex neural network (paper eq. 2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import ConvexActivation, make_activation
from .affine import AffineLayer
from .base import ConvexModel, check_positive_int, check_sizes, check_strong_convexity
from .conditioned import ConditionedEnergy, accumulate, linear_input_grad
from .constraints import check_constraint
from .energy import EnergyTraits
from .init import (
    check_init,
    init_free_,
    init_nonnegative_,
    init_quadratic_,
    redraw_default_nonnegative_,
)
from .layers import NonNegativeLinear, PSDQuadratic, check_quadratic_rank


class FICNN(ConvexModel):
    r"""Fully input convex network ``f(y)``, equation (2) of Amos et al. (2017).

    .. math::
        z_{i+1} = g_i(W^{(z)}_i z_i + W^{(y)}_i y + b_i), \quad f(y) = z_k + \tfrac{\mu}{2}\|y\|^2

    with ``z_0 = 0``, ``W^(z)_{1:k-1} >= 0`` kept by ``constraint``, convex non-decreasing ``g_i``
    for ``i >= 1`` (``g_0`` only convex) and a linear output layer. The passthrough ``W^(y)_i y``
    enters every layer; all passthrough maps are computed by one fused matrix product.

    Args:
        y_dim: size of the convex input ``y``.
        hidden: widths of the hidden layers; the output layer (width 1) is appended.
        activation: activation of the hidden layers (name, config dict or ConvexActivation).
        first_activation: activation of layer 0 (may be convex only, e.g. ``"abs"``); defaults
            to ``activation``.
        constraint: ``"softplus"`` (default), ``"exp"`` or ``"project"``.
        strong_convexity: ``mu >= 0`` of the added ``(mu/2)||y||^2``.
        init: ``"icnn"`` (Hoedt & Klambauer, 2023) or ``"default"`` (PyTorch's).
        quadratic_rank: ``0 <= R <= y_dim``; with ``R > 0`` every unit's passthrough also gets a convex
            quadratic ``y^T (A_o A_o^T + diag(d_o)) y`` of rank ``R`` plus diagonal
            (:class:`icnn.nn.layers.PSDQuadratic`, the DenseICNN of Korotin et al. 2021); the
            model is then smooth, not piecewise linear, and the output unit's diagonal adds
            ``2 min d`` to its declared strong convexity. Needs a non-decreasing
            ``first_activation``. Default 0: no quadratic terms (the paper's model).
        device (torch.device | str | None): factory argument of the parameters.
        dtype (torch.dtype | None): factory argument of the parameters.

    Shape:
        Input ``y: (batch, y_dim)`` -> Output ``(batch,)``.
    """

    def __init__(
        self, y_dim: int, hidden: Sequence[int] = (64, 64), activation: Any = "relu", *,
        first_activation: Any = None, constraint: str = "softplus",
        strong_convexity: float = 0.0, init: str = "icnn", quadratic_rank: int = 0, device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        y_dim = check_positive_int("y_dim", y_dim)
        hidden = check_sizes("hidden", hidden, allow_empty=True)
        hidden_act = make_activation(activation)
        first_act = make_activation(
            first_activation if first_activation is not None else hidden_act, first_layer=True
        )
        self.config = {
            "y_dim": y_dim, "hidden": list(hidden), "activation": hidden_act.to_config(),
            "first_activation": first_act.to_config(), "constraint": check_constraint(constraint),
            "strong_convexity": check_strong_convexity(strong_convexity), "init": check_init(init),
        }
        quadratic_rank = check_quadratic_rank(quadratic_rank, first_act, n_layers=len(hidden) + 1,
                                              y_dim=y_dim)
        if quadratic_rank:
            self.config["quadratic_rank"] = quadratic_rank
        self.convex_input_shape = (y_dim,)
        self.sizes = (*hidden, 1)
        factory = {"device": device, "dtype": dtype}
        self.passthrough = nn.Linear(y_dim, sum(self.sizes), **factory)
        self.z_layers = nn.ModuleList(
            NonNegativeLinear(n_in, n_out, constraint=constraint, **factory)
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        )
        n_layers = len(self.sizes)
        self.activations = nn.ModuleList(
            [first_act if n_layers > 1 else ConvexActivation("identity")]
            + [make_activation(hidden_act) for _ in range(n_layers - 2)]
            + ([ConvexActivation("identity")] if n_layers > 1 else [])
        )
        self.quadratic = PSDQuadratic(y_dim, sum(self.sizes), quadratic_rank,
                                      constraint=constraint, **factory) if quadratic_rank else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-draw every parameter with the model's ``init``."""
        self._reset_network()
        if self.quadratic is not None:
            init_quadratic_(self.quadratic)

    def _reset_network(self) -> None:
        if self.config["init"] == "default":
            self.passthrough.reset_parameters()
            for layer in self.z_layers:
                redraw_default_nonnegative_(layer)
            return
        bias_slices = self.passthrough.bias.split(self.sizes)
        weight_slices = self.passthrough.weight.split(self.sizes)
        for i, (weight, bias) in enumerate(zip(weight_slices, bias_slices, strict=True)):
            init_free_(weight, bias, scale=1.0 if i == 0 else math.sqrt(0.5))
        for i, layer in enumerate(self.z_layers):
            slope = self.activations[i].params.get("negative_slope", 0.0)
            init_nonnegative_(layer, bias_slices[i + 1], alpha=slope, scale=math.sqrt(0.5))

    def forward(self, y: Tensor) -> Tensor:
        """``f(y)`` for ``y: (batch, y_dim)``, ``(batch,)``."""
        self._check_inputs(None, y)
        return self.condition()(y, None)

    def condition(self, x: None = None) -> ConditionedEnergy:
        """``energy(y, index) = f(y)`` with the constrained weights read once.

        ``energy(y, index) = f(y)`` with the constrained weights read once (their
        parametrisation is evaluated now, not at every solver iteration); ``index`` is ignored.
        Its :meth:`~icnn.nn.conditioned.ConditionedEnergy.value_and_grad` runs a hand-written
        backward pass (autograd's to the bit) unless the model has quadratic terms or an
        activation that declares no backward.
        """
        weight, bias = self.passthrough.weight, self.passthrough.bias
        z_weights = [layer.weight for layer in self.z_layers]
        # the modules' forward directly: no nn.Module call machinery per evaluation
        activations = [activation.forward for activation in self.activations]
        sizes = self.sizes
        quadratic = None if self.quadratic is None else self.quadratic.bind()

        def forward_pass(y: Tensor, tape: list | None = None) -> Tensor:
            """``f(y)``; with a ``tape``, each layer's (pre-activation, output) appended."""
            passthrough = F.linear(y, weight, bias)
            if quadratic is not None:
                passthrough = passthrough + quadratic(y)
            passthrough = passthrough.split(sizes, dim=-1)
            pre = passthrough[0]
            z = activations[0](pre)
            if tape is not None:
                tape.append((pre, z))
            for z_weight, activation, skip in zip(z_weights, activations[1:], passthrough[1:],
                                                  strict=True):
                pre = F.linear(z, z_weight) + skip
                z = activation(pre)
                if tape is not None:
                    tape.append((pre, z))
            return z.squeeze(-1) + self.quadratic_term(y)

        def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
            return forward_pass(y)

        if quadratic is not None or not self.hand_written_backward():
            return ConditionedEnergy(energy)
        modules = list(self.activations)

        def value_and_grad(y: Tensor, index: Tensor | None, start: Tensor | None
                           ) -> tuple[Tensor, Tensor]:
            tape: list = []
            value = forward_pass(y, tape)
            # autograd's backward: the quadratic term's gradient arrives first, then the
            # passthrough's, whose gradient is every layer's pre-activation gradient, joined
            grad = self.start_gradient(y, start)
            upstream = torch.ones_like(tape[-1][1])
            d_pres = [upstream] * len(modules)
            for i in range(len(modules) - 1, -1, -1):
                pre, out = tape[i]
                d_pres[i] = modules[i].backward(upstream, pre, out)
                if i > 0:
                    upstream = linear_input_grad(d_pres[i], z_weights[i - 1], tape[i - 1][1])
            return value, accumulate(grad, linear_input_grad(torch.cat(d_pres, dim=-1), weight, y))

        return ConditionedEnergy(energy, value_and_grad)

    def energy_traits(self) -> EnergyTraits:
        """The model's traits, with its quadratic terms.

        As :meth:`ConvexModel.energy_traits`, with the quadratic terms' curvature and
        strong convexity (see :meth:`icnn.nn.layers.PSDQuadratic.traits`) when present.
        """
        traits = super().energy_traits()
        return traits if self.quadratic is None else self.quadratic.traits(traits, -1)

    def affine_layers(self, x: Tensor | None = None) -> list[AffineLayer]:
        """The y-path as affine maps (see :class:`icnn.nn.affine.AffineLayer`), batch dim 1.

        Raises:
            ValueError: the model has quadratic terms (it is not piecewise affine).
        """
        if self.quadratic is not None:
            raise ValueError("a model with quadratic_rank > 0 has no affine layers (its units "
                             "are quadratic in y)")
        weights = self.passthrough.weight.split(self.sizes)
        biases = self.passthrough.bias.split(self.sizes)
        layers = []
        for i, activation in enumerate(self.activations):
            z_weight = None if i == 0 else self.z_layers[i - 1].weight.unsqueeze(0)
            layers.append(AffineLayer(z_weight, weights[i].unsqueeze(0), biases[i].unsqueeze(0),
                                      activation))
        return layers

"""Partially input convex neural network (paper eq. 3)."""

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


class PICNN(ConvexModel):
    r"""Partially input convex network ``f(x, y)``, convex in ``y``; equation (3).

    .. math::
        u_{i+1} &= \tilde g_i(\tilde W_i u_i + \tilde b_i), \qquad u_0 = x \\
        z_{i+1} &= g_i\Big(W^{(z)}_i\big(z_i \circ [W^{(zu)}_i u_i + b^{(z)}_i]_+\big)
                 + W^{(y)}_i\big(y \circ (W^{(yu)}_i u_i + b^{(y)}_i)\big)
                 + W^{(u)}_i u_i + b_i\Big) \\
        f(x, y) &= z_k + \tfrac{\mu}{2}\|y\|^2

    Only ``W^(z) >= 0`` is constrained (the ReLU gate keeps the multiplier of ``z_i``
    non-negative); the x-path and all other weights are free. The three maps out of ``u_i``
    (``W^(zu)``, ``W^(yu)``, ``W^(u)``) are computed by one fused matrix product per layer.

    Args:
        x_dim: size of the context ``x``.
        y_dim: size of the convex input ``y``.
        hidden: widths of the y-path hidden layers; the output layer (width 1) is appended.
        x_hidden: widths of the x-path layers ``u_1..u_{k-1}``; defaults to ``hidden``.
        activation: y-path activation ``g_i`` (convex, non-decreasing).
        first_activation: activation of y-layer 0 (may be convex only); defaults to ``activation``.
        x_activation: x-path activation ``g~_i`` (any ``torch.nn`` activation name, e.g. "relu").
        constraint: as :class:`icnn.FICNN`.
        strong_convexity: as :class:`icnn.FICNN`.
        init: as :class:`icnn.FICNN`.
        quadratic_rank: as :class:`icnn.FICNN`: per-unit PSD quadratics of ``y`` (rank ``<= y_dim``
            plus diagonal, not gated by ``x``) added to every layer's pre-activation; default 0.

    Shape:
        Input ``x: (batch, x_dim)``, ``y: (batch, y_dim)`` -> Output ``(batch,)``.
    """

    def __init__(
        self, x_dim: int, y_dim: int, hidden: Sequence[int] = (64, 64),
        x_hidden: Sequence[int] | None = None, activation: Any = "relu", *,
        first_activation: Any = None, x_activation: str = "relu", constraint: str = "softplus",
        strong_convexity: float = 0.0, init: str = "icnn", quadratic_rank: int = 0, device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        x_dim = check_positive_int("x_dim", x_dim)
        y_dim = check_positive_int("y_dim", y_dim)
        hidden = check_sizes("hidden", hidden, allow_empty=True)
        x_hidden = hidden if x_hidden is None else check_sizes("x_hidden", x_hidden,
                                                               allow_empty=True)
        if len(x_hidden) != len(hidden):
            raise ValueError(
                f"x_hidden must have one width per y-path hidden layer ({len(hidden)}), "
                f"got {len(x_hidden)}: {list(x_hidden)}"
            )
        hidden_act = make_activation(activation)
        first_act = make_activation(
            first_activation if first_activation is not None else hidden_act, first_layer=True
        )
        self.config = {
            "x_dim": x_dim, "y_dim": y_dim, "hidden": list(hidden), "x_hidden": list(x_hidden),
            "activation": hidden_act.to_config(), "first_activation": first_act.to_config(),
            "x_activation": _check_x_activation(x_activation),
            "constraint": check_constraint(constraint),
            "strong_convexity": check_strong_convexity(strong_convexity), "init": check_init(init),
        }
        quadratic_rank = check_quadratic_rank(quadratic_rank, first_act, n_layers=len(hidden) + 1,
                                              y_dim=y_dim)
        if quadratic_rank:
            self.config["quadratic_rank"] = quadratic_rank
        self.convex_input_shape = (y_dim,)
        self.context_shape = (x_dim,)
        self.sizes = (*hidden, 1)
        self.u_sizes = (x_dim, *x_hidden)
        factory = {"device": device, "dtype": dtype}
        self.x_layers = nn.ModuleList(
            nn.Linear(n_in, n_out, **factory)
            for n_in, n_out in zip(self.u_sizes[:-1], self.u_sizes[1:], strict=True)
        )
        # per layer i: [W^(zu) (i > 0) | W^(yu) | W^(u)] u_i, with biases b^(z), b^(y), b_i
        self.split_sizes = [
            ((self.sizes[i - 1],) if i > 0 else ()) + (y_dim, self.sizes[i])
            for i in range(len(self.sizes))
        ]
        self.u_maps = nn.ModuleList(
            nn.Linear(self.u_sizes[i], sum(self.split_sizes[i]), **factory)
            for i in range(len(self.sizes))
        )
        self.y_layers = nn.ModuleList(
            nn.Linear(y_dim, n_out, bias=False, **factory) for n_out in self.sizes
        )
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
        default = self.config["init"] == "default"
        for layer in (*self.x_layers, *self.u_maps, *self.y_layers):
            if default:
                layer.reset_parameters()
            else:
                init_free_(layer.weight, layer.bias)
        if not default:
            for i, u_map in enumerate(self.u_maps):
                y_gate_bias = u_map.bias.split(self.split_sizes[i])[-2]
                y_gate_bias.fill_(1.0)  # gates start near 1: y passes through, as in Prop. 2
                if i > 0:
                    u_map.bias.split(self.split_sizes[i])[0].fill_(1.0)
                    u_map.weight.split(self.split_sizes[i])[0].mul_(0.1)
                u_map.weight.split(self.split_sizes[i])[-2].mul_(0.1)
            for i, layer in enumerate(self.y_layers):
                layer.weight.mul_(1.0 if i == 0 else math.sqrt(0.5))
        for i, layer in enumerate(self.z_layers):
            if default:
                redraw_default_nonnegative_(layer)
            else:
                slope = self.activations[i].params.get("negative_slope", 0.0)
                bias = self.u_maps[i + 1].bias.split(self.split_sizes[i + 1])[-1]
                init_nonnegative_(layer, bias, alpha=slope, scale=math.sqrt(0.5))

    def context_path(self, x: Tensor) -> list[Tensor]:
        """The x-path activations ``[u_0 = x, u_1, ..., u_{k-1}]``."""
        u = [x]
        act = _X_ACTIVATIONS[self.config["x_activation"]]
        for layer in self.x_layers:
            u.append(act(layer(u[-1])))
        return u

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``f(x, y)`` for ``x: (batch, x_dim)``, ``y: (batch, y_dim)``, ``(batch,)``."""
        self._check_inputs(x, y)
        return self.condition(x)(y, None)

    def condition(self, x: Tensor) -> ConditionedEnergy:
        """``energy(y, index) = f(x[index], y)`` with the x-path computed now, once.

        Solvers evaluate the energy many times at one ``x``; only the y-path runs per call.
        ``index`` (a 1-D long tensor, or None for all rows) picks the examples ``y`` belongs to.
        """
        return self.condition_on_path(self.context_path(x))

    def condition_on_path(self, u: list[Tensor]) -> ConditionedEnergy:
        """:meth:`condition` from given x-path activations ``u = [u_0, ..., u_{k-1}]``.

        Computes the gates ``[W^(zu) u_i + b^(z)]_+``, ``W^(yu) u_i + b^(y)`` and the terms
        ``W^(u) u_i + b_i`` of equation (3), and reads the constrained weights once. Its
        :meth:`~icnn.nn.conditioned.ConditionedEnergy.value_and_grad` runs a hand-written
        backward pass (autograd's to the bit) unless the model has quadratic terms or an
        activation that declares no backward.
        """
        y_gates, biases, z_gates = [], [], []
        for i in range(len(self.activations)):
            parts = self.u_maps[i](u[i]).split(self.split_sizes[i], dim=-1)
            y_gates.append(parts[-2])
            biases.append(parts[-1])
            z_gates.append(F.relu(parts[0]) if i > 0 else None)
        y_weights = [layer.weight for layer in self.y_layers]
        z_weights = [layer.weight for layer in self.z_layers]
        # the modules' forward directly: no nn.Module call machinery per evaluation
        activations = [activation.forward for activation in self.activations]
        quadratic = None if self.quadratic is None else self.quadratic.bind()
        sizes = self.sizes

        def forward_pass(y: Tensor, index: Tensor | None, tape: list | None = None) -> Tensor:
            """``f(x[index], y)``, each layer's intermediates appended to ``tape`` if given.

            Per layer: (y gate, y input, z gate, z input, pre-activation, output).
            """
            z = None
            quadratics = None if quadratic is None else quadratic(y).split(sizes, dim=-1)
            for i, activation in enumerate(activations):
                y_gate = _pick(y_gates[i], index)
                y_input = y * y_gate
                pre = F.linear(y_input, y_weights[i]) + _pick(biases[i], index)
                if quadratics is not None:
                    pre = pre + quadratics[i]
                z_gate = z_input = None
                if i > 0:
                    z_gate = _pick(z_gates[i], index)
                    z_input = z * z_gate
                    pre = pre + F.linear(z_input, z_weights[i - 1])
                z = activation(pre)
                if tape is not None:
                    tape.append((y_gate, y_input, z_gate, z_input, pre, z))
            return z.squeeze(-1) + self.quadratic_term(y)

        def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
            return forward_pass(y, index)

        if quadratic is not None or not self.hand_written_backward():
            return ConditionedEnergy(energy)
        modules = list(self.activations)

        def value_and_grad(y: Tensor, index: Tensor | None, start: Tensor | None
                           ) -> tuple[Tensor, Tensor]:
            tape: list = []
            value = forward_pass(y, index, tape)
            # autograd's backward: the quadratic term's gradient arrives first, then layer
            # k-1's, ..., layer 0's (the order their operations were recorded, reversed)
            grad = self.start_gradient(y, start)
            upstream = torch.ones_like(tape[-1][-1])
            for i in range(len(modules) - 1, -1, -1):
                y_gate, y_input, z_gate, z_input, pre, out = tape[i]
                d_pre = modules[i].backward(upstream, pre, out)
                grad = accumulate(grad, linear_input_grad(d_pre, y_weights[i], y_input) * y_gate)
                if i > 0:
                    upstream = linear_input_grad(d_pre, z_weights[i - 1], z_input) * z_gate
            return value, grad

        return ConditionedEnergy(energy, value_and_grad)

    def energy_traits(self) -> EnergyTraits:
        """The model's traits, with its quadratic terms.

        As :meth:`ConvexModel.energy_traits`, with the quadratic terms' curvature and
        strong convexity (see :meth:`icnn.nn.layers.PSDQuadratic.traits`) when present.
        """
        traits = super().energy_traits()
        return traits if self.quadratic is None else self.quadratic.traits(traits, -1)

    def affine_layers(self, x: Tensor) -> list[AffineLayer]:
        """The y-path for the given contexts as affine maps, batch dim ``B = x.shape[0]``.

        Raises:
            ValueError: the model has quadratic terms (it is not piecewise affine).
        """
        if self.quadratic is not None:
            raise ValueError("a model with quadratic_rank > 0 has no affine layers (its units "
                             "are quadratic in y)")
        self._check_inputs(x, x.new_zeros(x.shape[0], *self.convex_input_shape))
        u = self.context_path(x)
        layers = []
        for i, activation in enumerate(self.activations):
            parts = self.u_maps[i](u[i]).split(self.split_sizes[i], dim=-1)
            y_weight = self.y_layers[i].weight.unsqueeze(0) * parts[-2].unsqueeze(1)
            z_weight = None
            if i > 0:
                z_weight = self.z_layers[i - 1].weight.unsqueeze(0) * F.relu(parts[0]).unsqueeze(1)
            layers.append(AffineLayer(z_weight, y_weight, parts[-1], activation))
        return layers


def _pick(t: Tensor, index: Tensor | None) -> Tensor:
    return t if index is None else t[index]


_X_ACTIVATIONS = {
    "relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "elu": F.elu,
    "softplus": F.softplus, "leaky_relu": F.leaky_relu, "gelu": F.gelu, "silu": F.silu,
    "identity": lambda t: t,
}


def _check_x_activation(name: str) -> str:
    if name not in _X_ACTIVATIONS:
        raise ValueError(f"x_activation must be one of {sorted(_X_ACTIVATIONS)}, got {name!r}")
    return name

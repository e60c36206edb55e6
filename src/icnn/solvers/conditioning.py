"""Fast energies for iterative solvers: the parts of ``f(x, y)`` that do not depend on ``y``
computed once per solve.

A PICNN spends most of a forward pass on its context path (``x`` of BibTeX size: 1836 inputs),
which is the same at every solver iteration. :func:`conditioned_energy` evaluates the x-path and
the gates ``W^(zu) u_i + b^(z)``, ``W^(yu) u_i + b^(y)``, ``W^(u) u_i + b_i`` of equation (3) once,
and returns ``energy(y, index)`` that runs only the y-path, on the examples in ``index``.
For an FICNN the constrained weights (a parametrisation evaluated at every forward) are read once.

A model may provide its own ``condition(x) -> Callable[[Tensor, Tensor | None], Tensor]``; it is
used first. Otherwise only the exact classes :class:`icnn.FICNN` and :class:`icnn.PICNN` are
conditioned here (the y-path below mirrors their ``forward``; tests check they agree), and every
other module is called as is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.ficnn import FICNN
from ..nn.picnn import PICNN

Energy = Callable[[Tensor, Tensor | None], Tensor]


def conditioned_energy(model: nn.Module, x: Tensor | None, *, differentiable: bool = False
                       ) -> Energy | None:
    """``energy(y, index) = f(x[index], y)`` with the y-independent work done now, or None.

    Args:
        model: the energy module.
        x: ``(batch, *context)`` or None.
        differentiable: keep the precomputed parts in the autograd graph (unrolled learning);
            otherwise they are computed without gradients to the weights and ``x``.
    """
    condition = getattr(model, "condition", None)
    if callable(condition):
        return condition(x)
    grad_mode = contextlib.nullcontext() if differentiable else torch.no_grad()
    if type(model) is PICNN and x is not None:
        with grad_mode:
            return _picnn_energy(model, x)
    if type(model) is FICNN and x is None:
        with grad_mode:
            return _ficnn_energy(model)
    return None


def _pick(t: Tensor, index: Tensor | None) -> Tensor:
    return t if index is None else t[index]


def _picnn_energy(model: PICNN, x: Tensor) -> Energy:
    u = model.context_path(x)
    y_gates, biases, z_gates = [], [], []
    for i in range(len(model.activations)):
        parts = model.u_maps[i](u[i]).split(model.split_sizes[i], dim=-1)
        y_gates.append(parts[-2])
        biases.append(parts[-1])
        z_gates.append(F.relu(parts[0]) if i > 0 else None)
    y_weights = [layer.weight * 1 for layer in model.y_layers]
    z_weights = [layer.weight * 1 for layer in model.z_layers]
    # the modules' forward directly: no nn.Module call machinery per evaluation
    activations = [activation.forward for activation in model.activations]
    mu = float(model.config.get("strong_convexity", 0.0))

    def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
        z = None
        for i, activation in enumerate(activations):
            pre = F.linear(y * _pick(y_gates[i], index), y_weights[i]) + _pick(biases[i], index)
            if i > 0:
                pre = pre + F.linear(z * _pick(z_gates[i], index), z_weights[i - 1])
            z = activation(pre)
        return z.squeeze(-1) + _quadratic(y, mu)

    return energy


def _ficnn_energy(model: FICNN) -> Energy:
    weight, bias = model.passthrough.weight * 1, model.passthrough.bias * 1
    z_weights = [layer.weight * 1 for layer in model.z_layers]
    # the modules' forward directly: no nn.Module call machinery per evaluation
    activations = [activation.forward for activation in model.activations]
    sizes = model.sizes
    mu = float(model.config.get("strong_convexity", 0.0))

    def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
        passthrough = F.linear(y, weight, bias).split(sizes, dim=-1)
        z = activations[0](passthrough[0])
        for z_weight, activation, skip in zip(z_weights, activations[1:], passthrough[1:],
                                              strict=True):
            z = activation(F.linear(z, z_weight) + skip)
        return z.squeeze(-1) + _quadratic(y, mu)

    return energy


def _quadratic(y: Tensor, mu: float) -> Tensor:
    if mu == 0.0:
        return y.new_zeros(y.shape[0])
    return 0.5 * mu * y.flatten(1).square().sum(dim=1)

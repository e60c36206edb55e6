"""Fast energies for iterative solvers.

The parts of ``f(x, y)`` that do not depend on ``y`` computed once per solve.

A PICNN spends most of a forward pass on its context path (``x`` of BibTeX size: 1836 inputs),
which is the same at every solver iteration. :func:`conditioned_energy` evaluates the x-path and
the gates ``W^(zu) u_i + b^(z)``, ``W^(yu) u_i + b^(y)``, ``W^(u) u_i + b_i`` of equation (3) once,
and returns ``energy(y, index)`` that runs only the y-path, on the examples in ``index``.
For an FICNN the constrained weights (a parametrisation evaluated at every forward) are read once.

The models provide it as ``condition(x) -> energy(y, index)`` (:class:`icnn.FICNN`,
:class:`icnn.PICNN`, :class:`icnn.ConvPICNN` — their ``forward`` is that very energy); any
other module is called as is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..nn.input_checks import validation

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
    if not _defines_own_condition(type(model)):
        return None
    grad_mode = contextlib.nullcontext() if differentiable else torch.no_grad()
    with grad_mode:
        return model.condition(x)


def energy_at(model: nn.Module, x: Tensor | None, *, differentiable: bool = False) -> Energy:
    """``energy(y, index) = f(x[index], y)``: :func:`conditioned_energy`, else the model called.

    What wrappers of an energy (a barrier, a tilt, a weight) build on: the model's own
    conditioning when it has one written for its ``forward``, otherwise ``model(x[index], y)``
    (``model(y)`` without a context) with input validation off.
    """
    conditioned = conditioned_energy(model, x, differentiable=differentiable)
    if conditioned is not None:
        return conditioned

    def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
        x_i = x if x is None or index is None else x[index]
        with validation(False):
            return model(y) if x_i is None else model(x_i, y)

    return energy


def _defines_own_condition(cls: type) -> bool:
    """True when ``cls`` has a ``condition`` written for its own ``forward``.

    A subclass that overrides ``forward`` but inherits ``condition`` is called as is, never conditioned.
    """
    def owner(name: str) -> type | None:
        return next((k for k in cls.__mro__ if name in vars(k)), None)

    condition_owner, forward_owner = owner("condition"), owner("forward")
    return condition_owner is not None and issubclass(condition_owner, forward_owner)

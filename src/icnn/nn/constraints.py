"""How the non-negativity of ``W^(z)`` is kept.

Three ways, chosen per model with ``constraint=``:

- ``"softplus"`` (default): ``W = softplus(V)`` through :mod:`torch.nn.utils.parametrize`. Any
  optimiser step on the raw ``V`` leaves ``W`` non-negative, so a plain training loop is safe.
- ``"exp"``: ``W = exp(V)``, the same guarantee with a multiplicative geometry.
- ``"project"``: the paper's method. ``W`` is a plain parameter; call ``model.project_()`` after
  every optimiser step to clamp negative entries to zero. Until then the model may be non-convex
  (:func:`icnn.check_convexity` reports it and :func:`icnn.load` refuses such a checkpoint).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

CONSTRAINTS = ("softplus", "exp", "project")

# Smallest weight the invertible parametrisations represent when asked for 0 (softplus^-1(0) = -inf).
_TINY = 1e-6


class SoftplusNonNegative(nn.Module):
    """Parametrisation ``W = softplus(V)``; ``right_inverse`` maps a non-negative ``W`` back."""

    def forward(self, raw: Tensor) -> Tensor:
        """``W = softplus(V)``, elementwise."""
        return F.softplus(raw)

    def right_inverse(self, weight: Tensor) -> Tensor:
        """``V = softplus^{-1}(W)`` (``W`` clamped to a tiny positive value first)."""
        weight = weight.clamp_min(_TINY)
        # softplus^-1(w) = log(expm1(w)) = w + log(-expm1(-w)), stable for large w
        return weight + torch.log(-torch.expm1(-weight))


class ExpNonNegative(nn.Module):
    """Parametrisation ``W = exp(V)``."""

    def forward(self, raw: Tensor) -> Tensor:
        """``W = exp(V)``, elementwise."""
        return torch.exp(raw)

    def right_inverse(self, weight: Tensor) -> Tensor:
        """``V = log(W)`` (``W`` clamped to a tiny positive value first)."""
        return torch.log(weight.clamp_min(_TINY))


def check_constraint(constraint: str) -> str:
    """Validate a constraint name."""
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {CONSTRAINTS}, got {constraint!r}")
    return constraint


def constrain_nonnegative_(module: nn.Module, constraint: str, name: str = "weight") -> None:
    """Make ``module.<name>`` non-negative with the chosen method (in place).

    The current values are first made non-negative (``|W|``), so whatever initialisation ran
    before is kept up to sign.
    """
    check_constraint(constraint)
    with torch.no_grad():
        getattr(module, name).abs_()
    if constraint == "softplus":
        parametrize.register_parametrization(module, name, SoftplusNonNegative())
    elif constraint == "exp":
        parametrize.register_parametrization(module, name, ExpNonNegative())


@torch.no_grad()
def set_nonnegative_(module: nn.Module, value: Tensor, name: str = "weight") -> None:
    """Assign a non-negative value to a constrained weight, whatever the constraint."""
    if (value < 0).any():
        raise ValueError(f"constrained weight {name!r} must be non-negative, got min {value.min()}")
    if parametrize.is_parametrized(module, name):
        setattr(module, name, value)
    else:
        getattr(module, name).copy_(value)


def raw_weight(module: nn.Module, name: str = "weight") -> Tensor:
    """The trainable tensor behind a constrained weight (the raw ``V`` or ``W`` itself)."""
    if parametrize.is_parametrized(module, name):
        return module.parametrizations[name].original
    return getattr(module, name)


@torch.no_grad()
def project_(module: nn.Module, name: str = "weight") -> None:
    """Clamp an unparametrised constrained weight to ``>= 0`` (no-op for parametrised ones)."""
    if not parametrize.is_parametrized(module, name):
        getattr(module, name).clamp_(min=0.0)


def inverse_softplus(value: float) -> float:
    """``softplus^-1(value)`` for scalars."""
    return value + math.log(-math.expm1(-value))


@torch.no_grad()
def project_constrained_(module: nn.Module) -> nn.Module:
    """Project every constrained layer anywhere in ``module``'s tree (in place); returns it.

    Calls ``.project_()`` on each submodule that is a :data:`icnn.nn.layers.CONSTRAINED_LAYERS`
    instance (``NonNegativeLinear``, ``NonNegativeConv2d``): projected weights are clamped to
    ``>= 0``, softplus/exp-parametrised ones are left alone. Reading the tree rather than a
    ``config`` means a wrapper holding a projected model is projected too.
    """
    from .layers import CONSTRAINED_LAYERS  # layers build on this module

    for layer in module.modules():
        if isinstance(layer, CONSTRAINED_LAYERS):
            layer.project_()
    return module

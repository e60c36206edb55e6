"""Initialisation of ICNN weights.

``"icnn"`` (default) is the principled initialisation of Hoedt & Klambauer (NeurIPS 2023,
"Principled weight initialisation for input-convex neural networks"). Non-negative weights cannot
be centred, so the usual variance-preserving schemes make pre-activations drift upwards layer by
layer. Their analysis of signal propagation with non-centred weights gives, for a layer with fan-in
``n`` after a (leaky) ReLU with slope ``alpha`` and a target correlation fixed point ``rho``:

- weights log-normal with squared mean ``rho / f_c(n)`` and variance ``2 (1 - rho) / ((1 + alpha^2) n)``,
  where ``f_c(n) = n (pi - n + (n - 1) m) / (2 pi)`` and ``m = sqrt(1 - rho^2) + rho acos(-rho)``;
- a bias ``-n sqrt(mean_w^2 sigma^2 / (2 pi))`` that re-centres the pre-activation.

Unconstrained weights (passthrough, x-path) get a LeCun-normal draw. Where a layer sums a
constrained and a passthrough term, each is scaled to carry half of the target variance.

``"default"`` keeps PyTorch's own ``nn.Linear`` / ``nn.Conv2d`` initialisation, made non-negative by
the constraint; it is the baseline of ``benchmarks/init_comparison.py``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .constraints import set_nonnegative_

INITS = ("icnn", "default")


def check_init(init: str) -> str:
    """``init`` checked to be one of :data:`INITS`.

    Raises:
        ValueError: an unknown initialisation name.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def convex_weight_moments(fan_in: int, rho: float = 0.5, alpha: float = 0.0) -> tuple[float, float]:
    """``(mean^2, variance)`` of the non-negative weights (Hoedt & Klambauer, 2023)."""
    mix = math.sqrt(1.0 - rho**2) + rho * math.acos(-rho)
    corr = fan_in * (math.pi - fan_in + (fan_in - 1) * mix) / (2.0 * math.pi)
    mean_sq = rho / corr
    variance = 2.0 / (1.0 + alpha**2) * (1.0 - rho) / fan_in
    return mean_sq, variance


def fan_in_of(weight: torch.Tensor) -> int:
    """Fan-in of a weight ``(out, *in_shape)``: the number of entries of one output row."""
    return int(weight[0].numel())


@torch.no_grad()
def init_nonnegative_(
    layer: nn.Module, bias: torch.Tensor | None, *, rho: float = 0.5, alpha: float = 0.0,
    scale: float = 1.0,
) -> None:
    """Draw ``layer.weight`` (constrained) log-normally and set the centring ``bias`` in place.

    Args:
        layer: a constrained layer (``NonNegativeLinear`` / ``NonNegativeConv2d``).
        bias: the bias of the sum this layer feeds, or None.
        rho: target correlation of the activations before the layer.
        alpha: leaky-ReLU slope of the activation before the layer.
        scale: multiplies the standard deviation (``sqrt(0.5)`` when sharing the variance).
    """
    weight = layer.weight
    fan_in = fan_in_of(weight)
    mean_sq, variance = convex_weight_moments(fan_in, rho, alpha)
    variance *= scale**2
    mean_sq *= scale**2
    second_moment = mean_sq + variance
    log_mean = math.log(mean_sq) - 0.5 * math.log(second_moment)
    log_std = math.sqrt(math.log(second_moment) - math.log(mean_sq))
    sample = torch.empty_like(weight).normal_(log_mean, log_std).exp_()
    set_nonnegative_(layer, sample)
    if bias is not None:
        bias.add_(-fan_in * math.sqrt(mean_sq / (2.0 * math.pi)))


@torch.no_grad()
def init_free_(weight: torch.Tensor, bias: torch.Tensor | None, *, scale: float = 1.0) -> None:
    """LeCun-normal weights (variance ``scale^2 / fan_in``) and zero bias."""
    weight.normal_(0.0, scale / math.sqrt(fan_in_of(weight)))
    if bias is not None:
        bias.zero_()


@torch.no_grad()
def redraw_default_nonnegative_(layer: nn.Module) -> None:
    """PyTorch's default draw made non-negative (the 'default' baseline).

    PyTorch's default draw (Kaiming-uniform, ``a = sqrt(5)``) made non-negative by ``|W|``,
    as the paper's code did; the ``init="default"`` baseline.
    """
    sample = nn.init.kaiming_uniform_(torch.empty_like(layer.weight), a=math.sqrt(5)).abs_()
    set_nonnegative_(layer, sample)


@torch.no_grad()
def init_quadratic_(quadratic: nn.Module) -> None:
    """Quadratic skip terms (:class:`icnn.nn.layers.PSDQuadratic`).

    Factors normal with variance ``0.5 / (in_features * rank)`` (a unit's term has mean ``||y||^2 / (2
    in_features)``, half a LeCun layer's variance) and a zero diagonal (the constraint's smallest value).
    """
    std = math.sqrt(0.5 / (quadratic.in_features * quadratic.rank))
    quadratic.factors.normal_(0.0, std)
    set_nonnegative_(quadratic.diagonal, torch.zeros_like(quadratic.diagonal.weight))

r"""Scores of a fitted transport map against a known one (Korotin et al., 2021, section 4).

With test points ``x ~ P``, the true map ``T*(x)`` and a fitted ``T̂``:

- **L2-UVP** (forward) ``= 100 · E‖T̂(x) − T*(x)‖² / Var(Q)``; the inverse direction compares
  ``T̂⁻¹(T*(x))`` with ``x`` and divides by ``Var(P)``;
- **cos** ``= E⟨T*(x) − x, T̂(x) − x⟩ / sqrt(2·cost · E‖T̂(x) − x‖²)`` with
  ``cost = ½ E‖x − T*(x)‖²``;
- the **W2² estimate** of a map ``E‖T̂(x) − x‖²`` over source samples (no truth needed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Map = Callable[[Tensor], Tensor]

__all__ = ["GroundTruth", "cos_similarity", "l2_uvp", "transport_metrics", "w2_squared"]


@dataclass(frozen=True)
class GroundTruth:
    """The true map on test points, and the constants the scores divide by.

    Attributes:
        source: ``(n, D)`` test points of P.
        mapped: ``(n, D)`` their images ``T*(source)``, distributed as Q.
        source_var: ``Var(P)``, the sum over coordinates of P's variances.
        target_var: ``Var(Q)``, likewise for Q.
        cost: ``½ E‖x − T*(x)‖²``, half the squared W2 distance.
    """

    source: Tensor
    mapped: Tensor
    source_var: float
    target_var: float
    cost: float

    def __post_init__(self) -> None:
        if self.source.ndim != 2 or self.source.shape != self.mapped.shape:
            raise ValueError(f"expected test points and their images of one shape (n, D), got "
                             f"{tuple(self.source.shape)} and {tuple(self.mapped.shape)}")
        for name in ("source_var", "target_var", "cost"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"expected a finite positive {name}, got {value}")


def _check_same(a: Tensor, b: Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"expected {what} of shape {tuple(b.shape)}, got {tuple(a.shape)}")


def l2_uvp(predicted: Tensor, true: Tensor, variance: float) -> float:
    """``100 · mean ‖predicted − true‖² / variance`` (percent).

    Args:
        predicted: ``(n, D)`` images under the fitted map.
        true: ``(n, D)`` images under the true map.
        variance: the variance of the true images' distribution (sum over coordinates).

    Raises:
        ValueError: shapes differ or ``variance`` is not positive.
    """
    _check_same(predicted, true, "predicted points")
    if not variance > 0:
        raise ValueError(f"expected a positive variance, got {variance}")
    error = (predicted.detach() - true.detach()).double().square().sum(dim=1).mean()
    return float(100.0 * error / variance)


def cos_similarity(source: Tensor, predicted: Tensor, true: Tensor, cost: float) -> float:
    """``E⟨T*(x) − x, T̂(x) − x⟩ / sqrt(2·cost · E‖T̂(x) − x‖²)``, 1 for the true map.

    Args:
        source: ``(n, D)`` points x.
        predicted: ``(n, D)`` ``T̂(x)``.
        true: ``(n, D)`` ``T*(x)``.
        cost: ``½ E‖x − T*(x)‖²``.

    Raises:
        ValueError: shapes differ, ``cost`` not positive, or ``T̂`` is the identity on the points.
    """
    _check_same(predicted, source, "predicted points")
    _check_same(true, source, "true images")
    if not cost > 0:
        raise ValueError(f"expected a positive cost, got {cost}")
    x, fitted, exact = (t.detach().double() for t in (source, predicted, true))
    moved = (fitted - x).square().sum(dim=1).mean()
    if not moved > 0:
        raise ValueError("expected a fitted map that moves the points, got the identity (cos undefined)")
    inner = ((exact - x) * (fitted - x)).sum(dim=1).mean()
    return float(inner / torch.sqrt(2.0 * cost * moved))


def w2_squared(source: Tensor, predicted: Tensor) -> float:
    """``mean ‖T̂(x) − x‖²``: the transport cost of the fitted map, an estimate of W2².

    Raises:
        ValueError: shapes differ.
    """
    _check_same(predicted, source, "predicted points")
    return float((predicted.detach() - source.detach()).double().square().sum(dim=1).mean())


def transport_metrics(forward: Map, inverse: Map | None, truth: GroundTruth) -> dict[str, float]:
    """L2-UVP forward (and inverse), cos and the map's W2² on the test points of ``truth``.

    Args:
        forward: ``T̂``, ``(n, D) -> (n, D)``.
        inverse: ``T̂⁻¹`` or None (no inverse scores).
        truth: the test points and constants.

    Returns:
        ``{"l2_uvp_forward", "cos_forward", "w2_squared", "w2_squared_true"}`` and, with an
        inverse, ``{"l2_uvp_inverse", "cos_inverse"}`` (percent for L2-UVP).

    Raises:
        ValueError: a map returns the wrong shape or non-finite values.
    """
    pushed = _apply(forward, truth.source, "forward")
    scores = {
        "l2_uvp_forward": l2_uvp(pushed, truth.mapped, truth.target_var),
        "cos_forward": cos_similarity(truth.source, pushed, truth.mapped, truth.cost),
        "w2_squared": w2_squared(truth.source, pushed),
        "w2_squared_true": 2.0 * truth.cost,
    }
    if inverse is not None:
        pulled = _apply(inverse, truth.mapped, "inverse")
        scores["l2_uvp_inverse"] = l2_uvp(pulled, truth.source, truth.source_var)
        scores["cos_inverse"] = cos_similarity(truth.mapped, pulled, truth.source, truth.cost)
    return scores


def _apply(transport: Map, points: Tensor, name: str) -> Tensor:
    image = transport(points)
    if not isinstance(image, Tensor) or image.shape != points.shape:
        got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"expected the {name} map to return shape {tuple(points.shape)}, got {got}")
    if not bool(torch.isfinite(image).all()):
        raise ValueError(f"expected finite images under the {name} map, got NaN or inf")
    return image.detach()

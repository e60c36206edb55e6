"""The averaged recipe: a bundle-entropy ICNN's completion averaged with a closed-form baseline's.

``ŷ = λ argmin_y [E(x, y) - H(y)] + (1 - λ) g(x)``, where ``E`` is the paper's conv PICNN
trained by bundle entropy (on its own, not anchored), ``g`` the closed-form baseline best by
cross-validation (ridge, kernel ridge or their blend) and ``λ`` in :data:`BLEND_WEIGHTS`, chosen
by the cross-fit together with the epoch (:mod:`icnn.tasks.completion.crossfit`). ``λ = 0`` is
the baseline itself and ``λ = 1`` the ICNN alone, so the cross-fit can choose either.

Why: the anchored energy (:mod:`.anchor`) learns little beyond its anchor out of fold, while an
ICNN trained on its own makes errors of its own. The squared error is convex in ``λ``, so a blend's
MSE is at most the weighted mean of the two MSEs, and below both when the errors are far enough
from perfectly correlated and the two MSEs close; whether it is, the cross-fit measures. The
blend is the minimiser of the convex
``λ/2 ||y - ŷ_E||^2 + (1 - λ)/2 ||y - g(x)||^2``, i.e. of a product of the two Gaussian
"experts" centred on the predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .data import CompletionSplit, per_example_mse

# the ICNN's weight λ in the blend: a coarse grid (its choice is validated by the cross-fit)
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def blend(completion: Tensor, anchor_values: Tensor, weight: float) -> Tensor:
    """``weight * completion + (1 - weight) * anchor_values``, both ``(n, *y_shape)``.

    Weight 0 returns the anchor values and weight 1 the completion, as they are.

    Raises:
        ValueError: different shapes, or a weight outside ``[0, 1]``.
    """
    if completion.shape != anchor_values.shape:
        raise ValueError(f"expected a completion and anchor values of one shape, got "
                         f"{tuple(completion.shape)} and {tuple(anchor_values.shape)}")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise ValueError(f"expected a blend weight in [0, 1], got {weight!r}")
    # the ends are the predictors themselves, exactly (0 * a non-finite completion is NaN)
    if weight == 0:
        return anchor_values.to(completion.dtype)
    if weight == 1:
        return completion
    return weight * completion + (1 - weight) * anchor_values.to(completion.dtype)


def blend_errors(completion: Tensor, anchor_values: Tensor, split: CompletionSplit,
                 weights: Sequence[float] = BLEND_WEIGHTS) -> Tensor:
    """``(len(weights), n)``: every example's MSE of the blend at each weight."""
    return torch.stack([per_example_mse(blend(completion, anchor_values, w), split)
                        for w in weights])


def unravel(index: int, weights: Sequence[float] = BLEND_WEIGHTS) -> tuple[int, float]:
    """``(epoch, weight)`` of a 0-based index into the flattened ``(epochs, weights)`` grid."""
    return index // len(weights) + 1, float(weights[index % len(weights)])


__all__ = ["BLEND_WEIGHTS", "blend", "blend_errors", "unravel"]

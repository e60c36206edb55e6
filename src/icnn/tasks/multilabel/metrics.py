"""Multi-label scores (F1 three ways, Hamming loss) and a global decision threshold.

For a set of 0/1 decisions with ``tp`` true positives, ``fp`` false positives and ``fn``
false negatives, ``F1 = 2 tp / (2 tp + fp + fn)``, and **F1 = 0 when tp + fp + fn = 0** (no
positive in truth nor prediction). That is sklearn's ``zero_division=0`` (and what its default
``"warn"`` returns), and the scores below equal ``sklearn.metrics.f1_score`` /
``hamming_loss`` exactly:

* ``macro_f1``: F1 of each label over the examples, averaged over the labels
  (``f1_score(y_true, y_pred, average="macro", zero_division=0)``); a label that is never
  positive, in truth or prediction, contributes 0.
* ``micro_f1``: one F1 from the counts pooled over all labels and examples
  (``average="micro"``).
* ``example_f1``: F1 of each example over the labels, averaged over the examples
  (``average="samples"``); an example with no true and no predicted label contributes 0.
  This is the number the paper reports as "macro-F1" on BibTeX: its code passed transposed
  (labels x examples) matrices to ``f1_score(average="macro")`` (reference-notes section 4.2).
* ``hamming``: share of wrong (example, label) decisions (``hamming_loss``); lower is better.

Everything is batched tensor arithmetic, with no Python loop over examples or labels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

METRICS = ("macro_f1", "micro_f1", "example_f1", "hamming")
LOWER_IS_BETTER = frozenset({"hamming"})
# 0.01, 0.02, ..., 0.09 (rare labels such as BibTeX's need low thresholds), then 0.10, 0.15, ...,
# 0.95; always chosen on a validation split
DEFAULT_THRESHOLD_GRID = tuple(round(0.01 * k, 2) for k in range(1, 10)) + tuple(
    round(0.05 * k, 2) for k in range(2, 20))


def _as_binary(name: str, values: Tensor) -> Tensor:
    """``values`` as a bool tensor, after checking it holds only 0 and 1."""
    values = torch.as_tensor(values)
    if values.dtype == torch.bool:
        return values
    if values.is_complex() or not ((values == 0) | (values == 1)).all():
        raise ValueError(
            f"expected {name} to hold only 0 and 1 (or bool), got other values; threshold "
            "scores first (e.g. scores >= 0.5)"
        )
    return values != 0


def _check_pair(y_true: Tensor, y_pred: Tensor) -> tuple[Tensor, Tensor]:
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    if y_true.ndim != 2 or y_true.shape[0] == 0 or y_true.shape[1] == 0:
        raise ValueError(
            f"expected y_true of shape (N, L) with N, L >= 1, got {tuple(y_true.shape)}"
        )
    if y_pred.shape != y_true.shape:
        raise ValueError(
            f"expected y_pred of shape {tuple(y_true.shape)} like y_true, got {tuple(y_pred.shape)}"
        )
    return _as_binary("y_true", y_true), _as_binary("y_pred", y_pred)


def _f1(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    denominator = 2 * tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), torch.zeros_like(tp))


def _batched_scores(y_true: Tensor, y_pred: Tensor) -> dict[str, Tensor]:
    """Scores of bool ``y_pred: (..., N, L)`` against bool ``y_true: (N, L)``, each ``(...)``."""
    tp, fp, fn = y_pred & y_true, y_pred & ~y_true, ~y_pred & y_true

    def count(hits: Tensor, dim: int | tuple[int, int]) -> Tensor:
        return hits.sum(dim, dtype=torch.float64)

    per_label = _f1(count(tp, -2), count(fp, -2), count(fn, -2))  # (..., L)
    per_example = _f1(count(tp, -1), count(fp, -1), count(fn, -1))  # (..., N)
    both = (-2, -1)
    n_decisions = y_true.shape[0] * y_true.shape[1]
    return {
        "macro_f1": per_label.mean(-1),
        "micro_f1": _f1(count(tp, both), count(fp, both), count(fn, both)),
        "example_f1": per_example.mean(-1),
        "hamming": (count(fp, both) + count(fn, both)) / n_decisions,
    }


def multilabel_scores(y_true: Tensor, y_pred: Tensor) -> dict[str, float]:
    """Macro-, micro- and example-averaged F1 and the Hamming loss of 0/1 predictions.

    Args:
        y_true: ``(N, L)`` 0/1 (any dtype) or bool ground truth.
        y_pred: ``(N, L)`` 0/1 or bool predictions (threshold scores first).

    Returns:
        ``{"macro_f1", "micro_f1", "example_f1", "hamming"}`` as Python floats; see the module
        docstring for the definitions and the empty-set convention.

    Raises:
        ValueError: on a shape mismatch, a non-2-D or empty input, or values other than 0/1.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return {name: float(value) for name, value in _batched_scores(y_true, y_pred).items()}


class ThresholdChoice(NamedTuple):
    """The chosen global threshold and its score on the data it was chosen on."""

    threshold: float
    score: float


def best_threshold(
    scores: Tensor,
    y_true: Tensor,
    metric: str = "macro_f1",
    grid: Tensor | tuple[float, ...] | list[float] = DEFAULT_THRESHOLD_GRID,
) -> ThresholdChoice:
    """Choose the global threshold ``t`` (predict 1 where ``scores >= t``) that scores best.

    Meant for a validation split: evaluate every ``t`` in ``grid`` at once and keep the best by
    ``metric`` (highest F1, lowest Hamming loss); ties go to the earliest entry of ``grid``.

    Args:
        scores: ``(N, L)`` real-valued outputs (e.g. the relaxed labels in [0, 1]).
        y_true: ``(N, L)`` 0/1 or bool ground truth.
        metric: one of ``"macro_f1"``, ``"micro_f1"``, ``"example_f1"``, ``"hamming"``.
        grid: candidate thresholds, 1-D (default 0.01, ..., 0.09, 0.10, 0.15, ..., 0.95).

    Returns:
        :class:`ThresholdChoice` ``(threshold, score)``.
    """
    if metric not in METRICS:
        raise ValueError(f"expected metric in {METRICS}, got {metric!r}")
    scores = torch.as_tensor(scores)
    if scores.ndim != 2 or not scores.is_floating_point():
        raise ValueError(
            f"expected floating scores of shape (N, L), got {scores.dtype} {tuple(scores.shape)}"
        )
    y_true = torch.as_tensor(y_true)
    if y_true.shape != scores.shape:
        raise ValueError(
            f"expected y_true of shape {tuple(scores.shape)} like scores, got {tuple(y_true.shape)}"
        )
    y_true, _ = _check_pair(y_true, torch.zeros(scores.shape, dtype=torch.bool))
    if torch.isnan(scores).any():
        raise ValueError("expected scores without NaN, got NaN values")
    requested = torch.as_tensor(grid, dtype=torch.float64)
    if requested.ndim != 1 or requested.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D grid, got shape {tuple(requested.shape)}")
    # Compare in the scores' dtype, as `scores >= threshold` with a Python float does later.
    thresholds = requested.to(scores.dtype)
    predictions = scores.unsqueeze(0) >= thresholds.view(-1, 1, 1)  # (G, N, L)
    values = _batched_scores(y_true, predictions)[metric]  # (G,)
    best = int((values.argmin() if metric in LOWER_IS_BETTER else values.argmax()).item())
    return ThresholdChoice(threshold=float(requested[best]), score=float(values[best]))

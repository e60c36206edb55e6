"""Multi-label scores equal sklearn's (zero_division=0), and the threshold search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, hamming_loss

from icnn.tasks.multilabel.metrics import (
    DEFAULT_THRESHOLD_GRID,
    best_threshold,
    multilabel_scores,
)


def sklearn_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    def f1(average: str) -> float:
        return float(f1_score(y_true, y_pred, average=average, zero_division=0))

    return {
        "macro_f1": f1("macro"),
        "micro_f1": f1("micro"),
        "example_f1": f1("samples"),
        "hamming": float(hamming_loss(y_true, y_pred)),
    }


def random_pair(seed: int, n: int, n_labels: int, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    y_true = torch.rand(n, n_labels, generator=generator) < p
    y_pred = torch.rand(n, n_labels, generator=generator) < p
    return y_true, y_pred


@pytest.mark.parametrize(
    ("seed", "n", "n_labels", "p"),
    [(0, 40, 7, 0.3), (1, 200, 159, 0.02), (2, 5, 3, 0.5), (3, 1, 4, 0.5)],
)
def test_matches_sklearn_on_random_inputs(seed, n, n_labels, p) -> None:
    y_true, y_pred = random_pair(seed, n, n_labels, p)
    ours = multilabel_scores(y_true, y_pred)
    expected = sklearn_scores(y_true.numpy(), y_pred.numpy())
    assert ours.keys() == expected.keys()
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_empty_rows_and_columns_count_as_zero_like_sklearn() -> None:
    y_true, y_pred = random_pair(4, 30, 6, 0.4)
    y_true[:, 0] = y_pred[:, 0] = False  # label never positive anywhere: F1 0
    y_true[:5] = y_pred[:5] = False  # examples with no true and no predicted label: F1 0
    y_true[5:8] = False  # no true label, some predicted
    y_pred[8:10] = False  # some true label, none predicted
    ours = multilabel_scores(y_true, y_pred)
    expected = sklearn_scores(y_true.numpy(), y_pred.numpy())
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_hand_computed_example() -> None:
    y_true = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    y_pred = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    scores = multilabel_scores(y_true, y_pred)
    # Labels: F1 = 2/3 (1 tp, 1 fn), 2/3 (1 tp, 1 fp), 0 (empty) -> macro 4/9.
    assert scores["macro_f1"] == pytest.approx(4 / 9)
    # Pooled: tp 2, fp 1, fn 1 -> 4/6.
    assert scores["micro_f1"] == pytest.approx(2 / 3)
    # Examples: 2/3, 2/3, 0 (empty vs empty counts 0) -> 4/9.
    assert scores["example_f1"] == pytest.approx(4 / 9)
    assert scores["hamming"] == pytest.approx(2 / 9)


def test_perfect_and_all_wrong() -> None:
    y_true, _ = random_pair(5, 20, 5, 0.5)
    y_true[:, 0] = True  # every example and label has a positive somewhere
    y_true[0] = True
    assert multilabel_scores(y_true, y_true) == {
        "macro_f1": 1.0,
        "micro_f1": 1.0,
        "example_f1": 1.0,
        "hamming": 0.0,
    }
    wrong = multilabel_scores(y_true, ~y_true)
    assert wrong["micro_f1"] == 0.0 and wrong["hamming"] == 1.0


def test_float_int_and_bool_inputs_agree() -> None:
    y_true, y_pred = random_pair(6, 25, 4, 0.4)
    as_bool = multilabel_scores(y_true, y_pred)
    assert multilabel_scores(y_true.float(), y_pred.double()) == as_bool
    assert multilabel_scores(y_true.long(), y_pred.int()) == as_bool


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"y_pred of shape \(4, 3\) like y_true, got \(4, 2\)"):
        multilabel_scores(torch.zeros(4, 3), torch.zeros(4, 2))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4), (0, 3), (3, 0)])
def test_non_matrix_or_empty_inputs_are_rejected(shape) -> None:
    with pytest.raises(ValueError, match=r"y_true of shape \(N, L\)"):
        multilabel_scores(torch.zeros(shape), torch.zeros(shape))


def test_probabilities_are_rejected() -> None:
    with pytest.raises(ValueError, match="y_pred to hold only 0 and 1"):
        multilabel_scores(torch.zeros(2, 2), torch.full((2, 2), 0.7))


def test_best_threshold_finds_the_separating_threshold() -> None:
    generator = torch.Generator().manual_seed(7)
    y_true = torch.rand(60, 5, generator=generator) < 0.4
    # Positives score in [0.62, 0.9], negatives in [0.1, 0.38]: any t in (0.38, 0.62] is perfect.
    noise = torch.rand(60, 5, generator=generator) * 0.28
    scores = torch.where(y_true, 0.62 + noise, 0.1 + noise)
    for metric in ("macro_f1", "micro_f1", "example_f1"):
        choice = best_threshold(scores, y_true, metric=metric)
        # The score of perfect predictions (below 1 where an example has no label at all).
        perfect = multilabel_scores(y_true, y_true)[metric]
        assert choice.threshold == 0.4 and choice.score == pytest.approx(perfect, abs=1e-12)
    hamming = best_threshold(scores, y_true, metric="hamming")
    assert hamming.threshold == 0.4 and hamming.score == 0.0


def test_best_threshold_agrees_with_a_loop_over_the_grid() -> None:
    generator = torch.Generator().manual_seed(8)
    y_true = torch.rand(50, 9, generator=generator) < 0.3
    scores = y_true.float() * 0.3 + torch.rand(50, 9, generator=generator) * 0.7
    for metric in ("macro_f1", "example_f1", "hamming"):
        values = [multilabel_scores(y_true, scores >= t)[metric] for t in DEFAULT_THRESHOLD_GRID]
        best = int(np.argmin(values) if metric == "hamming" else np.argmax(values))
        choice = best_threshold(scores, y_true, metric=metric)
        assert choice.threshold == DEFAULT_THRESHOLD_GRID[best]
        assert choice.score == pytest.approx(values[best], abs=1e-12)


def test_best_threshold_custom_grid_and_ties_go_to_the_first() -> None:
    y_true = torch.tensor([[1, 0], [0, 1]])
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    choice = best_threshold(scores, y_true, grid=[0.5, 0.3, 0.95])
    assert choice.threshold == 0.5 and choice.score == 1.0


def test_best_threshold_rejects_unknown_metric_and_bad_inputs() -> None:
    scores, y_true = torch.rand(3, 2), torch.zeros(3, 2)
    with pytest.raises(ValueError, match="expected metric in"):
        best_threshold(scores, y_true, metric="accuracy")
    with pytest.raises(ValueError, match="y_true of shape"):
        best_threshold(scores, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="floating scores"):
        best_threshold(torch.zeros(3, 2, dtype=torch.long), y_true)
    with pytest.raises(ValueError, match="non-empty 1-D grid"):
        best_threshold(scores, y_true, grid=[])


def test_default_grid_reaches_the_low_thresholds_rare_labels_need() -> None:
    assert DEFAULT_THRESHOLD_GRID[:10] == (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09,
                                           0.1)
    assert DEFAULT_THRESHOLD_GRID[-1] == 0.95 and len(set(DEFAULT_THRESHOLD_GRID)) == 27
    # positives score 0.02-0.03, negatives below 0.015: only the low end of the grid separates
    y_true = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    scores = torch.where(y_true.bool(), torch.tensor(0.025), torch.tensor(0.01))
    assert best_threshold(scores, y_true, metric="example_f1") == (0.02, 1.0)

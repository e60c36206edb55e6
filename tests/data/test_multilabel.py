"""MultilabelData and train_validation_split."""

from __future__ import annotations

import pytest
import torch

from icnn.data.multilabel import MultilabelData, train_validation_split


def make(n: int = 10) -> MultilabelData:
    features = torch.arange(n * 3, dtype=torch.float32).reshape(n, 3)
    labels = (torch.arange(n * 2).reshape(n, 2) % 3 == 0).float()
    return MultilabelData(features, labels, ["a", "b", "c"], ["y1", "y2"], "toy")


def test_sizes_and_cardinality() -> None:
    data = make()
    assert (data.n_examples, data.n_features, data.n_labels) == (10, 3, 2)
    assert data.label_cardinality == pytest.approx(float(data.labels.sum()) / 10)


def test_mismatched_rows_are_rejected() -> None:
    with pytest.raises(ValueError, match="10 feature rows and 9 label rows"):
        MultilabelData(torch.zeros(10, 3), torch.zeros(9, 2))


def test_wrong_number_of_names_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected 3 feature names, got 2"):
        MultilabelData(torch.zeros(4, 3), torch.zeros(4, 2), ["a", "b"])


def test_split_sizes_and_disjoint_cover() -> None:
    data = make(10)
    train, validation = train_validation_split(data, 0.3, seed=0)
    assert (train.n_examples, validation.n_examples) == (7, 3)
    rows = torch.cat([train.features[:, 0], validation.features[:, 0]]) / 3
    assert sorted(rows.long().tolist()) == list(range(10))
    assert train.label_names == ["y1", "y2"] and validation.relation == "toy"


def test_split_is_deterministic_and_keeps_order_within_parts() -> None:
    data = make(50)
    first_train, first_val = train_validation_split(data, 0.2, seed=7)
    torch.manual_seed(123)  # the global RNG plays no part
    second_train, second_val = train_validation_split(data, 0.2, seed=7)
    assert torch.equal(first_train.features, second_train.features)
    assert torch.equal(first_val.labels, second_val.labels)
    order = first_train.features[:, 0]
    assert torch.equal(order, order.sort().values)
    _, other_val = train_validation_split(data, 0.2, seed=8)
    assert not torch.equal(first_val.features, other_val.features)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_fraction_must_be_inside_zero_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="open interval"):
        train_validation_split(make(), fraction, seed=0)


def test_split_may_not_leave_a_part_empty() -> None:
    with pytest.raises(ValueError, match="both parts non-empty"):
        train_validation_split(make(10), 0.01, seed=0)

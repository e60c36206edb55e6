"""A multi-label data set in memory, and a deterministic train/validation split."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class MultilabelData:
    """Features and 0/1 labels of a multi-label data set.

    Attributes:
        features: ``(N, D)`` floating tensor.
        labels: ``(N, L)`` floating tensor whose entries are exactly 0 or 1 (same dtype as
            ``features``, ready for a regression or cross-entropy loss; ``labels.bool()`` for
            metrics).
        feature_names: the ``D`` feature attribute names, in column order.
        label_names: the ``L`` label attribute names, in column order.
        relation: the ARFF ``@relation`` name ("" when built by hand).
    """

    features: Tensor
    labels: Tensor
    feature_names: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    relation: str = ""

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.labels.ndim != 2:
            raise ValueError(
                "expected features of shape (N, D) and labels of shape (N, L), got "
                f"{tuple(self.features.shape)} and {tuple(self.labels.shape)}"
            )
        if self.features.shape[0] != self.labels.shape[0]:
            raise ValueError(
                "expected as many label rows as feature rows, got "
                f"{self.features.shape[0]} feature rows and {self.labels.shape[0]} label rows"
            )
        if self.feature_names and len(self.feature_names) != self.features.shape[1]:
            raise ValueError(
                f"expected {self.features.shape[1]} feature names, got {len(self.feature_names)}"
            )
        if self.label_names and len(self.label_names) != self.labels.shape[1]:
            raise ValueError(
                f"expected {self.labels.shape[1]} label names, got {len(self.label_names)}"
            )

    @property
    def n_examples(self) -> int:
        """Number of examples ``N``."""
        return self.features.shape[0]

    @property
    def n_features(self) -> int:
        """Number of features ``D``."""
        return self.features.shape[1]

    @property
    def n_labels(self) -> int:
        """Number of labels ``L``."""
        return self.labels.shape[1]

    @property
    def label_cardinality(self) -> float:
        """Mean number of positive labels per example (Mulan's "label cardinality")."""
        return float(self.labels.sum(dim=1, dtype=torch.float64).mean())

    def subset(self, index: Tensor) -> MultilabelData:
        """The examples selected by ``index`` (a 1-D long or bool tensor), names kept."""
        return MultilabelData(
            features=self.features[index],
            labels=self.labels[index],
            feature_names=list(self.feature_names),
            label_names=list(self.label_names),
            relation=self.relation,
        )


def train_validation_split(
    data: MultilabelData, fraction: float, seed: int
) -> tuple[MultilabelData, MultilabelData]:
    """Split ``data`` into (train, validation) with ``round(fraction * N)`` validation examples.

    The split is a seeded random permutation (``torch.Generator().manual_seed(seed)``), so the
    same ``(N, fraction, seed)`` always gives the same split on every machine; the global torch
    RNG is neither used nor advanced. Within each part the examples keep their original order.

    Args:
        data: the examples to split (e.g. the official Mulan training file).
        fraction: share of examples that go to validation, in the open interval (0, 1).
        seed: seed of the permutation.

    Raises:
        ValueError: if ``fraction`` is outside (0, 1) or either part would be empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"expected fraction in the open interval (0, 1), got {fraction}")
    n = data.n_examples
    n_validation = round(fraction * n)
    if n_validation < 1 or n_validation > n - 1:
        raise ValueError(
            f"expected both parts non-empty, got {n - n_validation} train and {n_validation} "
            f"validation examples from N={n} and fraction={fraction}"
        )
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(n, generator=generator)
    validation_index = permutation[:n_validation].sort().values
    train_index = permutation[n_validation:].sort().values
    return data.subset(train_index), data.subset(validation_index)

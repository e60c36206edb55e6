"""The three 2-D datasets of the paper's Figure 3 (scikit-learn generators, reference notes §4.1)."""

from __future__ import annotations

import numpy as np

DATASETS = ("moons", "circles", "linear")


def make_dataset(name: str, n_samples: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(n, 2)`` (standardised) and 0/1 labels ``(n,)``, as the authors generated them.

    - ``"linear"``: ``make_classification(n_features=2, n_redundant=0, n_informative=2,
      random_state=1, n_clusters_per_class=1)`` plus ``2·U[0, 1)`` noise from ``RandomState(2)``;
    - ``"moons"``: ``make_moons(noise=0.3, random_state=0)``;
    - ``"circles"``: ``make_circles(noise=0.2, factor=0.5, random_state=0)``, labels flipped.
    """
    from sklearn.datasets import make_circles, make_classification, make_moons

    if name == "linear":
        points, labels = make_classification(
            n_samples=n_samples, n_features=2, n_redundant=0, n_informative=2, random_state=1,
            n_clusters_per_class=1)
        points = points + 2 * np.random.RandomState(2).uniform(size=points.shape)
    elif name == "moons":
        points, labels = make_moons(n_samples=n_samples, noise=0.3, random_state=0)
    elif name == "circles":
        points, labels = make_circles(n_samples=n_samples, noise=0.2, factor=0.5, random_state=0)
        labels = 1 - labels
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    points = (points - points.mean(axis=0)) / points.std(axis=0)
    return points.astype(np.float64), labels.astype(np.float64)

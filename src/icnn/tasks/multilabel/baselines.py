"""What a user would try first on a multi-label set, measured in the same run as the models.

Three baselines, each with its hyper-parameter and its global decision threshold chosen on the
validation split only (the test file is scored once, with the chosen values):

* ``logreg``: binary relevance, one L2 logistic regression per label (scikit-learn), ``C`` from
  :data:`LOGREG_C`.
* ``chain``: a classifier chain of the same logistic regressions (Read et al. 2011), each label's
  model also reading the labels before it in the chain; ``C`` from :data:`LOGREG_C`.
* ``knn``: k-nearest-neighbour label voting: the score of label ``l`` is the share of the ``k``
  nearest training examples that carry it; ``k`` from :data:`KNN_K` and the distance
  (Euclidean or cosine) from :data:`KNN_DISTANCES`.

A label that is constant on the training split (every example 0, or every example 1) gets that
constant as its score; the logistic models are fitted on the other labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from icnn.data import MultilabelData

from .metrics import LOWER_IS_BETTER, best_threshold, multilabel_scores

__all__ = ["BASELINES", "KNN_DISTANCES", "KNN_K", "LOGREG_C", "BaselineResult",
           "knn_label_scores", "require_sklearn", "run_baselines"]

BASELINES = ("logreg", "chain", "knn")
LOGREG_C = (0.001, 0.01, 0.1, 1.0, 10.0)
KNN_K = (1, 3, 5, 10, 20, 40)
KNN_DISTANCES = ("euclidean", "cosine")
_SKLEARN_HINT = "pip install 'icnn-torch[data]'"


@dataclass
class BaselineResult:
    """One baseline's validation choice and test scores.

    Attributes:
        name: ``"logreg"``, ``"chain"`` or ``"knn"`` (``"ff"`` for the feed-forward net).
        hyper: the hyper-parameters chosen on validation (e.g. ``{"C": 1.0}``).
        threshold: the global decision threshold chosen on validation.
        val_score: the validation score (``threshold_metric``) at that choice.
        test: ``macro_f1``, ``micro_f1``, ``example_f1``, ``hamming`` on the test file.
        fit_s: wall time of the whole selection, fit and scoring (seconds).
    """

    name: str
    hyper: dict[str, Any]
    threshold: float
    val_score: float
    test: dict[str, float]
    fit_s: float = 0.0
    grid: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Test scores, threshold, validation score, hyper-parameters, fit time and grid as a dict."""
        return {**self.test, "threshold": self.threshold, "val_score": self.val_score,
                "hyper": self.hyper, "fit_s": round(self.fit_s, 2), "grid": self.grid}


def require_sklearn(names: Sequence[str]) -> None:
    """Check, before any training, that scikit-learn is there when ``names`` need it.

    Raises:
        ValueError: ``logreg`` or ``chain`` requested and scikit-learn missing (one line, with
            the install command).
    """
    needing = [name for name in names if name in ("logreg", "chain")]
    if not needing:
        return
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        raise ValueError(f"expected scikit-learn for the {' and '.join(needing)} baselines "
                         f"({_SKLEARN_HINT}, or --baselines knn), got ImportError: "
                         f"{error}") from error


def _sklearn():
    require_sklearn(("logreg",))
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.multioutput import ClassifierChain

    return LogisticRegression, OneVsRestClassifier, ClassifierChain


def _design(features: Tensor):
    """Features for scikit-learn: CSR when sparse (BibTeX's bag of words), dense otherwise."""
    array = features.detach().cpu().double().numpy()
    if (array == 0).mean() > 0.9:
        from scipy.sparse import csr_matrix

        return csr_matrix(array)
    return array


def _logistic_scorer(kind: str, c: float, seed: int, train: MultilabelData
                     ) -> Callable[[Tensor], Tensor]:
    """Fit binary relevance (``kind="logreg"``) or a chain (``"chain"``) at ``C = c``.

    Return ``scores(features: (N, D)) -> (N, L)`` label probabilities.
    """
    LogisticRegression, OneVsRestClassifier, ClassifierChain = _sklearn()
    labels = train.labels.detach().cpu().numpy().astype(np.int64)
    rate = labels.mean(0)
    varying = (rate > 0) & (rate < 1)
    estimator = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=seed)
    fitted = None
    if varying.any():
        if kind == "logreg":
            fitted = OneVsRestClassifier(estimator)
        else:
            fitted = ClassifierChain(estimator, order=None, random_state=seed)
        fitted.fit(_design(train.features), labels[:, varying])

    def scores(features: Tensor) -> Tensor:
        out = np.tile(rate, (features.shape[0], 1)).astype(np.float64)
        if fitted is not None:
            out[:, varying] = np.asarray(fitted.predict_proba(_design(features)))
        return torch.as_tensor(out, dtype=features.dtype)

    return scores


def _pairwise_distances(query: Tensor, reference: Tensor, distance: str) -> Tensor:
    if distance == "cosine":
        q = torch.nn.functional.normalize(query, dim=-1)
        r = torch.nn.functional.normalize(reference, dim=-1)
        return 1.0 - q @ r.T
    return torch.cdist(query, reference)


def _nearest(train_features: Tensor, query: Tensor, k: int, distance: str,
             chunk: int = 1024) -> Tensor:
    """Indices ``(N_query, k)`` of the ``k`` nearest training rows, nearest first."""
    return torch.cat([
        _pairwise_distances(part, train_features, distance).topk(k, largest=False).indices
        for part in query.split(chunk)])


def knn_label_scores(train_features: Tensor, train_labels: Tensor, query: Tensor, k: int,
                     distance: str = "euclidean") -> Tensor:
    """k-nearest-neighbour label voting: share of the ``k`` nearest training rows with each label.

    Args:
        train_features: ``(N, D)``.
        train_labels: ``(N, L)`` 0/1.
        query: ``(M, D)`` features to score.
        k: number of neighbours, ``1 <= k <= N``.
        distance: ``"euclidean"`` or ``"cosine"`` (``1 - cos``).

    Returns:
        ``(M, L)`` scores in ``[0, 1]`` (multiples of ``1/k``).

    Raises:
        ValueError: on mismatched shapes, ``k`` outside ``[1, N]`` or an unknown distance.
    """
    if train_features.ndim != 2 or train_labels.ndim != 2 or query.ndim != 2:
        raise ValueError(f"expected 2-D train_features, train_labels and query, got shapes "
                         f"{tuple(train_features.shape)}, {tuple(train_labels.shape)}, "
                         f"{tuple(query.shape)}")
    if train_labels.shape[0] != train_features.shape[0] or query.shape[1] != train_features.shape[1]:
        raise ValueError(f"expected train_labels (N, L) and query (M, {train_features.shape[1]}) "
                         f"for train_features {tuple(train_features.shape)}, got "
                         f"{tuple(train_labels.shape)} and {tuple(query.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= train_features.shape[0]:
        raise ValueError(f"expected k in [1, {train_features.shape[0]}], got {k!r}")
    if distance not in KNN_DISTANCES:
        raise ValueError(f"expected distance in {KNN_DISTANCES}, got {distance!r}")
    index = _nearest(train_features, query, k, distance)
    return train_labels[index].float().mean(1).to(train_labels.dtype)


def _signed(score: float, metric: str) -> float:
    return -score if metric in LOWER_IS_BETTER else score


def _select(name: str, candidates: list[tuple[dict[str, Any], Callable[[Tensor], Tensor]]],
            validation: MultilabelData, test: MultilabelData, metric: str,
            started: float) -> BaselineResult:
    """Keep the candidate (and threshold) best on validation; score it once on the test file."""
    best = None
    grid = []
    for hyper, scorer in candidates:
        choice = best_threshold(scorer(validation.features), validation.labels, metric)
        grid.append({**hyper, "val_score": choice.score, "threshold": choice.threshold})
        if best is None or _signed(choice.score, metric) > _signed(best[1].score, metric):
            best = (hyper, choice, scorer)
    hyper, choice, scorer = best
    predictions = scorer(test.features) >= choice.threshold
    return BaselineResult(name, hyper, choice.threshold, choice.score,
                          multilabel_scores(test.labels, predictions),
                          time.perf_counter() - started, grid)


def _lazy(make: Callable[[], Callable[[Tensor], Tensor]]) -> Callable[[Tensor], Tensor]:
    """A scorer fitted once, on first use."""
    fitted: list[Callable[[Tensor], Tensor]] = []

    def scores(features: Tensor) -> Tensor:
        if not fitted:
            fitted.append(make())
        return fitted[0](features)

    return scores


def run_baselines(names: tuple[str, ...] | list[str], train: MultilabelData,
                  validation: MultilabelData, test: MultilabelData, metric: str, seed: int,
                  log: Callable[[str], None] | None = None) -> dict[str, BaselineResult]:
    """Fit, select on ``validation`` and score on ``test`` each baseline in ``names``.

    Args:
        names: a subset of :data:`BASELINES`.
        train: the run's training split (features already standardised).
        validation: the run's validation split.
        test: the run's test split.
        metric: the validation metric (``threshold_metric`` of the run).
        seed: seeds scikit-learn's solvers.
        log: called with one line per fitted baseline (None: silent).

    Returns:
        ``{name: BaselineResult}`` in the order of ``names``.

    Raises:
        ValueError: on an unknown name.
        ImportError: ``logreg``/``chain`` without scikit-learn (the ``data`` extra).
    """
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ValueError(f"expected baselines from {BASELINES}, got {unknown}")
    results = {}
    for name in names:
        started = time.perf_counter()
        if name == "knn":
            k_max = min(max(KNN_K), train.n_examples)
            candidates = []
            for distance in KNN_DISTANCES:
                near = {"val": _nearest(train.features, validation.features, k_max, distance)}
                for k in (k for k in KNN_K if k <= k_max):
                    def scorer(features: Tensor, k: int = k, distance: str = distance,
                               near: dict = near) -> Tensor:
                        if features is validation.features:
                            return train.labels[near["val"][:, :k]].mean(1)
                        return knn_label_scores(train.features, train.labels, features, k,
                                                distance)
                    candidates.append(({"k": k, "distance": distance}, scorer))
        else:
            candidates = [({"C": c}, _lazy(lambda c=c, name=name: _logistic_scorer(name, c, seed, train)))
                          for c in LOGREG_C]
        results[name] = _select(name, candidates, validation, test, metric, started)
        if log is not None:
            result = results[name]
            log(f"baseline {name} {result.hyper}: val {metric} {result.val_score:.4f} "
                f"(threshold {result.threshold:.2f}), test example_f1 "
                f"{result.test['example_f1']:.4f} macro_f1 {result.test['macro_f1']:.4f} "
                f"({result.fit_s:.1f} s)")
    return results

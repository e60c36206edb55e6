"""Baselines chosen by K-fold cross-validation over every training image, folds grouped by person.

A single hold-out of one or two people is too noisy to choose a baseline's hyper-parameters or
the anchor of the anchored energy on a small face set. Here every closed-form candidate (the mean
image, ridge for each ``alpha``, RBF kernel ridge for each ``(alpha, gamma)``) predicts every
training image from a fit on the other folds (:func:`icnn.tasks.completion.baselines.out_of_fold`,
the folds of :func:`icnn.tasks.completion.folds.group_folds`, shared with the anchored energy's
out-of-fold anchor values); the candidate with the lowest out-of-fold MSE (``cv_mse``) is chosen
and fit again on every training image (and their mirrors), and the blend of the chosen ridge and
kernel ridge is scored from their out-of-fold predictions. Each result also carries, when there
is a validation split, the validation MSE of the same hyper-parameters fit on the training part
only (the number the anchored energy's fallback compares against).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .baselines import (
    BASELINES,
    KERNEL_ALPHAS,
    KERNEL_GAMMA_FACTORS,
    RIDGE_ALPHAS,
    Anchor,
    BaselineResult,
    BlendAnchor,
    MeanAnchor,
    RegressorConfig,
    fit_conv_regressor,
    fit_on,
    kernel_anchor,
    out_of_fold,
    predict_anchor,
    ridge_anchor,
)
from .data import CompletionSplit, concatenate, mirrored, paper_mse

Fit = Callable[[CompletionSplit], Anchor]


def cross_validate(candidates: Sequence[tuple[dict[str, Any], Fit]], train: CompletionSplit,
                   blocks: Sequence[Tensor], *, flip: bool = True,
                   ) -> tuple[int, list[dict[str, Any]], Tensor]:
    """The candidate with the lowest out-of-fold MSE over ``train``.

    Args:
        candidates: ``(params, fit)`` pairs; ``fit`` maps a training split to a predictor.
        train: every training image.
        blocks: the folds (index tensors partitioning ``train``).
        flip: fit on the other folds' images and their mirrors.

    Returns:
        ``(best index, grid, out-of-fold predictions (n, *y_shape) of the best)``; ``grid`` has
        each candidate's params and ``cv_mse`` (ties: the first).

    Raises:
        ValueError: no candidates, or blocks that do not partition ``train``.
    """
    if not candidates:
        raise ValueError("expected at least one candidate to cross-validate, got none")
    grid, predictions = [], []
    for params, fit in candidates:
        prediction = out_of_fold(fit, train, blocks, flip=flip)
        grid.append({**params, "cv_mse": paper_mse(prediction, train)})
        predictions.append(prediction)
    best = min(range(len(grid)), key=lambda i: grid[i]["cv_mse"])
    return best, grid, predictions[best]


def _result(name: str, params: dict[str, Any], fit: Fit, cv_mse: float, grid: list[dict[str, Any]],
            everything: CompletionSplit, part: CompletionSplit, validation: CompletionSplit | None,
            test: CompletionSplit, flip: bool) -> BaselineResult:
    anchor = fit(_with_mirrors(everything, flip))
    val_mse, val_anchor = None, None
    if validation is not None:
        val_anchor = fit(_with_mirrors(part, flip))
        val_mse = paper_mse(predict_anchor(val_anchor, validation), validation)
    return BaselineResult(name, anchor, params, val_mse,
                          paper_mse(predict_anchor(anchor, test), test),
                          paper_mse(predict_anchor(anchor, everything), everything), grid, cv_mse,
                          val_anchor)


def _with_mirrors(split: CompletionSplit, flip: bool) -> CompletionSplit:
    return concatenate(split, mirrored(split)) if flip else split


def _mean_fit(split: CompletionSplit) -> Anchor:
    return MeanAnchor(split.y.mean(0, keepdim=True))


def fit_baselines_cv(everything: CompletionSplit, part: CompletionSplit,
                     validation: CompletionSplit | None, test: CompletionSplit,
                     names: Sequence[str], blocks: Sequence[Tensor], *, flip: bool = True,
                     regressor: RegressorConfig | None = None,
                     regressor_split: tuple[CompletionSplit, CompletionSplit] | None = None,
                     ) -> dict[str, BaselineResult]:
    """The mean image and the baselines in ``names``, hyper-parameters by cross-validation.

    Args:
        everything: every training image (the training part and the validation split).
        part: the training part (what the anchored energy trains on).
        validation: the validation split (None: the paper's protocol without one).
        test: scored for the report only.
        names: among ``"ridge"``, ``"kernel_ridge"``, ``"cnn"``.
        blocks: folds partitioning ``everything`` (:func:`icnn.tasks.completion.folds.group_folds`).
        flip: fit on images and their mirrors.
        regressor: the CNN's training settings.
        regressor_split: the CNN's ``(train, validation)`` (the CNN is trained, not solved: it
            keeps the epoch best on that validation split).

    Returns:
        name -> result; the closed forms (mean image, ridge, kernel ridge, and their blend when
        both are fit) fit on ``everything`` with ``cv_mse`` and the grid of ``cv_mse``.

    Raises:
        ValueError: an unknown name, scikit-learn missing, bad blocks, or ``"cnn"`` without its
            configuration and split.
    """
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ValueError(f"expected baselines among {BASELINES}, got {unknown}")
    if "cnn" in names and (regressor is None or regressor_split is None):
        raise ValueError("expected a regressor configuration and its (train, validation) split "
                         "for the cnn baseline, got none")
    splits = (everything, part, validation, test)
    args = (*splits, flip)
    # the mean image is fit on the images without mirrors (the README's trivial baseline)
    cv_mse = paper_mse(out_of_fold(_mean_fit, everything, blocks, flip=False), everything)
    results = {"mean_image": _result("mean_image", {}, _mean_fit, cv_mse, [{"cv_mse": cv_mse}],
                                     *splits, False)}
    oof: dict[str, Tensor] = {}
    for name in dict.fromkeys(names):
        if name == "cnn":
            continue
        candidates = _ridge_candidates() if name == "ridge" else _kernel_candidates(everything, flip)
        best, grid, oof[name] = cross_validate(candidates, everything, blocks, flip=flip)
        params, fit = candidates[best]
        results[name] = _result(name, params, fit, grid[best]["cv_mse"], grid, *args)
    if "ridge" in results and "kernel_ridge" in results:
        ridge, kernel = results["ridge"], results["kernel_ridge"]
        params = {"ridge": ridge.params, "kernel_ridge": kernel.params}
        blend_mse = paper_mse((oof["ridge"] + oof["kernel_ridge"]) / 2, everything)
        results["blend"] = _result(
            "blend", params, lambda s: BlendAnchor([
                ridge_anchor(s, ridge.params["alpha"]),
                kernel_anchor(s, kernel.params["alpha"], kernel.params["gamma"])]),
            blend_mse, [{**params, "cv_mse": blend_mse}], *args)
    if "cnn" in names:
        assert regressor is not None and regressor_split is not None
        results["cnn"] = fit_conv_regressor(*regressor_split, test, regressor)
    return results


def _ridge_candidates() -> list[tuple[dict[str, Any], Fit]]:
    return [({"alpha": float(alpha)}, lambda s, a=alpha: ridge_anchor(s, a)) for alpha in RIDGE_ALPHAS]


def _kernel_candidates(everything: CompletionSplit, flip: bool) -> list[tuple[dict[str, Any], Fit]]:
    # gamma = factor / median squared distance between the inputs (and mirrors) of every image
    inputs = _with_mirrors(everything, flip).x.flatten(1).double()
    distances = torch.cdist(inputs, inputs).square()
    median = float(distances[distances > 0].median()) if bool((distances > 0).any()) else 1.0
    candidates: list[tuple[dict[str, Any], Fit]] = []
    for factor in KERNEL_GAMMA_FACTORS:
        for alpha in KERNEL_ALPHAS:
            gamma = float(factor) / median
            params = {"alpha": float(alpha), "gamma_factor": float(factor), "gamma": gamma}
            candidates.append((params, lambda s, a=alpha, g=gamma: kernel_anchor(s, a, g)))
    return candidates


__all__ = ["cross_validate", "fit_baselines_cv", "fit_on"]

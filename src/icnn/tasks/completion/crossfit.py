"""The cross-fitted verdict: every training person is validated once, by a fit on the others.

A hold-out of 20 % of the training people (Olivetti: 7, small faces: 2) gives the verdict of
:mod:`icnn.tasks.completion.verdict` 6 or 1 degrees of freedom: too little power to tell a real
gain of a few MSE units from noise. Here the training images are cut into ``K`` folds of whole
people (:func:`icnn.tasks.completion.folds.group_folds`, ``--verdict-folds``); for each fold a
trained method (e.g. the anchored energy, with its anchor fit on the other folds and out-of-fold
anchor values inside them) and every baseline are fit on the other folds and predict the fold's
people. Every choice is made inside the fold too (:func:`fold_baselines`): the closed-form
baselines' hyper-parameters by a cross-validation over the other folds only, and the anchor
(``--anchor best``) among those fits, so that no held-out person helps choose what predicts
it. That gives per-image errors for **every** training image, paired across predictors, and the
verdict has ``people - 1`` degrees of freedom (Olivetti: 34, small faces: 7).

The epoch of a trained method is chosen on these out-of-fold curves: the final model (trained
on every training person) keeps the weights after the epoch with the lowest out-of-fold MSE
pooled over all folds. The verdict's errors of fold ``k`` are taken at the epoch best on the
*other* folds' pooled curve (leave one fold out), so that the epoch choice is validated too and
the verdict does not favour the trained method by picking its best epoch on the same errors.
This is the standard cross-validation argument: the verdict estimates the test error of the
recipe "train this method on ``n (K-1) / K`` people with an epoch chosen by cross-fitting",
which the final model applies to all ``n`` people.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .baselines import CLOSED_FORMS, BaselineResult, predict_anchor
from .crossval import fit_baselines_cv
from .data import CompletionSplit, per_example_mse, subset
from .folds import group_folds, n_groups

# fit one fold: (the other folds' images, the fold's images) -> (epochs, n_fold) per-image errors
FoldCurve = Callable[[CompletionSplit, CompletionSplit], Tensor]


def fold_splits(train: CompletionSplit, blocks: Sequence[Tensor],
                ) -> list[tuple[CompletionSplit, CompletionSplit]]:
    """``(the other folds' images, the fold's images)`` for every fold, in order.

    Raises:
        ValueError: fewer than two blocks, or blocks that do not partition ``train``.
    """
    _check_blocks(blocks, len(train))
    pairs = []
    for block in blocks:
        rest = torch.ones(len(train), dtype=torch.bool)
        rest[block] = False
        pairs.append((subset(train, rest.nonzero()[:, 0]), subset(train, block)))
    return pairs


def cross_fit_curves(fit_fold: FoldCurve, train: CompletionSplit, blocks: Sequence[Tensor],
                     ) -> Tensor:
    """``(epochs, n)``: every training image's error after each epoch, from a fit without its fold.

    The rows may be any candidates evaluated per fold, e.g. the averaged recipe's flattened
    ``(epoch, blend weight)`` pairs; every fold must return the same number.

    Args:
        fit_fold: trains on the other folds and returns ``(epochs, n_fold)`` per-image errors of
            the fold after every epoch.
        train: every training image, ``n`` of them.
        blocks: the folds (index tensors partitioning ``0..n-1``).

    Raises:
        ValueError: bad blocks, or a fold's curve of the wrong shape.
    """
    curves: Tensor | None = None
    for block, (rest, held) in zip(blocks, fold_splits(train, blocks), strict=True):
        curve = fit_fold(rest, held)
        if curve.ndim != 2 or curve.shape[1] != len(block) or (
                curves is not None and curve.shape[0] != curves.shape[0]):
            raise ValueError(f"expected a fold curve of shape (epochs, {len(block)}) with the "
                             f"same epochs for every fold, got {tuple(curve.shape)}")
        if curves is None:
            curves = curve.new_full((curve.shape[0], len(train)), float("nan"))
        curves[:, block] = curve
    assert curves is not None
    return curves


def choose_epochs(curves: Tensor, blocks: Sequence[Tensor]) -> dict[str, Any]:
    """The epoch of the final model and the verdict's out-of-fold errors.

    Args:
        curves: ``(epochs, n)`` out-of-fold per-image errors after every epoch
            (:func:`cross_fit_curves`); more generally one row per candidate (the averaged
            recipe flattens its ``(epoch, blend weight)`` pairs, :func:`icnn.tasks.completion.blend.unravel`).
            NaN errors count as infinite.
        blocks: the folds.

    Returns:
        ``{"epoch": the epoch (from 1) with the lowest MSE pooled over every image,
        "fold_epochs": per fold, the epoch best on the other folds' images,
        "errors": (n,) each image's error at its fold's epoch, "curve": the pooled MSE per
        epoch}``.

    Raises:
        ValueError: ``curves`` not 2-D with a column per image, or bad blocks.
    """
    if curves.ndim != 2 or curves.shape[0] < 1:
        raise ValueError(f"expected curves of shape (epochs >= 1, n), got {tuple(curves.shape)}")
    _check_blocks(blocks, curves.shape[1])
    # a non-finite error (a diverged candidate) is never chosen: argmin would take a NaN first
    curves = torch.where(curves.isnan(), torch.inf, curves)
    pooled = curves.mean(1)
    errors = torch.empty(curves.shape[1], dtype=curves.dtype)
    fold_epochs = []
    for block in blocks:
        others = torch.ones(curves.shape[1], dtype=torch.bool)
        others[block] = False
        epoch = int(curves[:, others].mean(1).argmin())
        fold_epochs.append(epoch + 1)
        errors[block] = curves[epoch, block]
    return {"epoch": int(pooled.argmin()) + 1, "fold_epochs": fold_epochs, "errors": errors,
            "curve": pooled.tolist()}


def fold_baselines(train: CompletionSplit, test: CompletionSplit, names: Sequence[str],
                   blocks: Sequence[Tensor], *, folds: int, group_size: int, flip: bool = True,
                   ) -> list[dict[str, BaselineResult]]:
    """Per verdict fold, the closed-form baselines chosen and fit without the fold's people.

    For every fold the baselines' hyper-parameters are chosen by the cross-validation of
    :func:`icnn.tasks.completion.crossval.fit_baselines_cv` over the *other* folds only (inner
    folds of whole people, ``min(folds, people there)`` of them, the kernel's median-distance
    scale computed there too), and each baseline is fit on those other folds. The held-out
    people thus never help choose what predicts them: the verdict validates the whole recipe,
    hyper-parameter choice included (the final fit on every training person chooses again).

    Args:
        train: every training image, ``n`` of them.
        test: scored for the report only.
        names: closed-form baselines besides the mean image (``"ridge"``, ``"kernel_ridge"``).
        blocks: the verdict's folds (index tensors partitioning ``0..n-1``).
        folds: the inner cross-validation's folds (capped at the people outside the fold).
        group_size: images per person.
        flip: fit on images and their mirrors (the mean image: without).

    Returns:
        One dict name -> :class:`BaselineResult` per fold, in order; each ``anchor`` is fit on
        the other folds' images.

    Raises:
        ValueError: bad blocks, fewer than two people outside a fold, or a name that is not a
            closed form.
    """
    if "cnn" in names:
        raise ValueError(f"expected closed-form baselines for the per-fold choice, got {list(names)}")
    per_fold = []
    for rest, _ in fold_splits(train, blocks):
        inner = group_folds(len(rest), min(folds, n_groups(len(rest), group_size)), group_size)
        per_fold.append(fit_baselines_cv(rest, rest, None, test, names, inner, flip=flip))
    return per_fold


def closed_form_errors(per_fold: Sequence[Mapping[str, BaselineResult]], train: CompletionSplit,
                       blocks: Sequence[Tensor]) -> dict[str, Tensor]:
    """Per-image out-of-fold errors ``(n,)`` of every closed-form baseline.

    Args:
        per_fold: per fold, the baselines fit on the other folds (:func:`fold_baselines`).
        train: every training image, ``n`` of them.
        blocks: the folds, in the order of ``per_fold``.

    Raises:
        ValueError: bad blocks, or not one dict of baselines per fold with the same names.
    """
    _check_blocks(blocks, len(train))
    names = [name for name in per_fold[0] if name in CLOSED_FORMS] if per_fold else []
    if len(per_fold) != len(blocks) or any(
            [n for n in fits if n in CLOSED_FORMS] != names for fits in per_fold):
        raise ValueError(f"expected one dict of the same baselines per fold ({len(blocks)} "
                         f"folds), got {[sorted(fits) for fits in per_fold]}")
    errors = {name: torch.empty(len(train), dtype=train.y.dtype) for name in names}
    for fits, block in zip(per_fold, blocks, strict=True):
        held = subset(train, block)
        for name in names:
            errors[name][block] = per_example_mse(predict_anchor(fits[name].anchor, held), held)
    return errors


def _check_blocks(blocks: Sequence[Tensor], n: int) -> None:
    covered = torch.cat(list(blocks)).sort().values if blocks else torch.empty(0, dtype=torch.long)
    if len(blocks) < 2 or not torch.equal(covered, torch.arange(n)):
        raise ValueError(f"expected at least two folds partitioning the {n} training images, got "
                         f"{len(blocks)} folds covering {len(covered)} indices")

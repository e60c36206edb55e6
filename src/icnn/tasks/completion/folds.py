"""Folds grouped by person: the one split shared by cross-validation and out-of-fold anchors.

Olivetti stores ten consecutive images per person, so a fold that cuts a person in two would
let a baseline see that person's other images and score too well. :func:`group_folds` cuts the
training images into ``folds`` contiguous blocks of whole groups (``group_size`` consecutive
images; 1 for image stacks without a known grouping: plain contiguous blocks). The same folds
choose the baselines' hyper-parameters (:mod:`icnn.tasks.completion.crossval`) and give the
out-of-fold anchor values the anchored energy trains on
(:func:`icnn.tasks.completion.baselines.cross_fitted`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

OLIVETTI_PER_PERSON = 10


def n_groups(n: int, group_size: int) -> int:
    """Groups of ``group_size`` consecutive images among ``n`` (the last may be smaller)."""
    return math.ceil(n / group_size)


def group_folds(n: int, folds: int, group_size: int = 1) -> list[Tensor]:
    """``folds`` contiguous blocks of whole groups of ``group_size`` consecutive indices.

    Args:
        n: the number of images, ``0..n-1``.
        folds: the number of blocks.
        group_size: images per group (Olivetti: 10 per person); the last group may be smaller.

    Returns:
        ``folds`` int64 index tensors, in order, covering ``0..n-1`` once; no group is split,
        block sizes differ by at most one group.

    Raises:
        ValueError: ``n < 2``, ``group_size < 1``, or ``folds`` outside ``[2, number of groups]``.
    """
    for name, value in (("n", n), ("group_size", group_size), ("folds", folds)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an int {name}, got {value!r}")
    if group_size < 1:
        raise ValueError(f"expected a group size >= 1, got {group_size}")
    groups = n_groups(n, group_size) if n > 0 else 0
    if not 2 <= folds <= groups:
        raise ValueError(f"expected folds in [2, {groups}] ({n} images in groups of "
                         f"{group_size}), got {folds}")
    index = torch.arange(n)
    return [index[block[0] * group_size:min((block[-1] + 1) * group_size, n)]
            for block in torch.arange(groups).tensor_split(folds)]


def default_group_size(images: str | Path, protocol: str) -> int:
    """Images per person: 10 for the Olivetti faces (a ``.mat`` file or ``small-faces``), else 1."""
    if protocol == "small-faces" or Path(images).suffix.lower() == ".mat":
        return OLIVETTI_PER_PERSON
    return 1


def held_out_size(n: int, fraction: float, group_size: int) -> int:
    """Images held out for validation: ``round(fraction * groups)`` whole groups (at least one).

    The validation images are the last ones, so with whole groups they are whole people (the
    groups are counted from the first image; a smaller last group counts as one).
    """
    total = n_groups(n, group_size)
    held = min(total, max(1, round(fraction * total)))
    return n - (total - held) * group_size if group_size > 1 else max(1, round(fraction * n))


def clustered_mean(values: Tensor, first: int, group_size: int) -> tuple[float, float, Tensor]:
    """The mean of per-person means of per-image values and its clustered standard error.

    Args:
        values: ``(n,)`` one value per image, images ``first..first+n-1`` of the stack.
        first: the stack index of the first image (groups are counted from image 0).
        group_size: images per group.

    Returns:
        ``(mean of the group means, std of the group means / sqrt(groups), (groups,) group
        means)``: the mean and its standard error are of the same per-person means (with equal
        groups the mean over images); the standard error is ``inf`` with a single group.

    Raises:
        ValueError: ``values`` not a non-empty 1-D tensor, or ``group_size < 1``.
    """
    if not isinstance(values, Tensor) or values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a non-empty 1-D tensor of per-image values, got "
                         f"{getattr(values, 'shape', type(values).__name__)}")
    if group_size < 1:
        raise ValueError(f"expected a group size >= 1, got {group_size}")
    groups = (first + torch.arange(len(values))) // group_size
    _, group = groups.unique(return_inverse=True)
    count = int(group.max()) + 1
    means = torch.zeros(count, dtype=values.dtype).index_add_(0, group, values) \
        / torch.bincount(group, minlength=count).to(values.dtype)
    stderr = float(means.std() / count ** 0.5) if count > 1 else math.inf
    return float(means.mean()), stderr, means

"""Samples of a distribution as an ``(N, D)`` tensor: loading ``.npy`` files and checking them.

Every solver of :mod:`icnn.ot` sees its data through :func:`check_samples` and
:func:`check_pair`, so a wrong file is refused once, at the door, with what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

MIN_SAMPLES = 8

__all__ = ["MIN_SAMPLES", "check_context_overlap", "check_pair", "check_samples", "load_samples",
           "second_moment"]


def check_samples(samples: Tensor, name: str, *, min_samples: int = MIN_SAMPLES) -> Tensor:
    """Return ``samples`` after checking it is a finite floating ``(N, D)`` tensor, ``N >= min_samples``.

    Args:
        samples: ``(N, D)`` points of one distribution.
        name: what the samples are (for the message), e.g. ``"source"``.
        min_samples: the fewest rows accepted.

    Returns:
        ``samples`` itself, ``(N, D)``.

    Raises:
        ValueError: not a tensor of 2 dimensions, not floating, fewer than ``min_samples`` rows,
            no column, or a NaN/inf entry (the message names the first bad row).
    """
    if not isinstance(samples, Tensor):
        raise ValueError(f"expected {name} samples as a torch.Tensor, got {type(samples).__name__}")
    if samples.ndim != 2:
        raise ValueError(f"expected {name} samples of shape (N, D), got shape {tuple(samples.shape)}")
    if not samples.is_floating_point():
        raise ValueError(f"expected floating-point {name} samples, got dtype {samples.dtype}")
    n, d = samples.shape
    if d == 0:
        raise ValueError(f"expected {name} samples with D >= 1 columns, got shape {tuple(samples.shape)}")
    if n < min_samples:
        raise ValueError(f"expected at least {min_samples} {name} samples, got {n}")
    finite = torch.isfinite(samples).all(dim=1)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ValueError(f"expected finite {name} samples, got NaN or inf in row {bad} "
                         f"({int((~finite).sum())} bad rows of {n})")
    return samples


def load_samples(path: str | os.PathLike, name: str, *, dtype: torch.dtype = torch.float32,
                 min_samples: int = MIN_SAMPLES) -> Tensor:
    """Read an ``(N, D)`` ``.npy`` file (no pickles) and check it with :func:`check_samples`.

    Args:
        path: the ``.npy`` file.
        name: what the samples are, for messages.
        dtype: floating dtype of the returned tensor.
        min_samples: the fewest rows accepted.

    Returns:
        ``(N, D)`` tensor of ``dtype`` on the CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable ``.npy`` array, not numeric, or refused by :func:`check_samples`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a .npy file of {name} samples, got no file at {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"expected a .npy array of {name} samples in {path}, got an unreadable "
                         f"file ({error})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        kind = getattr(array, "dtype", type(array).__name__)
        raise ValueError(f"expected a numeric (N, D) array of {name} samples in {path}, got {kind}")
    return check_samples(torch.from_numpy(np.ascontiguousarray(array)).to(dtype), f"{name} ({path})",
                         min_samples=min_samples)


def check_pair(source: Tensor, target: Tensor, source_context: Tensor | None = None,
               target_context: Tensor | None = None) -> int:
    """Check two sample sets (and their optional per-sample contexts) belong to one OT problem.

    Args:
        source: ``(N, D)`` samples of P, already checked by :func:`check_samples`.
        target: ``(M, D)`` samples of Q, likewise.
        source_context: ``(N, C)`` context of each source sample (conditional maps) or None.
        target_context: ``(M, C)`` context of each target sample, given exactly when
            ``source_context`` is.

    Returns:
        ``D``, the dimension of the transport problem.

    Raises:
        ValueError: dimensions differ, dtypes or devices differ, one context without the other,
            a context with the wrong number of rows, columns or non-finite values.
    """
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"expected source and target samples of one dimension D, got source "
                         f"D = {source.shape[1]} and target D = {target.shape[1]}")
    if source.dtype != target.dtype or source.device != target.device:
        raise ValueError(f"expected source and target on one dtype and device, got "
                         f"{source.dtype}/{source.device} and {target.dtype}/{target.device}")
    if (source_context is None) != (target_context is None):
        raise ValueError("expected a context for both the source and the target samples or for "
                         "neither, got one only")
    if source_context is not None and target_context is not None:
        for ctx, samples, name in ((source_context, source, "source"),
                                   (target_context, target, "target")):
            check_samples(ctx, f"{name} context", min_samples=1)
            if ctx.shape[0] != samples.shape[0]:
                raise ValueError(f"expected one {name} context row per {name} sample "
                                 f"({samples.shape[0]}), got {ctx.shape[0]} rows")
            if ctx.dtype != samples.dtype or ctx.device != samples.device:
                raise ValueError(f"expected the {name} context on the samples' dtype and device "
                                 f"({samples.dtype}/{samples.device}), got {ctx.dtype}/{ctx.device}")
        if source_context.shape[1] != target_context.shape[1]:
            raise ValueError(f"expected source and target contexts of one width C, got "
                             f"{source_context.shape[1]} and {target_context.shape[1]}")
        check_context_overlap(source_context, target_context)
    return int(source.shape[1])


DISCRETE_CONTEXTS = 64
"""Contexts with at most this many distinct rows on each side are treated as discrete labels."""


def check_context_overlap(source_context: Tensor, target_context: Tensor) -> None:
    """Refuse source and target contexts that never meet.

    A conditional map is fitted per context from the source and target samples of that context;
    where the two never share a context the dual objective is unbounded below and training runs
    to minus infinity. Discrete contexts (at most ``DISCRETE_CONTEXTS`` distinct rows on each
    side) must share at least one row; otherwise the ranges of every column must intersect.

    Args:
        source_context: ``(N, C)`` contexts of the source samples.
        target_context: ``(M, C)`` contexts of the target samples.

    Raises:
        ValueError: no shared context row (discrete), or a column whose source and target ranges
            are disjoint (continuous).
    """
    rows_s = torch.unique(source_context, dim=0)
    rows_t = torch.unique(target_context, dim=0)
    if rows_s.shape[0] <= DISCRETE_CONTEXTS and rows_t.shape[0] <= DISCRETE_CONTEXTS:
        shared = (rows_s[:, None, :] == rows_t[None, :, :]).all(dim=2).any()
        if not bool(shared):
            raise ValueError(f"expected source and target contexts that share at least one value, got "
                             f"{rows_s.shape[0]} source and {rows_t.shape[0]} target context rows with "
                             "none in common (the conditional dual is unbounded)")
        return
    low_s, high_s = source_context.amin(dim=0), source_context.amax(dim=0)
    low_t, high_t = target_context.amin(dim=0), target_context.amax(dim=0)
    disjoint = ((high_s < low_t) | (high_t < low_s)).nonzero().flatten().tolist()
    if disjoint:
        j = disjoint[0]
        raise ValueError(f"expected overlapping source and target context ranges in every column, got "
                         f"column {j}: source [{float(low_s[j]):.4g}, {float(high_s[j]):.4g}], target "
                         f"[{float(low_t[j]):.4g}, {float(high_t[j]):.4g}] (the conditional dual is "
                         "unbounded)")


def second_moment(samples: Tensor) -> float:
    """``E|x|²`` of ``(N, D)`` samples (a Python float)."""
    return float(samples.detach().double().pow(2).sum(dim=1).mean())

"""Regression data for ``icnn train``: .npz/.csv files or built-in convex targets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def _shift(x: Tensor | None, y: Tensor) -> Tensor:
    """A smooth, non-convex context effect ``c(x)`` (0 without context), broadcast over ``y``."""
    if x is None:
        return torch.zeros_like(y)
    return torch.sin(x).mean(dim=1, keepdim=True).expand_as(y)


def _quadratic(x: Tensor | None, y: Tensor) -> Tensor:
    return (y - _shift(x, y)).square().sum(dim=1)


def _abs(x: Tensor | None, y: Tensor) -> Tensor:
    return (y - _shift(x, y)).abs().sum(dim=1)


def _logsumexp(x: Tensor | None, y: Tensor) -> Tensor:
    return torch.logsumexp(y + _shift(x, y), dim=1)


def _huber(x: Tensor | None, y: Tensor) -> Tensor:
    r = y - _shift(x, y)
    return torch.where(r.abs() <= 1, 0.5 * r.square(), r.abs() - 0.5).sum(dim=1)


TARGETS = {"quadratic": _quadratic, "abs": _abs, "logsumexp": _logsumexp, "huber": _huber}
"""Built-in targets ``t(x, y)``, convex in ``y``: with ``c(x) = mean(sin x)`` (0 for no x),
quadratic ``‖y − c‖²``, abs ``‖y − c‖₁``, logsumexp ``log Σ exp(y + c)``, huber."""


def builtin_data(target: str, n_samples: int, y_dim: int, x_dim: int, seed: int
                 ) -> tuple[Tensor | None, Tensor, Tensor]:
    """``(x or None, y, target)`` with ``x, y ~ N(0, I)``; ``x_dim = 0`` for no context.

    Returns:
        ``x: (n_samples, x_dim)`` or None, ``y: (n_samples, y_dim)``, ``target: (n_samples,)``,
        float64.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}")
    for name, value, low in (("n_samples", n_samples, 1), ("y_dim", y_dim, 1), ("x_dim", x_dim, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"expected {name} an int >= {low}, got {value!r}")
    generator = torch.Generator().manual_seed(seed)
    y = torch.randn(n_samples, y_dim, generator=generator, dtype=torch.float64)
    x = torch.randn(n_samples, x_dim, generator=generator, dtype=torch.float64) if x_dim else None
    return x, y, TARGETS[target](x, y)


def load_file(path: str | Path) -> tuple[Tensor | None, Tensor, Tensor]:
    """Read ``(x or None, y, target)``.

    - ``.npz``: arrays ``y`` ``(n, y_dim)``, ``target`` ``(n,)`` and optionally ``x`` ``(n, x_dim)``;
    - ``.csv``: a header row; columns named ``x*`` (context), ``y*`` (convex input) and ``target``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"y", "target"} - set(arrays.files)
            if missing:
                raise ValueError(f"{path} must hold arrays 'y' and 'target' (and optionally "
                                 f"'x'); missing {sorted(missing)}, found {arrays.files}")
            columns = {k: np.asarray(arrays[k], dtype=np.float64) for k in arrays.files}
        x, y, target = columns.get("x"), columns["y"], columns["target"]
    elif path.suffix == ".csv":
        with open(path, newline="") as handle:
            # blank lines (a trailing newline or two) carry no data
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
        if len(rows) < 2:
            raise ValueError(f"{path} needs a header row and at least one data row")
        header = [name.strip() for name in rows[0]]
        ragged = [i + 2 for i, row in enumerate(rows[1:]) if len(row) != len(header)]
        if ragged:
            raise ValueError(f"{path}: expected {len(header)} values a row (as the header), "
                             f"rows {ragged[:5]} differ")
        try:
            values = np.asarray(rows[1:], dtype=np.float64)
        except ValueError as error:
            raise ValueError(f"{path}: expected numbers in every column ({error})") from None
        x_cols = [i for i, name in enumerate(header) if name.startswith("x")]
        y_cols = [i for i, name in enumerate(header) if name.startswith("y")]
        if "target" not in header or not y_cols:
            raise ValueError(f"{path} needs columns y* and target (and optionally x*), got "
                             f"{header}")
        x = values[:, x_cols] if x_cols else None
        y = values[:, y_cols]
        target = values[:, header.index("target")]
    else:
        raise ValueError(f"data file must be .npz or .csv, got {path.suffix!r}")
    y = y.reshape(len(y), -1)
    target = target.reshape(-1)
    if x is not None:
        x = x.reshape(len(x), -1)
    if len(target) != len(y) or (x is not None and len(x) != len(y)):
        raise ValueError(f"{path}: x, y and target must have the same number of rows, got "
                         f"{None if x is None else len(x)}, {len(y)}, {len(target)}")
    if len(y) == 0:
        raise ValueError(f"{path}: expected at least one row of data, got none")
    for name, array in (("x", x), ("y", y), ("target", target)):
        if array is not None and not np.isfinite(array).all():
            raise ValueError(f"{path}: expected finite values, {name} has "
                             f"{int((~np.isfinite(array)).sum())} NaN/inf entries")
    return (None if x is None else _tensor(x)), _tensor(y), _tensor(target)


def _tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))

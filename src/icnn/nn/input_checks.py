"""Input checks at the door of every model: shapes, dtypes and finite values.

The switch :func:`validation` (exported as ``icnn.validation`` and ``icnn.nn.validation``) turns
them off inside solver loops; this module is ``icnn.nn.input_checks`` so the function does not
hide it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

_ENABLED = True


@contextlib.contextmanager
def validation(enabled: bool) -> Iterator[None]:
    """Turn input validation on or off inside a block (solvers validate once, then loop fast)."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, enabled
    try:
        yield
    finally:
        _ENABLED = previous


def validation_enabled() -> bool:
    """Whether public forwards check their inputs now (see :func:`validation`)."""
    return _ENABLED


def check_tensor(
    name: str, value: object, trailing_shape: Sequence[int], *, dtype: torch.dtype | None = None,
    batch: int | None = None, check_finite: bool = True,
) -> Tensor:
    """Check ``value`` is a floating tensor of shape ``(batch, *trailing_shape)``.

    Raises:
        ValueError: naming what was expected and what came.
    """
    trailing = tuple(int(s) for s in trailing_shape)
    expected = "(batch, " + ", ".join(str(s) for s in trailing) + ")"
    if not isinstance(value, Tensor):
        raise ValueError(f"expected {name} to be a torch.Tensor of shape {expected}, "
                         f"got {type(value).__name__}")
    if value.ndim != len(trailing) + 1 or tuple(value.shape[1:]) != trailing:
        raise ValueError(f"expected {name} of shape {expected}, got {tuple(value.shape)}")
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"expected {name} with batch size {batch}, got {value.shape[0]}")
    if not value.is_floating_point():
        raise ValueError(f"expected {name} to be a floating-point tensor, got {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise ValueError(
            f"expected {name} of dtype {dtype} (the model's), got {value.dtype}; "
            f"convert with {name}.to({dtype}) or the model with model.to({value.dtype})"
        )
    if check_finite and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"expected finite values in {name}, got {bad} NaN/inf entries")
    return value

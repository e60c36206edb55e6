"""Feasible sets for the convex input: the whole space or a box, plus fixed coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Box:
    """The box ``{y : lo <= y <= hi}``.

    Args:
        lo: lower bound, a scalar or a tensor broadcastable to ``y``'s per-example shape (or to
            the full ``(batch, *shape)``). Infinite bounds are allowed (``Box(0, math.inf)``).
        hi: upper bound, same forms as ``lo``.

    Example:
        ``icnn.Box(0.0, 1.0)`` is ``[0, 1]^n``, the domain of multi-label prediction.
    """

    lo: float | Tensor = 0.0
    hi: float | Tensor = 1.0

    def __post_init__(self) -> None:
        lo = torch.as_tensor(self.lo, dtype=torch.float64)
        hi = torch.as_tensor(self.hi, dtype=torch.float64)
        if torch.isnan(lo).any() or torch.isnan(hi).any():
            raise ValueError("Box bounds must not be NaN")
        try:
            bad = bool((lo > hi).any())
        except RuntimeError as error:
            raise ValueError(f"Box lo {tuple(lo.shape)} and hi {tuple(hi.shape)} do not "
                             "broadcast together") from error
        if bad:
            raise ValueError(f"Box needs lo <= hi everywhere, got lo > hi at "
                             f"{int((lo > hi).sum())} entries")
        if bool((lo == torch.inf).any()) or bool((hi == -torch.inf).any()):
            raise ValueError("Box bounds must leave a point to stand on: lo = +inf or hi = -inf "
                             "makes the box empty; use finite bounds or lo = -inf, hi = +inf")

    def bounds(self, batch: int, shape: tuple[int, ...], dtype: torch.dtype,
               device: torch.device) -> tuple[Tensor, Tensor]:
        """``(lo, hi)`` expanded to ``(batch, *shape)``; raises if the shapes do not fit."""
        full = (batch, *shape)
        out = []
        for name, bound in (("lo", self.lo), ("hi", self.hi)):
            t = torch.as_tensor(bound, dtype=dtype, device=device)
            try:
                out.append(torch.broadcast_to(t, full).clone())
            except RuntimeError as error:
                raise ValueError(
                    f"Box {name} of shape {tuple(t.shape)} does not broadcast to y's shape {full}"
                ) from error
        return out[0], out[1]

    @property
    def is_unit(self) -> bool:
        """True for ``[0, 1]^n``."""
        return _is_scalar(self.lo, 0.0) and _is_scalar(self.hi, 1.0)


def _is_scalar(value: float | Tensor, target: float) -> bool:
    t = torch.as_tensor(value)
    return bool((t == target).all())


def unbounded() -> Box:
    """The whole space, as a box with infinite bounds."""
    return Box(-math.inf, math.inf)

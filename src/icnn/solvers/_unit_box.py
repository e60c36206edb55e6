"""The feasible box of a :class:`Problem` rescaled to ``[0, 1]^n``, as both bundle methods use it.

``y = lo + width * u`` with ``u in [0, 1]^n`` flattened over the per-example shape. Fixed
coordinates (and degenerate ones with ``lo == hi``) have ``width = 0``: ``u`` is 0 there and the
gradient in ``u`` vanishes, so cutting planes and regularisers live on the free coordinates only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .certificate import rounding_allowance
from .problem import Problem


@dataclass
class UnitBox:
    """Affine map between ``y`` ``(batch, *shape)`` and ``u`` ``(batch, n)`` in the unit box.

    Attributes:
        lo, width: ``(batch, n)``; ``width = hi - lo`` on free coordinates, 0 elsewhere.
        free: ``(batch, n)`` bool, coordinates with ``width > 0``.
        shape: per-example shape of ``y``.
    """

    lo: Tensor
    width: Tensor
    free: Tensor
    shape: tuple[int, ...]

    @classmethod
    def of(cls, problem: Problem, method: str) -> UnitBox:
        """Build the map; raises ValueError when a free coordinate has an infinite bound."""
        lo = problem.lo.reshape(problem.batch, -1)
        hi = problem.hi.reshape(problem.batch, -1)
        free = problem.free.reshape(problem.batch, -1)
        unbounded = free & ~(torch.isfinite(lo) & torch.isfinite(hi))
        if bool(unbounded.any()):
            raise ValueError(
                f"method {method!r} needs a bounded domain: every free coordinate needs finite "
                f"lo and hi, got {int(unbounded.sum())} free coordinates with an infinite bound; "
                "pass domain=icnn.Box(lo, hi) with finite bounds, or use method='lbfgs' or 'pgd'"
            )
        width = torch.where(free, hi - lo, torch.zeros_like(lo))
        free = free & (width > 0)
        return cls(lo=torch.where(torch.isfinite(lo), lo, hi), width=width, free=free,
                   shape=problem.shape)

    def to_y(self, u: Tensor) -> Tensor:
        """``(batch, n) -> (batch, *shape)``."""
        return (self.lo + self.width * u).reshape(-1, *self.shape)

    def to_u(self, y: Tensor) -> Tensor:
        """``(batch, *shape) -> (batch, n)``, clamped into ``[0, 1]`` and 0 off the free set."""
        y = y.reshape(self.lo.shape)
        u = (y - self.lo) / torch.where(self.free, self.width, torch.ones_like(self.width))
        return torch.where(self.free, u.clamp(0.0, 1.0), torch.zeros_like(u))

    def evaluate(self, problem: Problem, u: Tensor, index: Tensor | None = None
                 ) -> tuple[Tensor, Tensor, Tensor]:
        """``f (b,)``, ``grad_u f (b, n)`` and ``y (b, *shape)`` at ``u`` ``(b, n)``.

        ``index`` (1-D long): ``u`` holds only those examples (``b = len(index)``); None: all.
        """
        lo = self.lo if index is None else self.lo[index]
        width = self.width if index is None else self.width[index]
        y = (lo + width * u).reshape(-1, *self.shape)
        value, grad = problem.value_and_grad(y, index=index)
        return value, grad.reshape(u.shape) * width, y

    def plane_allowance(self, value: Tensor, grad: Tensor, u: Tensor,
                        index: Tensor | None = None) -> Tensor:
        """The rounding allowance ``(b,)`` (float64) of the plane through ``(u, f)``.

        :func:`~icnn.solvers.certificate.rounding_allowance` of the plane ``grad^T u + (f - grad^T u)``
        through ``(u, f)`` (0 in float64).

        ``grad`` is in ``u``; ``|y| <= |lo| + width u`` gives the allowance's ``|grad_y y|`` as
        ``|grad_u| (u + |lo| / width)`` (``grad_u`` is 0 off the free coordinates).
        """
        lo = self.lo if index is None else self.lo[index]
        width = self.width if index is None else self.width[index]
        reach = u + lo.abs() / torch.where(width > 0, width, torch.ones_like(width))
        return rounding_allowance(value, grad, reach)


def choose_slot(valid: Tensor, lam: Tensor, first: int = 0) -> Tensor:
    """Per example, the plane slot a new plane goes into: an empty one, else the least active.

    Args:
        valid: ``(batch, k)`` bool, occupied slots.
        lam: ``(batch, k)`` current plane weights.
        first: slots before ``first`` are reserved (never chosen).

    Returns:
        ``(batch,)`` slot indices.
    """
    score = torch.where(valid, lam, torch.full_like(lam, -1.0))
    score[:, :first] = torch.inf
    return score.argmin(-1)


def put(store: Tensor, slot: Tensor, value: Tensor, where: Tensor) -> Tensor:
    """Write ``value`` (``(batch, *rest)``) into ``store[b, slot[b]]`` for rows with ``where``."""
    index = slot.view(-1, 1, *([1] * (store.ndim - 2)))
    index = index.expand(store.shape[0], 1, *store.shape[2:])
    current = store.gather(1, index).squeeze(1)
    new = torch.where(where.view(-1, *([1] * (value.ndim - 1))), value, current)
    return store.scatter(1, index, new.unsqueeze(1))

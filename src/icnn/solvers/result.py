"""What every solver returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class ArgminResult:
    """Solution of ``min_{y in domain} f(x, y)`` for a batch.

    Attributes:
        y: ``(batch, *shape)`` the minimiser found.
        value: ``(batch,)`` ``f(x, y)`` at ``y`` (for ``bundle_entropy``: of ``f``, not ``f - H``).
        iterations: iterations run (the maximum over the batch).
        converged: ``(batch,)`` bool, True only where the method's stopping test passed.
        gap: ``(batch,)`` certified optimality gap (upper minus lower bound) where the method
            yields one (bundle methods, exact), else None.
        lower_bound: ``(batch,)`` certified lower bound on the optimum, or None.
        method: the method that ran (after ``"auto"`` resolved).
        objective: ``(batch,)`` the objective the method minimised at ``y`` (equals ``value``
            except for ``bundle_entropy``, which minimises ``f - H``).
        info: method-specific extras (e.g. active cutting planes for implicit gradients).
    """

    y: Tensor
    value: Tensor
    iterations: int
    converged: Tensor
    method: str
    gap: Tensor | None = None
    lower_bound: Tensor | None = None
    objective: Tensor | None = None
    info: dict = field(default_factory=dict)

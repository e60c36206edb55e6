"""Pieces shared by the batched first-order methods (``pgd``, ``lbfgs``, unrolling)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .certificate import CutAggregator
from .problem import Problem


@dataclass
class Progress:
    """What a solver reports to ``callback`` after each iteration.

    Attributes:
        iteration: iterations done (1-based).
        y: ``(batch, *shape)`` best feasible point so far.
        value: ``(batch,)`` its value.
        evaluations: ``(batch,)`` gradient evaluations spent on each example so far.
        converged: ``(batch,)`` examples whose stopping test has passed.
    """

    iteration: int
    y: Tensor
    value: Tensor
    evaluations: Tensor
    converged: Tensor


Callback = Callable[[Progress], None]


def initial_point(problem: Problem, y0: Tensor | None) -> Tensor:
    """``y0`` projected onto the domain, or the box centre (0 where a bound is infinite).

    A new contiguous tensor either way (solvers write into it, and the order of their
    per-example sums, and so their last bits, would otherwise follow ``y0``'s memory layout).
    """
    if y0 is not None:
        return problem.project(y0.detach().to(problem.lo.dtype)).contiguous()
    return problem.centre.clone()


def whole(t: Tensor) -> Tensor:
    """``take`` for the whole batch in order: ``t`` itself (no gather)."""
    return t


class Rows:
    """``take(t) = t[index]``: the rows a part-of-batch iteration runs on.

    ``dim``: where the batch is in ``t`` (1 for a solver's memory ``(slots, batch, ...)``).
    """

    def __init__(self, index: Tensor, dim: int = 0) -> None:
        self.at = (slice(None),) * dim + (index,)

    def __call__(self, t: Tensor) -> Tensor:
        """``t[index]`` along ``dim``."""
        return t[self.at]


def put(store: Tensor, index: Tensor, new: Tensor, every: bool, dim: int = 0) -> Tensor:
    """``store`` with rows ``index`` (along ``dim``) set to ``new``.

    ``new`` itself when ``index`` is every row, in order (``every``).
    """
    if every:
        return new
    store[(slice(None),) * dim + (index,)] = new
    return store


def flat_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-example inner product ``(batch,)``."""
    return (a.flatten(1) * b.flatten(1)).sum(dim=1)


def projected_step(grad: Tensor, y: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """``P(y - grad) - y`` computed as ``clamp(-grad, lo - y, hi - y)``, same shape as ``y``.

    Equal in exact arithmetic, but exactly ``-grad`` on an unbounded domain, where ``(y - grad)
    - y`` rounds to 0 once ``|y| >> |grad|`` (a run-away iterate would read as stationary).
    """
    return torch.maximum(torch.minimum(-grad, hi - y), lo - y)


def flat_norm(a: Tensor) -> Tensor:
    """The Euclidean norm of each example of ``a: (batch, *shape)``, ``(batch,)``."""
    return a.flatten(1).norm(dim=1)


class Stopping:
    """The per-example stopping test of the iterative methods.

    With a certificate (a convex energy on a bounded domain or with ``mu > 0``): ``best -
    lower_bound <= tol * max(1, |best|)``, a certified relative suboptimality. Without one (an
    unbounded domain and no strong convexity, allowed only with ``allow_unbounded=True``, or a
    model that is not convex, whose cutting planes bound nothing): a stationarity test, the
    projected-gradient-mapping norm relative to its value at the start, ``||G(y)|| <= tol *
    ||G(y0)||`` (solvers record ``||G(y0)||`` with :meth:`start`). A test relative to ``|f(y)|``
    would pass for a run-away iterate of a problem unbounded below, whose ``|f|`` grows without
    bound while its gradient does not shrink.
    """

    def __init__(self, problem: Problem, tol: float, host_reads: bool | None = None) -> None:
        self.tol = tol
        self.mu = problem.traits.strong_convexity
        self.certified = problem.traits.convex and (problem.bounded or self.mu > 0.0)
        # host_reads: see CutAggregator (False in a compiled solver: no host read to trace)
        self.cuts = CutAggregator(problem.lo, problem.hi, self.mu, host_reads=host_reads)
        self.reference: Tensor | None = None

    def start(self, mapping_norm: Tensor) -> None:
        """Record ``||G(y0)|| (batch,)``, the reference of the stationarity test (first call only)."""
        if self.reference is None:
            self.reference = mapping_norm.detach().clone()

    def scale(self, value: Tensor) -> Tensor:
        """``max(1, |value|)``, the scale of the relative tolerance."""
        return value.abs().clamp_min(1.0)

    def add_cut(self, y: Tensor, value: Tensor, grad: Tensor, index: Tensor | None) -> None:
        """Add the cut at ``y`` for the rows ``index`` (None: the whole batch, in order).

        A cut with a non-finite value or gradient (a barrier's face, an overflow) bounds nothing:
        its rows keep their previous bound (masked; see :class:`CutAggregator` on host reads).
        """
        if self.certified:
            self.cuts.add(y, value, grad, index)

    def aggregate_gradient(self, index: Tensor, like: Tensor) -> Tensor | None:
        """Min-norm combination of recent gradients (rows ``index``), or None without cuts."""
        if not self.certified or self.mu > 0.0:
            return None
        return self.cuts.aggregate_gradient(index).to(like.dtype).reshape(like.shape)

    def passed(self, best: Tensor, mapping_norm: Tensor | None, index: Tensor | None) -> Tensor:
        """``(len(index),)`` bool: whether the examples ``index`` pass the stopping test.

        ``best`` and ``mapping_norm`` hold the rows ``index`` (None: the whole batch, in order).

        ``mapping_norm`` (the projected-gradient norm) is read only by the stationarity test:
        callers may pass None where :attr:`certified` (and must pass it elsewhere).

        Raises:
            ValueError: ``mapping_norm`` None for an uncertified test.
        """
        if self.certified:
            best = best.double()
            gap = best - (self.cuts.bound if index is None else self.cuts.bound[index])
            return gap <= self.tol * self.scale(best)
        if mapping_norm is None:
            raise ValueError("expected the projected-gradient norm for the stationarity test "
                             "(this problem has no certificate), got None")
        if self.reference is None:
            raise ValueError("expected the start's projected-gradient norm (Stopping.start) before "
                             "the stationarity test, got none")
        reference = self.reference if index is None else self.reference[index]
        return mapping_norm <= self.tol * reference

    def confirmed(self, best: Tensor) -> Tensor:
        """``(batch,)`` whether the whole batch's stopping test passes against the reported bound.

        The reported bound is lowered by its planes' rounding allowance; True where uncertified.
        """
        if not self.certified:
            return torch.ones_like(best, dtype=torch.bool)
        gap = best.double() - self.cuts.certified_bound
        return gap <= self.tol * self.scale(best.double())

    def gap(self, best: Tensor) -> Tensor | None:
        """The reported gap: against the bound lowered by its planes' rounding allowance."""
        if not self.certified:
            return None
        return (best.double() - self.cuts.certified_bound).clamp_min(0.0).to(best.dtype)

    def lower_bound(self, dtype: torch.dtype) -> Tensor | None:
        """The certified lower bound ``(batch,)`` in ``dtype``, or None when uncertified."""
        return self.cuts.certified_bound.to(dtype) if self.certified else None


def compiled_halves(try_step: Callable, advance: Callable, backend: str | None
                    ) -> tuple[Callable, Callable]:
    """A solver's two iteration halves compiled with ``backend``, or as they are (None).

    Cached per functions and backend, so every solve of a process reuses one pair (and the
    graphs it captured).
    """
    if backend is None:
        return try_step, advance
    key = (try_step, advance, backend)
    if key not in _COMPILED:
        _COMPILED[key] = (torch.compile(try_step, backend=backend),
                          torch.compile(advance, backend=backend))
    return _COMPILED[key]


_COMPILED: dict[tuple[Callable, Callable, str], tuple[Callable, Callable]] = {}

r"""Accelerated projected gradient (FISTA) with per-example backtracking and adaptive restart.

Per example, iteration ``k`` extrapolates ``v = y_k + beta_k (y_k - y_{k-1})``, takes the
projected step ``y^+ = P(v - grad f(v) / L)`` and accepts it once the sufficient-decrease test

.. math:: f(y^+) \le f(v) + \nabla f(v)^T (y^+ - v) + \tfrac{L}{2} \|y^+ - v\|^2

holds, doubling ``L`` for the examples where it fails (Beck & Teboulle, 2009); after each
iteration ``L`` shrinks by ``0.8`` so the step can grow again. When a step would increase ``f``
the momentum restarts and the step is discarded (O'Donoghue & Candès, 2015), which keeps the
iterates monotone. Examples whose stopping test (:class:`icnn.solvers.iterative.Stopping`) passes
are frozen; only the others are evaluated. The paper's Section 4.2 "gradient descent" inference,
made reliable.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .iterative import (
    Callback,
    Progress,
    Stopping,
    flat_dot,
    flat_norm,
    initial_point,
    projected_step,
    step_scale,
)
from .problem import Problem
from .result import ArgminResult

SHRINK = 0.8
MAX_BACKTRACKS = 40


def solve_pgd(problem: Problem, y0: Tensor | None, *, tol: float, max_iter: int,
              callback: Callback | None = None,
              lipschitz: float | Tensor | None = None) -> ArgminResult:
    """Minimise ``f(x, y)`` over the problem's domain by accelerated projected gradient.

    Args:
        problem: the batched problem.
        y0: ``(batch, *shape)`` warm start (projected onto the domain) or None (box centre).
        tol: relative tolerance of the stopping test.
        max_iter: iterations (one gradient evaluation each, plus backtracking evaluations).
        callback: called with a :class:`Progress` after every iteration.
        lipschitz: first estimate of the gradient's Lipschitz constant ``L``, a positive float or
            ``(batch,)`` (e.g. ``info["lipschitz"]`` of an earlier solve of a similar problem);
            None: ``||grad f(y0)|| / (half the box width)``, a first step across half the box.
            A good estimate saves the backtracking evaluations of the first iterations; any
            positive value is safe (backtracking still enforces sufficient decrease).

    Returns:
        :class:`ArgminResult`; ``info["evaluations"]`` counts gradient evaluations per example,
        ``info["lipschitz"]`` holds each example's last accepted ``L`` ``(batch,)``.
    """
    batch, device = problem.batch, problem.lo.device
    stop = Stopping(problem, tol)
    y = initial_point(problem, y0)
    y_prev = y.clone()
    value = problem.value(y).detach()
    theta = torch.ones(batch, dtype=y.dtype, device=device)
    lipschitz = _first_lipschitz(lipschitz, batch, y.dtype, device)  # 0: not yet estimated
    accepted = lipschitz.clone()
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    evaluations = torch.zeros(batch, dtype=torch.long, device=device)
    eps = 10 * torch.finfo(y.dtype).eps
    scale = step_scale(problem)
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - iteration is reported
        index = (~done).nonzero().squeeze(1)
        if index.numel() == 0:
            iteration -= 1
            break
        # the whole batch running (always so at batch 1): no gathers and scatters
        every = index.numel() == batch
        sel = None if every else index
        take = _whole if every else _Rows(index)
        y_i, prev_i, theta_i = take(y), take(y_prev), take(theta)
        theta_next = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * theta_i.square()))
        beta = ((theta_i - 1.0) / theta_next).view(-1, *([1] * (y.dim() - 1)))
        v = y_i + beta * (y_i - prev_i)
        value_v, grad_v = problem.value_and_grad(v, index=sel)
        if every:
            evaluations += 1
        else:
            evaluations[index] += 1
        stop.add_cut(v, value_v, grad_v, sel)
        lip = take(lipschitz)
        fresh = lip == 0
        lip = torch.where(fresh, flat_norm(grad_v) / take(scale), lip)
        lip = torch.where(lip > 0, lip, torch.ones_like(lip))
        y_new, value_new = _backtrack(problem, index, v, value_v, grad_v, lip, eps, every)
        value_i = take(value)
        increased = value_new > value_i
        keep = increased.view(-1, *([1] * (y.dim() - 1)))
        # restart: drop the step and the momentum (next v = y); else move on
        accepted = _put(accepted, index, lip, every)
        lipschitz = _put(lipschitz, index, lip * SHRINK, every)
        y_prev = _put(y_prev, index, y_i, every)
        y = _put(y, index, torch.where(keep, y_i, y_new), every)
        value = _put(value, index, torch.where(increased, value_i, value_new), every)
        theta = _put(theta, index, torch.where(increased, torch.ones_like(theta_i), theta_next),
                     every)
        mapping = None if stop.certified else _mapping_norm(problem, index, v, grad_v, lip, every)
        if mapping is not None and iteration == 1:
            stop.start(mapping)  # v = y0 on the first iteration (theta = 1: no momentum)
        done = _put(done, index, stop.passed(take(value), mapping, sel), every)
        if callback is not None:
            callback(Progress(iteration, y.clone(), value.clone(), evaluations.clone(),
                              done.clone()))
    return ArgminResult(
        y=y, value=value, iterations=iteration, converged=done & stop.confirmed(value), method="pgd",
        gap=stop.gap(value), lower_bound=stop.lower_bound(value.dtype), objective=value,
        info={"evaluations": evaluations, "lipschitz": accepted},
    )


def _first_lipschitz(lipschitz: float | Tensor | None, batch: int, dtype: torch.dtype,
                     device: torch.device) -> Tensor:
    """``(batch,)`` first estimates of ``L`` (0 where the solver should estimate it itself)."""
    if lipschitz is None:
        return torch.zeros(batch, dtype=dtype, device=device)
    first = torch.as_tensor(lipschitz, dtype=dtype, device=device)
    if first.dim() == 0:
        first = first.expand(batch)
    if first.shape != (batch,) or not bool(torch.isfinite(first).all() and (first > 0).all()):
        raise ValueError(
            f"expected lipschitz to be a positive finite float or ({batch},) tensor, "
            f"got {tuple(first.shape)} with values {first.flatten()[:4].tolist()}"
        )
    return first.clone()


def _whole(t: Tensor) -> Tensor:
    return t


class _Rows:
    """``take(t) = t[index]``."""

    def __init__(self, index: Tensor) -> None:
        self.index = index

    def __call__(self, t: Tensor) -> Tensor:
        return t[self.index]


def _put(store: Tensor, index: Tensor, new: Tensor, every: bool) -> Tensor:
    """``store`` with rows ``index`` set to ``new``; ``new`` itself when ``index`` is every row."""
    if every:
        return new
    store[index] = new
    return store


def _mapping_norm(problem: Problem, index: Tensor, v: Tensor, grad_v: Tensor, lip: Tensor,
                  every: bool) -> Tensor:
    """``L ||P(v - g / L) - v||`` per row, by :func:`projected_step`.

    Not rounded to 0 when ``|v| >> |g| / L`` on an unbounded domain, as ``L ||y_new - v||`` is.
    """
    lo, hi = (problem.lo, problem.hi) if every else (problem.lo[index], problem.hi[index])
    shape = (-1, *([1] * (v.dim() - 1)))
    return lip * flat_norm(projected_step(grad_v / lip.view(shape), v, lo, hi))


def _backtrack(problem: Problem, index: Tensor, v: Tensor, value_v: Tensor, grad_v: Tensor,
               lip: Tensor, eps: float, every: bool = False) -> tuple[Tensor, Tensor]:
    """Projected steps from ``v`` with ``L`` doubled until sufficient decrease; ``lip`` in place.

    ``every``: ``index`` is the whole batch (the energy is then called without an index).
    """
    lo, hi = (problem.lo, problem.hi) if every else (problem.lo[index], problem.hi[index])
    shape = (-1, *([1] * (v.dim() - 1)))
    # first trial on every row without gathers; the rows that fail are retried below
    trial = torch.maximum(torch.minimum(v - grad_v / lip.view(shape), hi), lo)
    with torch.no_grad():
        value_t = problem.value(trial, None if every else index)
    step = trial - v
    model = value_v + flat_dot(grad_v, step) + 0.5 * lip * flat_dot(step, step)
    ok = value_t <= model + eps * value_v.abs().clamp_min(1.0)
    y_new, value_new = trial, value_t
    if bool(ok.all()):
        return y_new, value_new
    pending = (~ok).nonzero().squeeze(1)
    lip[pending] *= 2.0
    for _ in range(MAX_BACKTRACKS - 1):
        v_p, g_p, l_p = v[pending], grad_v[pending], lip[pending]
        trial = torch.maximum(torch.minimum(v_p - g_p / l_p.view(shape), hi[pending]),
                              lo[pending])
        with torch.no_grad():
            value_t = problem.value(trial, index[pending])
        step = trial - v_p
        model = value_v[pending] + flat_dot(g_p, step) + 0.5 * l_p * flat_dot(step, step)
        ok = value_t <= model + eps * value_v[pending].abs().clamp_min(1.0)
        y_new[pending] = trial
        value_new[pending] = value_t
        pending = pending[~ok]
        if pending.numel() == 0:
            break
        lip[pending] *= 2.0
    return y_new, value_new

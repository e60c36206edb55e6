r"""Batched projected L-BFGS with a per-example line search.

Every example keeps its own memory of the last ``memory`` pairs ``s = y_{k+1} - y_k``,
``r = g_{k+1} - g_k`` and takes its own step; the batch shares only the tensor operations.
Bounds are handled as in projected quasi-Newton methods (Kim, Sra & Dhillon, 2010): the
coordinates at a bound whose gradient points outward are held (the *active set*), the two-loop
recursion runs on the others, and the trial points ``P(y + alpha d)`` follow the projection arc.
``alpha`` starts at 1 and halves per example until the Armijo test

.. math:: f(P(y + \alpha d)) \le f(y) + c_1 \min(0, \nabla f(y)^T (P(y + \alpha d) - y))

passes; each trial evaluates value and gradient together, so the accepted point's gradient is
free. A pair enters the memory only if its curvature ``s^T r`` is positive. When a direction is
not a descent direction, or a line search fails, that example's memory is reset and it takes a
scaled projected-gradient step. Stopping as :class:`icnn.solvers.iterative.Stopping`.

For piecewise-linear ICNNs the function is not smooth; quasi-Newton steps with an inexact line
search still work well there (Lewis & Overton, 2013), and the certificate, not the gradient,
decides when to stop.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .iterative import (
    Callback,
    Progress,
    Rows,
    Stopping,
    compiled_halves,
    flat_dot,
    initial_point,
    projected_step,
    put,
    whole,
)
from .problem import Problem
from .result import ArgminResult

ARMIJO = 1e-4
MAX_BACKTRACKS = 20
MAX_FAILURES = 2


def solve_lbfgs(problem: Problem, y0: Tensor | None, *, tol: float, max_iter: int,
                memory: int = 10, callback: Callback | None = None,
                compile: str | None = None) -> ArgminResult:
    """Minimise ``f(x, y)`` over the problem's domain by projected L-BFGS.

    Args:
        problem: the batched problem.
        y0: ``(batch, *shape)`` warm start (projected onto the domain) or None (box centre).
        tol: relative tolerance of the stopping test.
        max_iter: iterations (each one line search of one or more evaluations).
        memory: number of curvature pairs kept per example.
        callback: called with a :class:`Progress` after every iteration.
        compile: None (eager) or a :func:`torch.compile` backend: the two halves of a
            whole-batch iteration run compiled, the energy inlined (:func:`_try_step`: the
            direction and the first trial; :func:`_advance`, when every first trial passed:
            the cut, the curvature pair and the stopping test). Its two-loop recursion then
            runs over all ``memory`` slots (one shape for every iteration; the empty ones add
            zeros), and rounding may differ from eager. Iterations on part of the batch and
            backtracking stay eager. The same limit on compiled versions as ``pgd`` (see
            :func:`icnn.solvers.pgd.solve_pgd`).

    Returns:
        :class:`ArgminResult`; ``info["evaluations"]`` counts gradient evaluations per example,
        ``info["stalled"]`` marks examples frozen after repeated line-search failures.
    """
    if memory < 1:
        raise ValueError(f"memory must be >= 1, got {memory}")
    batch, device = problem.batch, problem.lo.device
    # a compiled iteration reads nothing back to the host (its cuts are masked on the device)
    stop = Stopping(problem, tol, host_reads=False if compile else None)
    y = initial_point(problem, y0)
    n = y[0].numel()
    all_rows = torch.arange(batch, device=device)
    value, grad = problem.value_and_grad(y)
    stop.add_cut(y, value, grad, None)
    evaluations = torch.ones(batch, dtype=torch.long, device=device)
    s_mem = y.new_zeros(memory, batch, n)
    r_mem = y.new_zeros(memory, batch, n)
    filled = torch.zeros(memory, batch, dtype=torch.bool, device=device)
    failures = torch.zeros(batch, dtype=torch.long, device=device)
    start_mapping = None if stop.certified else _mapping_norm(problem, y, grad, all_rows)
    if start_mapping is not None:
        stop.start(start_mapping)
    done = stop.passed(value, start_mapping, None)
    stalled = torch.zeros(batch, dtype=torch.bool, device=device)
    lo_flat, hi_flat = problem.lo.reshape(batch, n), problem.hi.reshape(batch, n)
    free_flat = problem.free.reshape(batch, n)
    first_step = problem.step_scale
    eps = 10 * torch.finfo(y.dtype).eps
    fused = compiled_halves(_try_step, _advance, compile)
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - iteration is reported
        index = (~done & ~stalled).nonzero().squeeze(1)
        if index.numel() == 0:
            iteration -= 1
            break
        # the whole batch running: views instead of gathers and scatters (the same values)
        every = index.numel() == batch
        sel = None if every else index
        take = whole if every else Rows(index)
        compiled = every and compile is not None
        try_step, advance = fused if compiled else (_try_step, _advance)
        y_i = take(y).reshape(-1, n)
        g_i = take(grad).reshape(-1, n)
        value_i, failures_i = take(value), take(failures)
        lo_i, hi_i = take(lo_flat), take(hi_flat)
        # pairs are pushed at the end of an iteration, newest first: slots from iteration - 1
        # on are empty in every row, and the recursion skips them (they add zeros: the same
        # direction, up to the sign of a zero component); compiled, it runs over every slot
        used = memory if compiled else min(iteration - 1, memory)
        rows_of = whole if every else Rows(index, dim=1)  # the memory is (slots, batch, ...)
        s_rows, r_rows, filled_rows = rows_of(s_mem), rows_of(r_mem), rows_of(filled)
        trial = try_step(problem, stop, sel, index, y_i, g_i, value_i, s_rows[:used],
                         r_rows[:used], filled_rows[:used], failures_i, take(first_step),
                         lo_i, hi_i, take(free_flat), eps)
        first_passed = bool(trial.ok.all())  # most iterations: every first trial passes
        if first_passed:
            accepted, y_new, value_new, grad_new = trial.ok, trial.y, trial.value, trial.grad
            trials = torch.ones_like(failures_i)
        else:  # backtracking adds the cuts of the rows as they pass
            advance = _advance
            accepted, y_new, value_new, grad_new, trials = _backtrack(
                problem, index, y_i, value_i, g_i, trial, lo_i, hi_i, eps, stop)
        evaluations = put(evaluations, index, take(evaluations) + trials, every)
        step = advance(problem, stop, sel, index, y_i, g_i, value_i, failures_i, accepted,
                       y_new, value_new, grad_new, s_rows, r_rows, filled_rows, trial.descent,
                       eps, first_passed)
        s_mem = put(s_mem, index, step.s_mem, every, dim=1)
        r_mem = put(r_mem, index, step.r_mem, every, dim=1)
        filled = put(filled, index, step.filled, every, dim=1)
        y = put(y, index, step.y.reshape(-1, *problem.shape), every)
        value = put(value, index, step.value, every)
        grad = put(grad, index, step.grad.reshape(-1, *problem.shape), every)
        failures = put(failures, index, step.failures, every)
        stalled = put(stalled, index, step.failures >= MAX_FAILURES, every)
        done = put(done, index, step.passed, every)
        if callback is not None:
            callback(Progress(iteration, y.clone(), value.clone(), evaluations.clone(),
                              done.clone()))
    return ArgminResult(
        y=y, value=value, iterations=iteration, converged=done & stop.confirmed(value), method="lbfgs",
        gap=stop.gap(value), lower_bound=stop.lower_bound(value.dtype), objective=value,
        info={"evaluations": evaluations, "stalled": stalled & ~done},
    )


class _Trial(NamedTuple):
    """One iteration's direction and first trial (step 1), for the rows it ran on (flat)."""

    direction: Tensor  # (b, n)
    descent: Tensor  # (b,) bool: the quasi-Newton direction is a descent direction (kept)
    y: Tensor  # (b, n) P(y + direction)
    value: Tensor  # (b,) f there
    grad: Tensor  # (b, n) its gradient
    ok: Tensor  # (b,) bool: the Armijo test passes


class _Step(NamedTuple):
    """The rows' state after an iteration (flat points and gradients)."""

    y: Tensor
    value: Tensor
    grad: Tensor
    s_mem: Tensor  # (memory, b, n)
    r_mem: Tensor
    filled: Tensor  # (memory, b)
    failures: Tensor  # (b,) consecutive failed line searches
    passed: Tensor  # (b,) bool: the stopping test


def _try_step(problem: Problem, stop: Stopping, sel: Tensor | None, index: Tensor, y: Tensor,
              grad: Tensor, value: Tensor, s_mem: Tensor, r_mem: Tensor, filled: Tensor,
              failures: Tensor, first_step: Tensor, lo: Tensor, hi: Tensor, free: Tensor,
              eps: float) -> _Trial:
    """The search direction (two-loop recursion on the free set) and its first trial.

    ``sel``: the rows (None: the whole batch), ``index`` the same as a tensor; the other
    arguments hold those rows, flat ``(b, n)``; ``s_mem``, ``r_mem``, ``filled`` the memory
    slots the recursion runs over.
    """
    held = ((y <= lo) & (grad > 0)) | ((y >= hi) & (grad < 0)) | ~free
    working = (~held).to(y.dtype)
    direction, has_memory = _two_loop(grad * working, s_mem * working, r_mem * working, filled)
    direction = direction * working
    # a component pushing out of the box through a bound it sits on moves nothing
    direction = torch.where(((y <= lo) & (direction < 0)) | ((y >= hi) & (direction > 0)),
                            torch.zeros_like(direction), direction)
    gradient_step = -(grad * working)
    aggregate = stop.aggregate_gradient(index, grad)
    if aggregate is not None:  # after a failed search: the min-norm recent subgradient
        retry = (failures > 0)[:, None]
        gradient_step = torch.where(retry, -(aggregate * working), gradient_step)
    g_inf = gradient_step.abs().amax(dim=1).clamp_min(torch.finfo(y.dtype).tiny)
    gradient_step = gradient_step * (first_step / g_inf)[:, None]
    descent = has_memory & (flat_dot(direction, grad) < 0)
    direction = torch.where(descent[:, None], direction, gradient_step)
    # the first trial, step 1, on every row without gathers (``sel`` None in the energy when
    # it is the whole batch); most iterations end here
    trial = torch.maximum(torch.minimum(y + direction, hi), lo)
    f_t, g_t = problem.value_and_grad(trial.reshape(-1, *problem.shape), index=sel)
    return _Trial(direction, descent, trial, f_t, g_t.reshape(-1, y.shape[1]),
                  _armijo(y, value, grad, trial, f_t, eps))


def _armijo(y: Tensor, value: Tensor, grad: Tensor, trial: Tensor, f_t: Tensor,
            eps: float) -> Tensor:
    """``(b,)`` bool: ``f(trial) <= f(y) + c1 min(0, g^T (trial - y))`` (+ rounding), a descent."""
    decrease = flat_dot(grad, trial - y).clamp_max(0.0)
    slack = eps * value.abs().clamp_min(1.0)
    return (f_t <= value + ARMIJO * decrease + slack) & (decrease < 0)


def _advance(problem: Problem, stop: Stopping, sel: Tensor | None, index: Tensor, y: Tensor,
             grad: Tensor, value: Tensor, failures: Tensor, accepted: Tensor, y_new: Tensor,
             value_new: Tensor, grad_new: Tensor, s_mem: Tensor, r_mem: Tensor, filled: Tensor,
             descent: Tensor, eps: float, cut: bool) -> _Step:
    """Move the accepted rows, push their curvature pairs, count failures, test for stopping.

    ``cut``: add the new points' cuts here (every first trial passed; backtracking adds them
    as each row passes). ``s_mem``, ``r_mem``, ``filled``: the rows' whole memory;
    ``descent``: the rows whose quasi-Newton direction was used (the others start their memory
    afresh).
    """
    if cut:
        stop.add_cut(y_new, value_new, grad_new, sel)
    # curvature pairs from the accepted steps
    s_new = (y_new - y) * accepted[:, None]
    r_new = (grad_new - grad) * accepted[:, None]
    curvature = flat_dot(s_new, r_new)
    good = accepted & (curvature > eps * flat_dot(s_new, s_new).sqrt()
                       * flat_dot(r_new, r_new).sqrt())
    # the good pairs go in front (newest first), the others keep their memory: a shift by
    # ``where``, no boolean indexing (no host read)
    s_mem, r_mem = _shift(s_mem, s_new, good), _shift(r_mem, r_new, good)
    filled = _shift(filled & descent[None, :], torch.ones_like(good), good)
    # move the accepted examples; count failures of the others
    keep = ~accepted
    y_next = torch.where(keep[:, None], y, y_new)
    value_next = torch.where(keep, value, value_new)
    grad_next = torch.where(keep[:, None], grad, grad_new)
    failures = torch.where(accepted, torch.zeros_like(failures), failures + 1)
    mapping = None if stop.certified else _mapping_norm(
        problem, y_next.reshape(-1, *problem.shape), grad_next.reshape(-1, *problem.shape), index)
    return _Step(y_next, value_next, grad_next, s_mem, r_mem, filled, failures,
                 stop.passed(value_next, mapping, sel))


def _shift(memory: Tensor, new: Tensor, good: Tensor) -> Tensor:
    """``memory`` ``(m, b, ...)`` with ``new`` ``(b, ...)`` pushed in front where ``good`` ``(b,)``.

    Slot 0 takes ``new``, the older slots move back one and the oldest drops out; the other
    rows are unchanged.
    """
    shifted = torch.cat([new[None], memory[:-1]])
    return torch.where(good.view(1, -1, *([1] * (memory.ndim - 2))), shifted, memory)


def _mapping_norm(problem: Problem, y: Tensor, grad: Tensor, index: Tensor) -> Tensor:
    """``||P(y - g) - y||`` per example (the projected-gradient norm, :func:`projected_step`)."""
    moved = projected_step(grad, y, problem.lo[index], problem.hi[index])
    return moved.flatten(1).norm(dim=1)


def _two_loop(grad: Tensor, s_mem: Tensor, r_mem: Tensor, filled: Tensor
              ) -> tuple[Tensor, Tensor]:
    """``-H grad`` by the two-loop recursion, batched; slot 0 is the newest pair.

    Returns the direction ``(b, n)`` and ``(b,)`` whether any pair was usable. With no slots
    (``m = 0``) the direction is ``-grad``, what empty slots give.
    """
    if s_mem.shape[0] == 0:
        return -grad.clone(), torch.zeros(grad.shape[0], dtype=torch.bool, device=grad.device)
    curvature = (s_mem * r_mem).sum(-1)  # (m, b)
    usable = filled & (curvature > 0)
    rho = torch.where(usable, 1.0 / torch.where(usable, curvature, torch.ones_like(curvature)),
                      torch.zeros_like(curvature))
    pairs = list(zip(s_mem.unbind(0), r_mem.unbind(0), rho.unbind(0), strict=True))
    q = grad.clone()
    alphas = []
    for s_i, r_i, rho_i in pairs:
        alpha = rho_i * (s_i * q).sum(-1)
        q = q - alpha[:, None] * r_i
        alphas.append(alpha)
    # initial scaling s^T r / r^T r from the newest usable pair
    newest = torch.argmax(usable.to(torch.int8), dim=0)
    pick = newest[None, :, None].expand(1, *s_mem.shape[1:])
    s0 = s_mem.gather(0, pick)[0]
    r0 = r_mem.gather(0, pick)[0]
    rr = (r0 * r0).sum(-1)
    gamma = torch.where(rr > 0, (s0 * r0).sum(-1) / torch.where(rr > 0, rr, torch.ones_like(rr)),
                        torch.ones_like(rr))
    r = gamma[:, None] * q
    for (s_i, r_i, rho_i), alpha in zip(reversed(pairs), reversed(alphas), strict=True):
        beta = rho_i * (r_i * r).sum(-1)
        r = r + (alpha - beta)[:, None] * s_i
    return -r, usable.any(dim=0)


def _backtrack(problem: Problem, index: Tensor, y: Tensor, value: Tensor, grad: Tensor,
               trial: _Trial, lo: Tensor, hi: Tensor, eps: float, stop: Stopping):
    """Per-example projected backtracking after a first trial that some rows failed.

    Returns accepted, y, f, g (flat) and trial counts; the accepted rows' cuts are added.
    """
    b, n = y.shape
    direction = trial.direction
    trials = torch.ones(b, dtype=torch.long, device=y.device)
    alpha = torch.ones(b, dtype=y.dtype, device=y.device)
    accepted = torch.zeros(b, dtype=torch.bool, device=y.device)
    y_new, value_new, grad_new = y.clone(), value.clone(), grad.clone()
    pending = torch.arange(b, device=y.device)
    ok = trial.ok
    _accept(stop, index, pending, ok, trial.y, trial.value, trial.grad, y_new, value_new,
            grad_new, accepted)
    pending = pending[~ok]
    alpha[pending] *= 0.5
    for _ in range(MAX_BACKTRACKS - 1):
        point = torch.maximum(torch.minimum(y[pending] + alpha[pending, None] * direction[pending],
                                            hi[pending]), lo[pending])
        f_t, g_t = problem.value_and_grad(point.reshape(-1, *problem.shape), index=index[pending])
        trials[pending] += 1
        ok = _armijo(y[pending], value[pending], grad[pending], point, f_t, eps)
        _accept(stop, index, pending, ok, point, f_t, g_t, y_new, value_new, grad_new, accepted)
        pending = pending[~ok]
        if pending.numel() == 0:
            break
        alpha[pending] *= 0.5
    return accepted, y_new, value_new, grad_new, trials


def _accept(stop: Stopping, index: Tensor, pending: Tensor, ok: Tensor, trial: Tensor,
            f_t: Tensor, g_t: Tensor, y_new: Tensor, value_new: Tensor, grad_new: Tensor,
            accepted: Tensor) -> None:
    """Record the trials of rows ``pending`` that passed (``ok``), in place.

    Their cuts, points, values, gradients (flat) and ``accepted``.
    """
    rows = pending[ok]
    stop.add_cut(trial[ok], f_t[ok], g_t[ok], index[rows])
    y_new[rows], value_new[rows] = trial[ok], f_t[ok]
    grad_new[rows] = g_t.reshape(-1, y_new.shape[1])[ok]
    accepted[rows] = True

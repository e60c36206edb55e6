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

import torch
from torch import Tensor

from .iterative import (
    Callback,
    Progress,
    Rows,
    Stopping,
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
                memory: int = 10, callback: Callback | None = None) -> ArgminResult:
    """Minimise ``f(x, y)`` over the problem's domain by projected L-BFGS.

    Args:
        problem: the batched problem.
        y0: ``(batch, *shape)`` warm start (projected onto the domain) or None (box centre).
        tol: relative tolerance of the stopping test.
        max_iter: iterations (each one line search of one or more evaluations).
        memory: number of curvature pairs kept per example.
        callback: called with a :class:`Progress` after every iteration.

    Returns:
        :class:`ArgminResult`; ``info["evaluations"]`` counts gradient evaluations per example,
        ``info["stalled"]`` marks examples frozen after repeated line-search failures.
    """
    if memory < 1:
        raise ValueError(f"memory must be >= 1, got {memory}")
    batch, device = problem.batch, problem.lo.device
    stop = Stopping(problem, tol)
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
        y_i = take(y).reshape(-1, n)
        g_i = take(grad).reshape(-1, n)
        lo_i, hi_i = take(lo_flat), take(hi_flat)
        held = ((y_i <= lo_i) & (g_i > 0)) | ((y_i >= hi_i) & (g_i < 0)) | ~take(free_flat)
        working = (~held).to(y.dtype)
        # pairs are pushed at the end of an iteration, newest first: slots from iteration - 1
        # on are empty in every row, and the recursion skips them (they add zeros: the same
        # direction, up to the sign of a zero component)
        used = min(iteration - 1, memory)
        memory_rows = (slice(None, used),) if every else (slice(None, used), index)
        direction, has_memory = _two_loop(g_i * working, s_mem[memory_rows] * working,
                                          r_mem[memory_rows] * working, filled[memory_rows])
        direction = direction * working
        # a component pushing out of the box through a bound it sits on moves nothing
        direction = torch.where(((y_i <= lo_i) & (direction < 0)) |
                                ((y_i >= hi_i) & (direction > 0)),
                                torch.zeros_like(direction), direction)
        gradient_step = -(g_i * working)
        aggregate = stop.aggregate_gradient(index, g_i)
        if aggregate is not None:  # after a failed search: the min-norm recent subgradient
            retry = (take(failures) > 0)[:, None]
            gradient_step = torch.where(retry, -(aggregate * working), gradient_step)
        g_inf = gradient_step.abs().amax(dim=1).clamp_min(torch.finfo(y.dtype).tiny)
        gradient_step = gradient_step * (take(first_step) / g_inf)[:, None]
        descent = has_memory & (flat_dot(direction, g_i) < 0)
        direction = torch.where(descent[:, None], direction, gradient_step)
        if every:  # no usable memory: start it afresh
            filled &= descent[None, :]
        else:
            filled[:, index] &= descent[None, :]
        value_i = take(value)
        accepted, y_new, value_new, grad_new, trials = _line_search(
            problem, index, y_i, value_i, g_i, direction, lo_i, hi_i, eps, stop)
        evaluations = put(evaluations, index, take(evaluations) + trials, every)
        # curvature pairs from the accepted steps
        s_new = (y_new - y_i) * accepted[:, None]
        r_new = (grad_new - g_i) * accepted[:, None]
        curvature = flat_dot(s_new, r_new)
        good = accepted & (curvature > eps * flat_dot(s_new, s_new).sqrt()
                           * flat_dot(r_new, r_new).sqrt())
        # the good pairs go in front (newest first), the others keep their memory: a shift by
        # ``where``, no boolean indexing (no host read)
        s_mem = _push(s_mem, s_new, good, index, every)
        r_mem = _push(r_mem, r_new, good, index, every)
        filled = _push(filled, torch.ones_like(good), good, index, every)
        # move the accepted examples; count failures of the others
        keep = ~accepted
        y = put(y, index, torch.where(keep[:, None], y_i, y_new).reshape(-1, *problem.shape),
                every)
        value = put(value, index, torch.where(keep, value_i, value_new), every)
        grad = put(grad, index, torch.where(keep[:, None], g_i, grad_new).reshape(
            -1, *problem.shape), every)
        failures_i = take(failures)
        failures_i = torch.where(accepted, torch.zeros_like(failures_i), failures_i + 1)
        failures = put(failures, index, failures_i, every)
        stalled = put(stalled, index, failures_i >= MAX_FAILURES, every)
        mapping = None if stop.certified else _mapping_norm(problem, take(y), take(grad), index)
        done = put(done, index, stop.passed(take(value), mapping, sel), every)
        if callback is not None:
            callback(Progress(iteration, y.clone(), value.clone(), evaluations.clone(),
                              done.clone()))
    return ArgminResult(
        y=y, value=value, iterations=iteration, converged=done & stop.confirmed(value), method="lbfgs",
        gap=stop.gap(value), lower_bound=stop.lower_bound(value.dtype), objective=value,
        info={"evaluations": evaluations, "stalled": stalled & ~done},
    )


def _push(memory: Tensor, new: Tensor, good: Tensor, index: Tensor, every: bool) -> Tensor:
    """``memory`` ``(m, batch, ...)`` with ``new`` ``(b, ...)`` pushed in front on rows ``index``.

    Only where ``good`` ``(b,)``: slot 0 takes ``new``, the older slots move back one and the
    oldest drops out; the other rows are unchanged. ``every``: ``index`` is every row, in order.
    """
    rows = memory if every else memory[:, index]
    shifted = torch.cat([new[None], rows[:-1]])
    mask = good.view(1, -1, *([1] * (memory.ndim - 2)))
    return put(memory.transpose(0, 1), index, torch.where(mask, shifted, rows).transpose(0, 1),
               every).transpose(0, 1)


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


def _line_search(problem: Problem, index: Tensor, y: Tensor, value: Tensor, grad: Tensor,
                 direction: Tensor, lo: Tensor, hi: Tensor, eps: float, stop: Stopping):
    """Per-example projected backtracking; returns accepted, y, f, g (flat) and trial counts."""
    b, n = y.shape
    # the first trial, alpha = 1, on every row without gathers (``index`` None in the energy
    # and the cuts when it is the whole batch); most iterations end here
    whole = index.numel() == problem.batch  # index comes from nonzero: every row, in order
    trial = torch.maximum(torch.minimum(y + direction, hi), lo)
    f_t, g_t = problem.value_and_grad(trial.reshape(-1, *problem.shape),
                                      index=None if whole else index)
    trials = torch.ones(b, dtype=torch.long, device=y.device)
    decrease = flat_dot(grad, trial - y).clamp_max(0.0)
    slack = eps * value.abs().clamp_min(1.0)
    ok = (f_t <= value + ARMIJO * decrease + slack) & (decrease < 0)
    if bool(ok.all()):
        stop.add_cut(trial, f_t, g_t, None if whole else index)
        return ok, trial, f_t, g_t.reshape(-1, n), trials
    alpha = torch.ones(b, dtype=y.dtype, device=y.device)
    accepted = torch.zeros(b, dtype=torch.bool, device=y.device)
    y_new, value_new, grad_new = y.clone(), value.clone(), grad.clone()
    pending = torch.arange(b, device=y.device)
    _accept(stop, index, pending, ok, trial, f_t, g_t, y_new, value_new, grad_new, accepted)
    pending = pending[~ok]
    alpha[pending] *= 0.5
    for _ in range(MAX_BACKTRACKS - 1):
        trial = torch.maximum(torch.minimum(y[pending] + alpha[pending, None] * direction[pending],
                                            hi[pending]), lo[pending])
        f_t, g_t = problem.value_and_grad(trial.reshape(-1, *problem.shape), index=index[pending])
        trials[pending] += 1
        decrease = flat_dot(grad[pending], trial - y[pending]).clamp_max(0.0)
        slack = eps * value[pending].abs().clamp_min(1.0)
        ok = (f_t <= value[pending] + ARMIJO * decrease + slack) & (decrease < 0)
        _accept(stop, index, pending, ok, trial, f_t, g_t, y_new, value_new, grad_new, accepted)
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

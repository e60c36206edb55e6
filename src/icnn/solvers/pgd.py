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
    flat_norm,
    initial_point,
    projected_step,
    put,
    whole,
)
from .problem import Problem
from .result import ArgminResult

SHRINK = 0.8
MAX_BACKTRACKS = 40


def solve_pgd(problem: Problem, y0: Tensor | None, *, tol: float, max_iter: int,
              callback: Callback | None = None,
              lipschitz: float | Tensor | None = None,
              compile: str | None = None) -> ArgminResult:
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
        compile: None (eager) or a :func:`torch.compile` backend: the two halves of a
            whole-batch iteration (:func:`_try_step`, :func:`_advance`: the evaluation, its cut
            and the first trial; the acceptance and the stopping test) run compiled, fused into
            a few kernels (the same code; rounding may differ from eager). Iterations on a part
            of the batch and backtracking retries stay eager. torch keeps at most
            ``torch._dynamo.config.recompile_limit`` (8) compiled versions of each function per
            process (for a PICNN or FICNN one per model structure, dtype and grad mode, batch
            sizes sharing one after the second; a convolutional model evaluates its
            parametrised layers inside the compiled code, whose classes torch makes per
            instance, so each model instance is a version of its own, and its gradient breaks
            the graph): past that it warns once and the new ones run eager (the same results).

    Returns:
        :class:`ArgminResult`; ``info["evaluations"]`` counts gradient evaluations per example,
        ``info["lipschitz"]`` holds each example's last accepted ``L`` ``(batch,)``.
    """
    batch, device = problem.batch, problem.lo.device
    # a compiled iteration reads nothing back to the host (its cuts are masked on the device)
    stop = Stopping(problem, tol, host_reads=False if compile else None)
    problem.all_free  # noqa: B018 - read once here (a host read), never inside an iteration
    y = initial_point(problem, y0)
    y_prev = y.clone()
    value = problem.value(y).detach()
    theta = torch.ones(batch, dtype=y.dtype, device=device)
    lipschitz = _first_lipschitz(lipschitz, batch, y.dtype, device)  # 0: not yet estimated
    accepted = lipschitz.clone()
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    evaluations = torch.zeros(batch, dtype=torch.long, device=device)
    eps = 10 * torch.finfo(y.dtype).eps
    scale = problem.step_scale
    fused = compiled_halves(_try_step, _advance, compile)
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - iteration is reported
        index = (~done).nonzero().squeeze(1)
        if index.numel() == 0:
            iteration -= 1
            break
        # the whole batch running (always so at batch 1): no gathers and scatters
        every = index.numel() == batch
        sel = None if every else index
        take = whole if every else Rows(index)
        try_step, advance = fused if every else (_try_step, _advance)
        y_i, value_i = take(y), take(value)
        trial = try_step(problem, stop, sel, y_i, take(y_prev), take(theta), take(lipschitz),
                         take(scale), eps)
        if every:
            evaluations += 1
        else:
            evaluations[index] += 1
        if not bool(trial.ok.all()):
            _retry(problem, index, trial.v, trial.value_v, trial.grad_v, trial.lip, trial.y_new,
                   trial.value_new, trial.ok, eps)
        y_new, value_new, theta_new, passed = advance(problem, stop, sel, y_i, value_i, trial,
                                                      iteration == 1)
        accepted = put(accepted, index, trial.lip, every)
        lipschitz = put(lipschitz, index, trial.lip * SHRINK, every)
        y_prev = put(y_prev, index, y_i, every)
        y = put(y, index, y_new, every)
        value = put(value, index, value_new, every)
        theta = put(theta, index, theta_new, every)
        done = put(done, index, passed, every)
        if callback is not None:
            callback(Progress(iteration, y.clone(), value.clone(), evaluations.clone(),
                              done.clone()))
    return ArgminResult(
        y=y, value=value, iterations=iteration, converged=done & stop.confirmed(value), method="pgd",
        gap=stop.gap(value), lower_bound=stop.lower_bound(value.dtype), objective=value,
        info={"evaluations": evaluations, "lipschitz": accepted},
    )


class _Trial(NamedTuple):
    """One iteration's evaluation and first projected trial, for the rows it ran on.

    ``y_new``, ``value_new`` and ``lip`` are completed in place by :func:`_retry` where ``ok``
    is False.
    """

    theta_next: Tensor  # (b,) momentum parameter of the next iteration
    v: Tensor  # (b, *shape) extrapolated point
    value_v: Tensor  # (b,) f(v)
    grad_v: Tensor  # (b, *shape) its gradient
    lip: Tensor  # (b,) L of the step
    y_new: Tensor  # (b, *shape) P(v - grad_v / L)
    value_new: Tensor  # (b,) f(y_new)
    ok: Tensor  # (b,) bool: sufficient decrease holds


def _try_step(problem: Problem, stop: Stopping, sel: Tensor | None, y: Tensor, y_prev: Tensor,
              theta: Tensor, lipschitz: Tensor, scale: Tensor, eps: float) -> _Trial:
    """Extrapolate, evaluate ``f`` and its gradient (adding the cut), take the first trial step.

    ``sel``: the rows (None: the whole batch); the other arguments hold those rows.
    """
    theta_next = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * theta.square()))
    beta = ((theta - 1.0) / theta_next).view(-1, *([1] * (y.dim() - 1)))
    v = y + beta * (y - y_prev)
    value_v, grad_v = problem.value_and_grad(v, index=sel)
    stop.add_cut(v, value_v, grad_v, sel)
    fresh = lipschitz == 0
    lip = torch.where(fresh, flat_norm(grad_v) / scale, lipschitz)
    lip = torch.where(lip > 0, lip, torch.ones_like(lip))
    y_new, value_new, ok = _first_trial(problem, sel, v, value_v, grad_v, lip, eps)
    return _Trial(theta_next, v, value_v, grad_v, lip, y_new, value_new, ok)


def backtrack(problem: Problem, index: Tensor, sel: Tensor | None, v: Tensor, value_v: Tensor,
              grad_v: Tensor, lip: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Projected steps from ``v`` with ``L`` doubled until sufficient decrease; ``lip`` in place.

    ``index``: the examples of the rows; ``sel``: the same, or None when they are the whole
    batch in order (the energy is then called without an index). Returns ``(y_new, value_new)``.
    """
    y_new, value_new, ok = _first_trial(problem, sel, v, value_v, grad_v, lip, eps)
    if not bool(ok.all()):
        _retry(problem, index, v, value_v, grad_v, lip, y_new, value_new, ok, eps)
    return y_new, value_new


def _first_trial(problem: Problem, sel: Tensor | None, v: Tensor, value_v: Tensor,
                 grad_v: Tensor, lip: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(y_new, f(y_new), ok)``: the projected step from ``v`` at ``lip`` on every row."""
    lo, hi = (problem.lo, problem.hi) if sel is None else (problem.lo[sel], problem.hi[sel])
    shape = (-1, *([1] * (v.dim() - 1)))
    y_new = torch.maximum(torch.minimum(v - grad_v / lip.view(shape), hi), lo)
    with torch.no_grad():
        value_new = problem.value(y_new, sel)
    return y_new, value_new, _sufficient_decrease(v, value_v, grad_v, lip, y_new, value_new, eps)


def _sufficient_decrease(v: Tensor, value_v: Tensor, grad_v: Tensor, lip: Tensor, trial: Tensor,
                         value_t: Tensor, eps: float) -> Tensor:
    """``(b,)`` bool: ``f(trial) <= f(v) + g^T (trial - v) + L/2 ||trial - v||^2`` (+ rounding)."""
    step = trial - v
    model = value_v + flat_dot(grad_v, step) + 0.5 * lip * flat_dot(step, step)
    return value_t <= model + eps * value_v.abs().clamp_min(1.0)


def _advance(problem: Problem, stop: Stopping, sel: Tensor | None, y: Tensor, value: Tensor,
             trial: _Trial, first: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Accept the step or restart, then the stopping test: ``(y, value, theta, passed)`` rows.

    A step that would increase ``f`` is dropped with the momentum (next ``v = y``).
    """
    increased = trial.value_new > value
    keep = increased.view(-1, *([1] * (y.dim() - 1)))
    y_next = torch.where(keep, y, trial.y_new)
    value_next = torch.where(increased, value, trial.value_new)
    theta = torch.where(increased, torch.ones_like(trial.theta_next), trial.theta_next)
    mapping = None if stop.certified else _mapping_norm(problem, sel, trial.v, trial.grad_v,
                                                          trial.lip)
    if mapping is not None and first:
        stop.start(mapping)  # v = y0 on the first iteration (theta = 1: no momentum)
    return y_next, value_next, theta, stop.passed(value_next, mapping, sel)


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


def _mapping_norm(problem: Problem, sel: Tensor | None, v: Tensor, grad_v: Tensor,
                  lip: Tensor) -> Tensor:
    """``L ||P(v - g / L) - v||`` per row, by :func:`projected_step`.

    Not rounded to 0 when ``|v| >> |g| / L`` on an unbounded domain, as ``L ||y_new - v||`` is.
    """
    lo, hi = (problem.lo, problem.hi) if sel is None else (problem.lo[sel], problem.hi[sel])
    shape = (-1, *([1] * (v.dim() - 1)))
    return lip * flat_norm(projected_step(grad_v / lip.view(shape), v, lo, hi))


def _retry(problem: Problem, index: Tensor, v: Tensor, value_v: Tensor, grad_v: Tensor,
           lip: Tensor, y_new: Tensor, value_new: Tensor, ok: Tensor, eps: float) -> None:
    """Backtrack the rows whose first trial failed (``ok`` False): ``L`` doubled until decrease.

    Completes ``y_new``, ``value_new`` and ``lip`` in place; ``index``: the rows' examples.
    """
    shape = (-1, *([1] * (v.dim() - 1)))
    pending = (~ok).nonzero().squeeze(1)
    lip[pending] *= 2.0
    for _ in range(MAX_BACKTRACKS - 1):
        rows = index[pending]
        v_p, g_p, l_p = v[pending], grad_v[pending], lip[pending]
        step = torch.maximum(torch.minimum(v_p - g_p / l_p.view(shape), problem.hi[rows]),
                             problem.lo[rows])
        with torch.no_grad():
            value_t = problem.value(step, rows)
        ok = _sufficient_decrease(v_p, value_v[pending], g_p, l_p, step, value_t, eps)
        y_new[pending] = step
        value_new[pending] = value_t
        pending = pending[~ok]
        if pending.numel() == 0:
            break
        lip[pending] *= 2.0

"""Unrolled inference.

A fixed number of accelerated projected gradient steps kept in the autograd graph, so that ``y_T`` is
differentiable in the weights and in ``x``.

This is the paper's "gradient descent" route to learning (Section 5.2, as SPENs do; the authors'
code unrolls 30 momentum steps). The steps are those of :mod:`icnn.solvers.pgd` (FISTA momentum,
projection onto the box): the step ``1/L`` and the restart decisions are taken on detached values
by backtracking and treated as constants, while every ``y_{k+1} = P(v_k - grad f(v_k) / L)`` is
computed with ``create_graph=True``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .iterative import Stopping, flat_norm, initial_point
from .pgd import SHRINK, backtrack
from .problem import Problem
from .result import ArgminResult


def solve_unrolled(problem: Problem, y0: Tensor | None, *, steps: int, tol: float
                   ) -> ArgminResult:
    """``steps`` differentiable accelerated projected gradient steps from ``y0``.

    Args:
        problem: the batched problem; its energy must keep the graph to the weights and ``x``.
        y0: ``(batch, *shape)`` start (projected; gradients do not flow into it) or None.
        steps: number of unrolled steps (all examples take all of them).
        tol: tolerance of the stopping test reported in ``converged`` (it does not stop early).

    Returns:
        :class:`ArgminResult` whose ``y`` carries the graph; ``value`` is detached.
    """
    if steps < 1:
        raise ValueError(f"differentiable='unroll' needs max_iter >= 1 steps, got {steps}")
    batch, device = problem.batch, problem.lo.device
    rows = torch.arange(batch, device=device)
    stop = Stopping(problem, tol)
    shape = (-1, *([1] * len(problem.shape)))
    y = initial_point(problem, y0)
    y_prev = y
    with torch.no_grad():
        value = problem.value(y).detach()
    theta = torch.ones(batch, dtype=y.dtype, device=device)
    lipschitz = None
    eps = 10 * torch.finfo(y.dtype).eps
    mapping = torch.full((batch,), torch.inf, dtype=y.dtype, device=device)
    for _ in range(steps):
        theta_next = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * theta.square()))
        v = y + ((theta - 1.0) / theta_next).view(shape) * (y - y_prev)
        value_v, grad_v = problem.value_and_grad(v, create_graph=True)
        v_d, f_d, g_d = v.detach(), value_v.detach(), grad_v.detach()
        stop.add_cut(v_d, f_d, g_d, rows)
        if lipschitz is None:
            lipschitz = flat_norm(g_d) / problem.step_scale
            lipschitz = torch.where(lipschitz > 0, lipschitz, torch.ones_like(lipschitz))
            # a power of two: the step is then locally constant in the weights and x, so the
            # unrolled map's derivative is exact where the backtracking choices do not change
            lipschitz = torch.exp2(torch.ceil(torch.log2(lipschitz)))
        _, value_new = backtrack(problem, rows, None, v_d, f_d, g_d, lipschitz, eps)
        step = torch.maximum(torch.minimum(v - grad_v / lipschitz.view(shape), problem.hi),
                             problem.lo)
        mapping = lipschitz * flat_norm(step.detach() - v_d)
        if not stop.certified:
            stop.start(mapping)  # the first step is taken from v = y0 (theta = 1: no momentum)
        lipschitz = lipschitz * SHRINK
        increased = value_new > value
        y_prev, y = y, torch.where(increased.view(shape), y, step)
        value = torch.where(increased, value, value_new)
        theta = torch.where(increased, torch.ones_like(theta), theta_next)
    converged = stop.passed(value, mapping, rows) & stop.confirmed(value.detach())
    return ArgminResult(
        y=y, value=value, iterations=steps, converged=converged, method="unroll",
        gap=stop.gap(value), lower_bound=stop.lower_bound(value.dtype), objective=value,
        info={"evaluations": torch.full((batch,), steps, dtype=torch.long, device=device)},
    )

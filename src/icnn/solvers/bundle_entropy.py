r"""Bundle entropy method (paper Section 4.4, Algorithm 2), batched.

Over a box rescaled to the unit box (``y = lo + width * u``, ``u in [0, 1]^n`` on the free
coordinates) the method minimises

.. math::
    f(x, y) - H(u), \qquad H(u) = -\sum_j u_j \log u_j + (1 - u_j) \log(1 - u_j),

**not** ``f`` itself: the entropy is part of the prediction and acts as a barrier that keeps the
iterates inside the box. Iteration ``k`` adds the plane ``f(u^k) + g_k^T (u - u^k)``
(``g_k = grad_u f``) to ``G, h`` and solves the subproblem

.. math::
    u^{k+1}, t^{k+1} = \arg\min_{u, t} \; t - H(u) \quad \text{s.t.} \quad G u + h \le t 1

through its dual over the simplex, ``max_lam (G 1 + h)^T lam - 1^T log(1 + exp(G^T lam))``,
solved by batched projected Newton (:mod:`._simplex_newton`); the primal solution is
``u = 1 / (1 + exp(G^T lam))``. Planes with ``lam <= 1e-8`` are pruned.

Certificate: the dual value at any simplex ``lam`` is a lower bound on ``min_u f - H`` (the planes
under-estimate ``f``; in float32 the reported bound is lowered by the largest rounding error of
its planes' values, :func:`icnn.solvers.certificate.rounding_allowance`, and ``converged`` is
judged against it); ``gap = (f - H)(u) - lower_bound`` at the
returned point, and an example stops once ``gap <= tol * max(1, |f - H|)``. The returned ``y``
is the solution of the last subproblem, as in the paper, so that
:func:`icnn.solvers.implicit.attach_implicit_gradient` can differentiate it (Proposition 3).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._simplex_newton import SimplexDual, row_picker, solve_simplex_dual
from ._unit_box import UnitBox, choose_slot, put
from .entropy import negative_entropy
from .problem import Problem
from .result import ArgminResult

PRUNE = 1e-8


def softplus(z: Tensor) -> Tensor:
    """``log(1 + exp(z))`` to full precision (``F.softplus`` turns linear above 20)."""
    return z.clamp_min(0.0) + torch.log1p(torch.exp(-z.abs()))


def entropy_dual(G: Tensor, h: Tensor, free: Tensor) -> SimplexDual:
    """``F(lam) = -[(G 1 + h)^T lam - 1^T log(1 + exp(G^T lam))]`` on the free coordinates."""
    pick = row_picker(G, h, free)

    def value(lam: Tensor, rows: Tensor) -> Tensor:
        G_r, h_r, free_r = pick(rows)
        c = lam @ G_r  # (b, S, n)
        psi = torch.where(free_r[:, None, :], -softplus(-c), torch.zeros_like(c)).sum(-1)
        return -((lam * h_r[:, None, :]).sum(-1) + psi)

    def derivatives(lam: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        G_r, h_r, free_r = pick(rows)
        c = (lam[:, None, :] @ G_r).squeeze(1)
        u = torch.where(free_r, torch.sigmoid(-c), torch.zeros_like(c))
        psi = torch.where(free_r, -softplus(-c), torch.zeros_like(c)).sum(-1)
        val = -((lam * h_r).sum(-1) + psi)
        grad = -((G_r @ u[..., None]).squeeze(-1) + h_r)
        weighted = G_r * (u * (1.0 - u)).sqrt()[:, None, :]
        hess = weighted @ weighted.transpose(1, 2)
        return val, grad, hess

    return SimplexDual(value=value, derivatives=derivatives)


def subproblem_solution(G: Tensor, lam: Tensor, free: Tensor) -> tuple[Tensor, Tensor]:
    """``u = sigmoid(-G^T lam)`` on the free coordinates (0 elsewhere) and ``c = G^T lam``."""
    c = (lam[:, None, :] @ G).squeeze(1)
    return torch.where(free, torch.sigmoid(-c), torch.zeros_like(c)), c


def solve_bundle_entropy(
    problem: Problem, y0: Tensor | None, *, tol: float, max_iter: int,
    max_planes: int = 64, newton_iter: int = 60,
) -> ArgminResult:
    """Minimise ``f(x, y) - H(u)`` over a bounded box with the bundle entropy method.

    Args:
        problem: the batched problem; every free coordinate needs finite bounds.
        y0: ``(batch, *shape)`` first iterate (projected into the box), or None for the box
            centre (the minimiser of ``-H``).
        tol: relative gap tolerance, ``gap <= tol * max(1, |f - H|)``.
        max_iter: subproblems solved at most (paper: 5; the authors' code 10 to 30).
        max_planes: size of the bundle; when full, the least active plane is replaced.
        newton_iter: projected Newton iterations per subproblem at most.

    Returns:
        :class:`ArgminResult` with ``y`` the last subproblem solution, ``value = f(y)``,
        ``objective = f(y) - H(u)``, ``gap``/``lower_bound`` on ``min f - H`` and in ``info``:
        ``iterates (batch, k, n)`` (the points ``y^i`` that made the planes, flattened),
        ``lam (batch, k)``, ``G (batch, k, n)`` and ``h (batch, k)`` (planes in ``y``:
        ``f(y^i) + G_i^T (y - y^i)`` written as ``G y + h``), ``valid (batch, k)`` bool.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1 for bundle_entropy, got {max_iter}")
    if max_planes < 1:
        raise ValueError(f"max_planes must be >= 1, got {max_planes}")
    box = UnitBox.of(problem, "bundle_entropy")
    batch, n = box.lo.shape
    dtype, device = box.lo.dtype, box.lo.device
    free = box.free
    if y0 is None:
        u = torch.where(free, torch.full_like(box.lo, 0.5), torch.zeros_like(box.lo))
    else:
        u = box.to_u(problem.project(y0.detach().to(dtype)))
    k = min(max_iter, max_planes)
    G = torch.zeros(batch, k, n, dtype=dtype, device=device)
    h = torch.zeros(batch, k, dtype=dtype, device=device)
    points = torch.zeros(batch, k, n, dtype=dtype, device=device)
    valid = torch.zeros(batch, k, dtype=torch.bool, device=device)
    lam = torch.zeros(batch, k, dtype=dtype, device=device)
    lower = torch.full((batch,), -torch.inf, dtype=dtype, device=device)
    running = torch.ones(batch, dtype=torch.bool, device=device)
    allowance = torch.zeros(batch, dtype=torch.float64, device=device)
    value, grad, _ = box.evaluate(problem, u)
    objective = value + negative_entropy(u, free)
    iterations = 0
    for iteration in range(max_iter):
        if iteration > 0:
            running = running & ~_passed(objective, lower, tol)
            if not bool(running.any()):
                break
        iterations = iteration + 1
        slot = choose_slot(valid, lam)
        G = put(G, slot, grad, running)
        h = put(h, slot, value - (grad * u).sum(-1), running)
        allowance = torch.where(running, torch.maximum(
            allowance, box.plane_allowance(value, grad, u)), allowance)
        points = put(points, slot, u, running)
        valid = put(valid, slot, torch.ones_like(running), running)
        lam = put(lam, slot, torch.zeros_like(value), running)
        # warm start: previous weights mixed with a little of the uniform point
        start = 0.9 * lam + 0.1 * valid.to(dtype) / valid.sum(-1, keepdim=True).to(dtype)
        scale = value.abs().clamp_min(1.0)
        newton_tol = scale * (1e-13 if dtype == torch.float64 else 1e-5)
        new_lam, _ = solve_simplex_dual(entropy_dual(G, h, free), start, valid,
                                        tol=newton_tol, max_iter=newton_iter)
        new_u, c = subproblem_solution(G, new_lam, free)
        dual_value = (new_lam * h).sum(-1) + torch.where(
            free, -softplus(-c), torch.zeros_like(c)).sum(-1)
        lam = torch.where(running[:, None], new_lam, lam)
        lower = torch.where(running, torch.maximum(lower, dual_value), lower)
        valid = torch.where(running[:, None], valid & (new_lam > PRUNE), valid)
        lam = torch.where(valid, lam, torch.zeros_like(lam))
        u = torch.where(running[:, None], new_u, u)
        new_value, new_grad, _ = box.evaluate(problem, u)
        value = torch.where(running, new_value, value)
        grad = torch.where(running[:, None], new_grad, grad)
        objective = value + negative_entropy(u, free)
    lower = (lower.double() - allowance).to(dtype)  # reported: rounding of the planes removed
    converged = _passed(objective, lower, tol)
    y = box.to_y(u)
    scale_y = box.width[:, None, :]
    return ArgminResult(
        y=y.detach(), value=value.detach(), iterations=iterations, converged=converged,
        method="bundle_entropy", gap=(objective - lower).detach(), lower_bound=lower.detach(),
        objective=objective.detach(),
        info={
            "iterates": box.lo[:, None, :] + scale_y * points,
            "lam": lam, "valid": valid,
            # planes back in y: grad_y = grad_u / width; h_y = f(y^i) - grad_y^T y^i
            "G": torch.where(scale_y > 0, G / torch.where(scale_y > 0, scale_y, 1.0), 0.0),
            "h": h - (G * box.lo[:, None, :] / torch.where(scale_y > 0, scale_y, 1.0)).sum(-1),
            "u": u, "lo": box.lo, "width": box.width, "free": free,
        },
    )


def _passed(objective: Tensor, lower: Tensor, tol: float) -> Tensor:
    return (objective - lower) <= tol * objective.abs().clamp_min(1.0)

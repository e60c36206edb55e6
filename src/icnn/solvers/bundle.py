r"""Bundle (cutting-plane) method (paper Section 4.3, Algorithm 1), proximal and batched.

Convexity makes every plane ``f(y^i) + g_i^T (y - y^i)`` a global under-estimator, so the
cutting-plane model ``m(y) = max_i g_i^T y + h_i`` is below ``f`` and ``min_{box} m`` is a lower
bound on the optimum. Algorithm 1 (Kelley's method) moves to ``argmin_{box} m``, an LP; in many
dimensions that jumps between box corners, so we use the proximal bundle method (Kiwiel 1990),
which solves, in the box rescaled to ``u in [0, 1]^n`` (``y = lo + width * u``),

.. math::
    u^{k+1} = \arg\min_{u \in [0,1]^n} \max_i (g_i^T u + h_i) + \frac{1}{2\tau} \|u - \hat u\|^2

around the stability centre ``\hat u`` (the best point of the serious steps); ``tau -> inf``
gives Algorithm 1 back. The subproblem is solved in its dual, a concave problem over the simplex
of plane weights ``lam`` with ``u(lam) = clip(\hat u - tau G^T lam, 0, 1)``, by batched projected
Newton with the ``k x k`` Hessian ``tau G_A G_A^T`` (``A``: coordinates not clipped).

Certificate: for *any* simplex ``lam``, weak duality gives the exact lower bound
``h^T lam + sum_j min(0, (G^T lam)_j) <= min_{box} m <= min_{box} f``; the best of these over the
iterations is ``lower_bound``, and ``gap = f(best) - lower_bound``. An example stops once
``gap <= tol * max(1, |f(best)|)``.

Serious step when ``f(u^{k+1}) <= f(\hat u) - 0.1 (f(\hat u) - m(u^{k+1}))``; then ``tau`` doubles
if the model predicted the decrease well. After a null step whose value exceeds the centre's,
``tau`` halves (never below ``tau_0 / 1000``). The bundle keeps slot 0 for the aggregate plane
``sum_i lam_i (g_i, h_i)`` (a convex combination of valid planes, so still valid), which keeps
the method convergent when old planes are replaced; other slots take new planes, replacing an
empty or the least active slot.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._simplex_newton import SimplexDual, solve_simplex_dual
from ._unit_box import UnitBox, choose_slot, put
from .problem import Problem
from .result import ArgminResult

_SERIOUS = 0.1
_GOOD_MODEL = 0.5


def proximal_dual(G: Tensor, h: Tensor, centre: Tensor, tau: Tensor, free: Tensor) -> SimplexDual:
    """``F(lam) = -[h^T lam + min_{u in box} (G^T lam)^T u + |u - centre|^2 / (2 tau)]``."""

    def inner(c: Tensor, centre_: Tensor, tau_: Tensor, free_: Tensor) -> tuple[Tensor, Tensor]:
        raw = centre_ - tau_ * c
        u = torch.where(free_, raw.clamp(0.0, 1.0), torch.zeros_like(raw))
        psi = (c * u + (u - centre_).square() / (2.0 * tau_)).where(free_, torch.zeros_like(u))
        return u, psi.sum(-1)

    def value(lam: Tensor) -> Tensor:
        c = lam @ G
        _, psi = inner(c, centre[:, None, :], tau[:, None, None], free[:, None, :])
        return -((lam * h[:, None, :]).sum(-1) + psi)

    def derivatives(lam: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c = (lam[:, None, :] @ G).squeeze(1)
        u, psi = inner(c, centre, tau[:, None], free)
        raw = centre - tau[:, None] * c
        inside = free & (raw > 0) & (raw < 1)
        weight = torch.where(inside, tau[:, None].expand_as(c), torch.zeros_like(c))
        grad = -((G @ u[..., None]).squeeze(-1) + h)
        hess = (G * weight[:, None, :]) @ G.transpose(1, 2)
        return -((lam * h).sum(-1) + psi), grad, hess

    return SimplexDual(value=value, derivatives=derivatives)


def box_lower_bound(G: Tensor, h: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
    """Weak-duality bound ``h^T lam + sum_j min(0, c_j)`` with ``c = G^T lam``, and ``c``."""
    c = (lam[:, None, :] @ G).squeeze(1)
    return (lam * h).sum(-1) + c.clamp_max(0.0).sum(-1), c


def solve_bundle(
    problem: Problem, y0: Tensor, *, tol: float, max_iter: int, max_planes: int = 32,
    newton_iter: int = 20,
) -> ArgminResult:
    """Minimise ``f(x, y)`` over a bounded box with the proximal bundle method.

    Args:
        problem: the batched problem; every free coordinate needs finite bounds.
        y0: ``(batch, *shape)`` starting point, projected into the box.
        tol: relative gap tolerance, ``gap <= tol * max(1, |f|)``.
        max_iter: iterations (subproblems, one evaluation of ``f`` each) at most.
        max_planes: bundle size including the aggregate plane (at least 2).
        newton_iter: projected Newton iterations per subproblem at most (an inexact subproblem
            only slows the method: the lower bound is exact for any weights).

    Returns:
        :class:`ArgminResult`: ``y`` the best point seen, ``value = f(y)``, certified ``gap`` and
        ``lower_bound``; ``info["tau"]`` the final proximal parameters, ``info["planes"]`` the
        planes in use per example.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1 for bundle, got {max_iter}")
    if max_planes < 2:
        raise ValueError(f"max_planes must be >= 2 (aggregate plus one), got {max_planes}")
    box = UnitBox.of(problem, "bundle")
    batch, n = box.lo.shape
    dtype, device = box.lo.dtype, box.lo.device
    free = box.free
    centre = box.to_u(problem.project(y0.detach().to(dtype)))
    centre_value, grad, _ = box.evaluate(problem, centre)
    best_u, best_value = centre, centre_value
    k = max(2, min(max_planes, max_iter + 1))
    G = torch.zeros(batch, k, n, dtype=dtype, device=device)
    h = torch.zeros(batch, k, dtype=dtype, device=device)
    valid = torch.zeros(batch, k, dtype=torch.bool, device=device)
    lam = torch.zeros(batch, k, dtype=dtype, device=device)
    G[:, 1], h[:, 1], valid[:, 1], lam[:, 1] = grad, centre_value - (grad * centre).sum(-1), True, 1
    tiny = torch.finfo(dtype).tiny ** 0.5
    tau = 0.5 / grad.abs().amax(-1).clamp_min(tiny)
    tau_min, tau_max = tau / 1000.0, tau * 1e6
    lower = torch.full((batch,), -torch.inf, dtype=dtype, device=device)
    running = torch.ones(batch, dtype=torch.bool, device=device)
    eps = 1e-13 if dtype == torch.float64 else 1e-5
    iterations = 0
    for iteration in range(max_iter):
        iterations = iteration + 1
        scale = best_value.abs().clamp_min(1.0)
        newton_tol = scale * max(1e-3 * tol, eps)
        new_lam, _ = solve_simplex_dual(proximal_dual(G, h, centre, tau, free), lam, valid,
                                        tol=newton_tol, max_iter=newton_iter)
        bound, c = box_lower_bound(G, h, new_lam)
        u = torch.where(free, (centre - tau[:, None] * c).clamp(0.0, 1.0), torch.zeros_like(c))
        planes = (G @ u[..., None]).squeeze(-1) + h
        model = torch.where(valid, planes, torch.full_like(planes, -torch.inf)).amax(-1)
        value, grad, _ = box.evaluate(problem, u)
        # bookkeeping only for the examples still running
        lower = torch.where(running, torch.maximum(lower, bound), lower)
        lam = torch.where(running[:, None], new_lam, lam)
        improved = running & (value < best_value)
        best_u = torch.where(improved[:, None], u, best_u)
        best_value = torch.where(improved, value, best_value)
        predicted = (centre_value - model).clamp_min(0.0)
        serious = running & (value <= centre_value - _SERIOUS * predicted)
        good = serious & (value <= centre_value - _GOOD_MODEL * predicted)
        bad = running & ~serious & (value > centre_value)
        tau = torch.where(good, (2.0 * tau).clamp_max(tau_max), tau)
        tau = torch.where(bad, (0.5 * tau).clamp_min(tau_min), tau)
        centre = torch.where(serious[:, None], u, centre)
        centre_value = torch.where(serious, value, centre_value)
        # aggregate plane into slot 0, the new plane into a free or least active slot
        G = put(G, torch.zeros_like(valid[:, 0], dtype=torch.long), c, running)
        h = put(h, torch.zeros_like(valid[:, 0], dtype=torch.long), (new_lam * h).sum(-1), running)
        lam_agg = torch.zeros_like(lam)
        lam_agg[:, 0] = 1.0
        lam = torch.where(running[:, None], lam_agg, lam)
        valid[:, 0] = valid[:, 0] | running
        slot = choose_slot(valid, new_lam, first=1)
        G = put(G, slot, grad, running)
        h = put(h, slot, value - (grad * u).sum(-1), running)
        valid = put(valid, slot, torch.ones_like(running), running)
        running = running & ~_passed(best_value, lower, tol)
        if not bool(running.any()):
            break
    converged = _passed(best_value, lower, tol)
    return ArgminResult(
        y=box.to_y(best_u).detach(), value=best_value.detach(), iterations=iterations,
        converged=converged, method="bundle", gap=(best_value - lower).detach(),
        lower_bound=lower.detach(), objective=best_value.detach(),
        info={"tau": tau, "planes": valid.sum(-1)},
    )


def _passed(best: Tensor, lower: Tensor, tol: float) -> Tensor:
    return (best - lower) <= tol * best.abs().clamp_min(1.0)

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
``gap <= tol * max(1, |f(best)|)``. In float32 the reported bound is lowered by the largest
rounding error of the values its planes go through
(:func:`icnn.solvers.certificate.rounding_allowance`), and ``converged`` is judged against it.

Serious step when ``f(u^{k+1}) <= f(\hat u) - 0.1 (f(\hat u) - m(u^{k+1}))``; then ``tau`` doubles
if the model predicted the decrease well. After a null step whose value exceeds the centre's,
``tau`` halves (never below ``tau_0 / 1000``). The bundle keeps slot 0 for the aggregate plane
``sum_i lam_i (g_i, h_i)`` (a convex combination of valid planes, so still valid), which keeps
the method convergent when old planes are replaced; other slots take new planes, replacing an
empty or the least active slot.

Cost: an example whose gap is certified leaves the batch (its state is gathered and scattered by
index), the subproblem works only on the occupied plane slots, and the Newton solver only on the
rows not yet stationary; so an iteration costs about one evaluation of ``f`` on the running
examples plus a few milliseconds, and the slowest example does not make the others pay.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._simplex_newton import SimplexDual, row_picker, solve_simplex_dual
from ._unit_box import UnitBox, choose_slot
from .iterative import Rows, put, whole
from .problem import Problem
from .result import ArgminResult

_SERIOUS = 0.1
_GOOD_MODEL = 0.5
_NEWTON_TOL = 1e-3  # subproblem stationarity tolerance, relative to ``tol``


def proximal_dual(G: Tensor, h: Tensor, centre: Tensor, tau: Tensor, free: Tensor) -> SimplexDual:
    """``F(lam) = -[h^T lam + min_{u in box} (G^T lam)^T u + |u - centre|^2 / (2 tau)]``.

    ``G`` and ``centre`` must vanish off ``free`` (gradients in ``u`` and points of the unit box
    do): ``u`` and every term of ``psi`` are then 0 there without masking.
    """
    pick = row_picker(G, h, centre, tau, free)

    def value(lam: Tensor, rows: Tensor) -> Tensor:
        G_r, h_r, centre_r, tau_r, _ = pick(rows)
        c = lam @ G_r
        centre_, tau_ = centre_r[:, None, :], tau_r[:, None, None]
        u = (centre_ - tau_ * c).clamp(0.0, 1.0)
        psi = (c * u + (u - centre_).square() / (2.0 * tau_)).sum(-1)
        return -((lam * h_r[:, None, :]).sum(-1) + psi)

    def derivatives(lam: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        G_r, h_r, centre_r, tau_r, free_r = pick(rows)
        c = (lam[:, None, :] @ G_r).squeeze(1)
        tau_ = tau_r[:, None]
        raw = centre_r - tau_ * c
        u = raw.clamp(0.0, 1.0)
        psi = (c * u + (u - centre_r).square() / (2.0 * tau_)).sum(-1)
        inside = free_r & (raw > 0) & (raw < 1)
        grad = -((G_r @ u[..., None]).squeeze(-1) + h_r)
        masked = G_r * inside[:, None, :]
        hess = tau_[..., None] * (masked @ masked.transpose(1, 2))
        return -((lam * h_r).sum(-1) + psi), grad, hess

    return SimplexDual(value=value, derivatives=derivatives)


def box_lower_bound(G: Tensor, h: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
    """Weak-duality bound ``h^T lam + sum_j min(0, c_j)`` with ``c = G^T lam``, and ``c``."""
    c = (lam[:, None, :] @ G).squeeze(1)
    return (lam * h).sum(-1) + c.clamp_max(0.0).sum(-1), c


def solve_bundle(
    problem: Problem, y0: Tensor, *, tol: float, max_iter: int, max_planes: int = 32,
    newton_iter: int = 10,
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
    best_u, best_value = centre.clone(), centre_value.clone()
    k = max(2, min(max_planes, max_iter + 1))
    G = torch.zeros(batch, k, n, dtype=dtype, device=device)
    h = torch.zeros(batch, k, dtype=dtype, device=device)
    valid = torch.zeros(batch, k, dtype=torch.bool, device=device)
    lam = torch.zeros(batch, k, dtype=dtype, device=device)
    G[:, 1], h[:, 1] = grad, centre_value - (grad * centre).sum(-1)
    valid[:, 1], lam[:, 1] = True, 1
    allowance = box.plane_allowance(centre_value, grad, centre)
    tiny = torch.finfo(dtype).tiny ** 0.5
    tau = 0.5 / grad.abs().amax(-1).clamp_min(tiny)
    tau_min, tau_max = tau / 1000.0, tau * 1e6
    lower = torch.full((batch,), -torch.inf, dtype=dtype, device=device)
    running = torch.ones(batch, dtype=torch.bool, device=device)
    eps = 1e-13 if dtype == torch.float64 else 1e-5
    iterations = 0
    for iteration in range(max_iter):
        # only the examples still running: gather their state, update it, scatter it back;
        # while every example runs, views instead (the same values)
        rows = running.nonzero().squeeze(1)
        b = rows.numel()
        if b == 0:
            break
        iterations = iteration + 1
        every = b == batch
        take = whole if every else Rows(rows)
        arange = torch.arange(b, device=device)
        # planes are never dropped and a new one takes the first empty slot, so only the first
        # ``used`` slots can be occupied after this iteration
        used = min(k, iteration + 3)
        G_r, h_r, valid_r, lam_r = (take(t)[:, :used] for t in (G, h, valid, lam))
        centre_r, centre_value_r, tau_r, free_r = take(centre), take(centre_value), take(tau), \
            take(free)
        best_value_r = take(best_value)
        newton_tol = best_value_r.abs().clamp_min(1.0) * max(_NEWTON_TOL * tol, eps)
        new_lam, _ = solve_simplex_dual(proximal_dual(G_r, h_r, centre_r, tau_r, free_r), lam_r,
                                        valid_r, tol=newton_tol, max_iter=newton_iter)
        bound, c = box_lower_bound(G_r, h_r, new_lam)
        u = torch.where(free_r, (centre_r - tau_r[:, None] * c).clamp(0.0, 1.0),
                        torch.zeros_like(c))
        planes = (G_r @ u[..., None]).squeeze(-1) + h_r
        model = torch.where(valid_r, planes, torch.full_like(planes, -torch.inf)).amax(-1)
        value, grad, _ = box.evaluate(problem, u, index=None if every else rows)
        lower = put(lower, rows, torch.maximum(take(lower), bound), every)
        improved = value < best_value_r
        best_u = put(best_u, rows, torch.where(improved[:, None], u, take(best_u)), every)
        best_value_r = torch.where(improved, value, best_value_r)
        best_value = put(best_value, rows, best_value_r, every)
        predicted = (centre_value_r - model).clamp_min(0.0)
        serious = value <= centre_value_r - _SERIOUS * predicted
        good = serious & (value <= centre_value_r - _GOOD_MODEL * predicted)
        bad = ~serious & (value > centre_value_r)
        tau_r = torch.where(good, (2.0 * tau_r).clamp_max(take(tau_max)), tau_r)
        tau = put(tau, rows, torch.where(bad, (0.5 * tau_r).clamp_min(take(tau_min)), tau_r), every)
        centre = put(centre, rows, torch.where(serious[:, None], u, centre_r), every)
        centre_value = put(centre_value, rows, torch.where(serious, value, centre_value_r), every)
        # the new plane into an empty slot; once the bundle is full, the aggregate plane goes into
        # slot 0 (the next subproblem starts from it) and the new one replaces the least active.
        # Before that the aggregate would only duplicate a combination of the planes present
        # (a singular Newton system), so the next subproblem starts from this one's weights.
        full = valid_r[:, 1:].all(-1)
        aggregate = full[:, None]
        G_r[:, 0] = torch.where(aggregate, c, G_r[:, 0])
        h_r[:, 0] = torch.where(full, (new_lam * h_r).sum(-1), h_r[:, 0])
        valid_r[:, 0] |= full
        lam_r = torch.where(aggregate, torch.zeros_like(new_lam), new_lam)
        lam_r[:, 0] = torch.where(full, torch.ones_like(full, dtype=dtype), lam_r[:, 0])
        slot = choose_slot(valid_r, lam_r, first=1)
        G_r[arange, slot] = grad
        h_r[arange, slot] = value - (grad * u).sum(-1)
        allowance = put(allowance, rows, torch.maximum(
            take(allowance), box.plane_allowance(value, grad, u, index=None if every else rows)),
            every)
        valid_r[arange, slot] = True
        lam_r[arange, slot] = 0.0
        if not every:  # with every row, G_r, h_r and valid_r are views: written in place
            G[rows, :used], h[rows, :used], valid[rows, :used] = G_r, h_r, valid_r
        lam[rows, :used] = lam_r
        running = put(running, rows, ~_passed(best_value_r, take(lower), tol), every)
    lower = (lower.double() - allowance).to(dtype)  # reported: rounding of the planes removed
    converged = _passed(best_value, lower, tol)
    return ArgminResult(
        y=box.to_y(best_u).detach(), value=best_value.detach(), iterations=iterations,
        converged=converged, method="bundle", gap=(best_value - lower).detach(),
        lower_bound=lower.detach(), objective=best_value.detach(),
        info={"tau": tau, "planes": valid.sum(-1)},
    )


def _passed(best: Tensor, lower: Tensor, tol: float) -> Tensor:
    return (best - lower) <= tol * best.abs().clamp_min(1.0)

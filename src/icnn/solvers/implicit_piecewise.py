r"""Implicit gradients of the argmin of a piecewise-linear energy (ReLU ICNNs), any solver.

For ``f = q + (mu/2)||y||^2`` with ``q`` piecewise linear (curvature ``"piecewise_linear"``,
:class:`icnn.EnergyTraits`), near a minimiser ``y*`` over the box ``q`` is the maximum of the affine
pieces active at ``y*``, ``q(y) = max_{i in A} g_i^T y + h_i(theta)``; each piece is the network
with one activation pattern, and its plane is taken at a point ``y^i`` of its region,
``f(y^i) + grad f(y^i)^T (y - y^i)`` (less the quadratic). ``y*`` solves the KKT system of
``min t + (mu/2)||y||^2`` s.t. ``g_i^T y + h_i <= t`` (``i in A``), ``y_j = bound_j`` (``j in B``,
the coordinates at a bound), with multipliers ``lam`` on the simplex:

.. math::
    \mu y_F + G_{AF}^T \lambda = 0, \qquad G_A y + h_A = t 1, \qquad 1^T \lambda = 1,

square in ``(y_F, lam, t)`` (for ``mu = 0`` the LP vertex system, as in LP-sensitivity layers).
Holding ``A`` and ``B`` fixed, its adjoint
``[[mu I, G^T, 0], [G, 0, -1], [0, -1^T, 0]] [c_y; c_lam; c_t] = [-grad_F loss; 0; 0]`` gives
``grad_theta loss = sum_i c_lam_i d_theta plane_i(y*) + lam_i c_y^T d_theta g_i``, evaluated as
one surrogate through the planes' points (as the bundle-entropy backward does); ``x`` is just
another input of the planes.

Finding ``A`` (:func:`active_planes`): the plane at ``y*`` first, then repeatedly the min-norm
point ``d`` of ``{G^T lam + mu y* + normal cone of the box}``, ``lam`` on the simplex over the
planes found. While ``d != 0``, ``-d`` descends the model of the planes found but not ``f``
(``y*`` is optimal), so the plane of ``f`` at ``y* - r d / |d|`` (``r`` tiny) is a piece active at
``y*`` not yet found; it is added. This stops after at most ``n + 1`` planes with ``d = 0`` and
``A = {lam_i > 0}``. Coordinates within ``r`` of a bound count as at the bound.

Conventions and refusals:

* an argmin that is not unique, or a degenerate vertex (more pieces than needed), makes the
  adjoint system singular: there the derivative does not exist, and the *minimum-norm
  least-squares* adjoint (pseudo-inverse) is used: flat directions of the argmin get no
  gradient;
* if the active pieces cannot be identified (``y*`` not accurate to well below ``r``: no
  stationary combination of the planes near it exists), a ``ValueError`` is raised; it names
  what works (a tighter ``tol``, ``method='exact'``, ``method='bundle_entropy'``,
  ``differentiable='unroll'``).

The result is exact when ``y*`` is accurate to well below ``r`` (about ``1e-6`` of the box width
in float64, ``3e-3`` in float32) and no other kink of ``f`` lies within ``r`` of ``y*``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._simplex_newton import SimplexDual, row_picker, solve_simplex_dual
from .problem import Problem

_RADIUS = {torch.float64: 1e-6, torch.float32: 3e-3}
_RANDOM_PROBES = 4
_EXTRA_PLANES = 4


def probe_radius(dtype: torch.dtype) -> float:
    """Relative probing radius ``r`` for ``dtype`` (see the module doc)."""
    return _RADIUS.get(dtype, 1e-6 if torch.finfo(dtype).eps < 1e-10 else 3e-3)


def _flat(problem: Problem, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    b = problem.batch
    return (y.reshape(b, -1), problem.lo.reshape(b, -1), problem.hi.reshape(b, -1),
            problem.free.reshape(b, -1))


def _planes_at(problem: Problem, points: Tensor, index: Tensor, mu: float) -> tuple[Tensor, Tensor]:
    """Planes of ``q = f - (mu/2)||y||^2`` at ``points`` ``(m, n)`` of examples ``index`` ``(m,)``.

    ``g (m, n)``, ``h (m,)``.
    """
    value, grad = problem.value_and_grad(points.reshape(-1, *problem.shape), index=index)
    grad = grad.reshape(points.shape).to(points.dtype)
    g = grad - mu * points * problem.free.reshape(problem.batch, -1)[index]
    q = value.to(points.dtype) - 0.5 * mu * points.square().sum(-1)
    return g, q - (g * points).sum(-1)


def _min_norm_dual(G: Tensor, shift: Tensor, at_lo: Tensor, at_hi: Tensor, free: Tensor
                   ) -> SimplexDual:
    """``F(lam) = 1/2 |d(lam)|^2`` with ``d = G^T lam + shift`` less the normal cone.

    0 on fixed coordinates, ``min(d, 0)`` at a lower bound, ``max(d, 0)`` at an upper bound.
    """
    pick = row_picker(G, shift, at_lo, at_hi, free)

    def clipped(c: Tensor, lo_: Tensor, hi_: Tensor, free_: Tensor) -> tuple[Tensor, Tensor]:
        linear = free_ & ~(lo_ & (c > 0)) & ~(hi_ & (c < 0))
        return torch.where(linear, c, torch.zeros_like(c)), linear

    def value(lam: Tensor, rows: Tensor) -> Tensor:
        G_r, shift_r, lo_r, hi_r, free_r = pick(rows)
        c = lam @ G_r + shift_r[:, None, :]
        d, _ = clipped(c, lo_r[:, None, :], hi_r[:, None, :], free_r[:, None, :])
        return 0.5 * d.square().sum(-1)

    def derivatives(lam: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        G_r, shift_r, lo_r, hi_r, free_r = pick(rows)
        c = (lam[:, None, :] @ G_r).squeeze(1) + shift_r
        d, linear = clipped(c, lo_r, hi_r, free_r)
        masked = G_r * linear[:, None, :]
        return 0.5 * d.square().sum(-1), (G_r @ d[..., None]).squeeze(-1), \
            masked @ masked.transpose(1, 2)

    return SimplexDual(value=value, derivatives=derivatives)


def min_norm_weights(G: Tensor, valid: Tensor, shift: Tensor, at_lo: Tensor, at_hi: Tensor,
                     free: Tensor) -> tuple[Tensor, Tensor]:
    """Simplex weights minimising the residual ``|d|`` and that residual.

    Simplex weights ``lam (b, k)`` minimising ``|d|`` and the residual ``d (b, n)`` (see
    :func:`_min_norm_dual`).
    """
    dual = _min_norm_dual(G, shift, at_lo, at_hi, free)
    start = valid.to(G.dtype)
    scale = G.abs().amax((1, 2)).clamp_min(1.0)
    tol = scale.square() * torch.finfo(G.dtype).eps ** 1.5
    lam, _ = solve_simplex_dual(dual, start, valid, tol=tol, max_iter=100)
    c = (lam[:, None, :] @ G).squeeze(1) + shift
    linear = free & ~(at_lo & (c > 0)) & ~(at_hi & (c < 0))
    return lam, torch.where(linear, c, torch.zeros_like(c))


def active_planes(problem: Problem, y_star: Tensor) -> dict[str, Tensor]:
    """The pieces of ``f`` active at ``y*`` and their weights (see the module doc).

    Args:
        problem: the problem (traits: curvature ``"piecewise_linear"``).
        y_star: ``(batch, *shape)`` the minimiser.

    Returns:
        dict with ``points (b, k, n)``, ``G (b, k, n)`` (gradients of ``q``), ``lam (b, k)``
        (zero off the active planes), ``active (b, k)`` bool, ``interior (b, n)`` bool (free and
        not at a bound), ``residual (b,)`` the stationarity residual ``|d|_inf`` relative to the
        planes' gradients.

    Raises:
        ValueError: an example whose active pieces cannot be identified.
    """
    mu = problem.traits.strong_convexity
    y, lo, hi, free = _flat(problem, y_star.detach())
    batch, n = y.shape
    dtype = y.dtype
    radius = probe_radius(dtype)
    width = hi - lo
    scale = torch.where(torch.isfinite(width), width, y.abs().clamp_min(1.0))
    r = radius * scale
    at_lo = free & torch.isfinite(lo) & (y - lo <= r)
    at_hi = free & torch.isfinite(hi) & (hi - y <= r) & ~at_lo
    interior = free & ~at_lo & ~at_hi
    k = min(int(free.sum(-1).max()), n) + 1 + _RANDOM_PROBES + _EXTRA_PLANES
    points = y[:, None, :].repeat(1, k, 1)
    G = torch.zeros(batch, k, n, dtype=dtype, device=y.device)
    h = torch.zeros(batch, k, dtype=dtype, device=y.device)
    valid = torch.zeros(batch, k, dtype=torch.bool, device=y.device)
    # planes at random probes around y*, never at y* itself: y* lies on kinks, where autograd's
    # relu'(0) = 0 gives a plane with the right slope but not always the theta-derivative of a
    # piece of f; random points lie inside a piece's region almost surely
    generator = torch.Generator(device=y.device).manual_seed(0)

    def jitter(*size: int) -> Tensor:
        return torch.rand(*size, generator=generator, device=y.device).to(dtype) * 2.0 - 1.0

    probes = 1 + _RANDOM_PROBES
    first = (y[None] + r[None] * jitter(probes, batch, n)).clamp(lo, hi)
    first = torch.where(free, first, y)
    examples = torch.arange(batch, device=y.device).repeat(probes)
    g0, h0 = _planes_at(problem, first.reshape(-1, n), examples, mu)
    g0, h0 = g0.reshape(probes, batch, n), h0.reshape(probes, batch)
    for s in range(probes):
        new = _is_new(G, h, valid, g0[s], h0[s])
        slot = valid.sum(-1)
        rows = new.nonzero().squeeze(1)
        G[rows, slot[rows]], h[rows, slot[rows]] = g0[s, rows], h0[s, rows]
        points[rows, slot[rows]] = first[s, rows]
        valid[rows, slot[rows]] = True
    shift = mu * y * free
    gscale = torch.maximum(G.abs().amax((1, 2)), shift.abs().amax(-1)).clamp_min(
        torch.finfo(dtype).tiny)
    # a y* off by delta <= r leaves a residual up to mu * delta however many planes are found
    threshold = (torch.finfo(dtype).eps ** 0.5) * gscale + mu * r.amax(-1)
    stuck = torch.zeros(batch, dtype=torch.bool, device=y.device)
    while True:
        lam, d = min_norm_weights(G, valid, shift, at_lo, at_hi, free)
        size = d.abs().amax(-1)
        searching = (size > threshold) & ~stuck & (valid.sum(-1) < k)
        if not bool(searching.any()):
            break
        rows = searching.nonzero().squeeze(1)
        step = d[rows] / size[rows, None] + 0.01 * jitter(rows.numel(), n)
        probe = torch.where(free[rows], (y[rows] - r[rows] * step).clamp(lo[rows], hi[rows]),
                            y[rows])
        g_new, h_new = _planes_at(problem, probe, rows, mu)
        new = _is_new(G[rows], h[rows], valid[rows], g_new, h_new)
        stuck[rows[~new]] = True
        add = rows[new]
        slot = valid[add].sum(-1)
        G[add, slot], h[add, slot] = g_new[new], h_new[new]
        points[add, slot] = probe[new]
        valid[add, slot] = True
    residual = size / gscale
    failed = (size > threshold)
    if bool(failed.any()):
        raise ValueError(
            f"differentiable='implicit' on a piecewise-linear energy could not identify the "
            f"pieces active at the solution for {int(failed.sum())} of {batch} examples "
            f"(stationarity residual up to {float(residual.max()):.2e} relative): the solution "
            f"is not accurate to well below {radius:g} of the box width. Solve to a tighter tol "
            "(e.g. tol=1e-9) or with method='exact', or use method='bundle_entropy' or "
            "differentiable='unroll'"
        )
    active = valid & (lam > torch.finfo(dtype).eps ** 0.75)
    lam = torch.where(active, lam, torch.zeros_like(lam))
    lam = lam / lam.sum(-1, keepdim=True)
    return {"points": points, "G": G, "lam": lam, "active": active, "interior": interior,
            "residual": residual}


def _is_new(G: Tensor, h: Tensor, valid: Tensor, g: Tensor, h_new: Tensor) -> Tensor:
    """``(b,)`` True where a new plane differs from every valid plane.

    ``(b,)`` True where plane ``(g, h_new)`` differs from every valid plane (the same piece
    found twice gives the same plane up to rounding).
    """
    tol = torch.finfo(G.dtype).eps ** 0.5
    scale = g.abs().amax(-1).clamp_min(1.0)
    same_g = (G - g[:, None, :]).abs().amax(-1) <= tol * scale[:, None]
    same_h = (h - h_new[:, None]).abs() <= tol * h_new.abs().clamp_min(1.0)[:, None]
    return ~(valid & same_g & same_h).any(-1)


def kkt_adjoint(G: Tensor, active: Tensor, interior: Tensor, curvature: Tensor, rhs: Tensor
                ) -> tuple[Tensor, Tensor]:
    """Solve ``[[C, G^T, 0], [G, 0, -1], [0, -1^T, 0]] [c_y; c_lam; c_t] = [rhs; 0; 0]``.

    Restricted to the ``interior`` coordinates (``c_y = 0`` elsewhere) and the ``active`` planes
    (``c_lam = 0`` elsewhere), with ``C = diag(curvature)``; the minimum-norm least-squares
    solution where the system is singular (see the module doc).

    Args:
        G: ``(b, k, n)``.
        active: ``(b, k)``.
        interior: ``(b, n)``.
        curvature: ``(b, n)``.
        rhs: ``(b, n)``.

    Returns:
        ``c_y (b, n)`` and ``c_lam (b, k)``.
    """
    batch, k, n = G.shape
    dtype = G.dtype
    size = n + k + 1
    system = torch.zeros(batch, size, size, dtype=dtype, device=G.device)
    system[:, :n, :n] = torch.diag_embed(torch.where(interior, curvature, torch.ones_like(rhs)))
    coupling = torch.where(active[:, :, None] & interior[:, None, :], G, torch.zeros_like(G))
    system[:, n:n + k, :n] = coupling
    system[:, :n, n:n + k] = coupling.transpose(1, 2)
    system[:, n:n + k, n:n + k] = torch.diag_embed((~active).to(dtype))
    ones = active.to(dtype)
    system[:, n:n + k, -1] = -ones
    system[:, -1, n:n + k] = -ones
    # scale the plane rows so that the pseudo-inverse's cut-off sees a balanced matrix
    scale = G.abs().amax((1, 2)).clamp_min(torch.finfo(dtype).tiny)
    full_rhs = torch.zeros(batch, size, dtype=dtype, device=G.device)
    full_rhs[:, :n] = torch.where(interior, rhs, torch.zeros_like(rhs))
    rtol = torch.finfo(dtype).eps ** 0.6 * size
    balance = torch.ones(batch, size, dtype=dtype, device=G.device)
    balance[:, :n] = torch.where(interior, 1.0 / scale[:, None], torch.ones_like(rhs))
    scaled = balance[:, :, None] * system * balance[:, None, :]
    solution = balance * (torch.linalg.pinv(scaled, hermitian=True, rtol=rtol)
                          @ (balance * full_rhs)[..., None]).squeeze(-1)
    return solution[:, :n], torch.where(active, solution[:, n:n + k], torch.zeros_like(ones))

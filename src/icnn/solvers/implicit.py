r"""Gradients of a solution ``y*(x, theta)`` of ``min_y f(x, y; theta)`` without unrolling.

:func:`attach_implicit_gradient` returns ``y*`` (the solver's values) as a tensor connected to the
autograd graph of ``problem.x`` and the model's parameters. Nothing of the solver's iterations is
stored; the backward pass re-evaluates the model where needed (double backward). For the bundle
entropy regime it evaluates only the valid planes' points, through the differentiable conditioned
energy (:mod:`icnn.solvers.conditioning`): a PICNN's context path runs once per example, not once
per plane, and gradients to ``x`` and every weight flow through it exactly.

Two regimes:

* ``result.method == "bundle_entropy"``: the paper's Proposition 3 (Section 5.2). ``y*`` is the
  solution of the last bundle-entropy subproblem ``min_{u,t} t - H(u)`` s.t. ``G u + h <= t 1``
  (unit box ``y = lo + width * u``). With ``D = diag(u (1 - u))`` (the inverse of
  ``H = diag(1/u + 1/(1 - u))``) the KKT system
  ``[[H, G^T, 0], [G, 0, -1], [0, -1^T, 0]] [c_u; c_lam; c_t] = [-grad_u loss; 0; 0]`` is solved
  through the ``(k+1) x (k+1)`` Schur system ``[[G D G^T, 1], [1^T, 0]] [c_lam; c_t] =
  [G D d; 0]``, ``c_u = D (d - G^T c_lam)`` (``d = -grad_u loss``), and pushed back with
  ``grad_theta loss = sum_i c_lam_i grad_theta f(y^i) + grad_theta(grad_y f(y^i)^T v_i)``,
  ``v_i = lam_i c_y + c_lam_i (y* - y^i)`` and ``c_y = width * c_u``. The planes' points ``y^i``
  are held fixed. This is the exact derivative of ``argmin f - H`` for piecewise-linear (ReLU)
  models once the bundle holds the pieces active at ``y*``; for smooth models it ignores the
  curvature of ``f`` between the planes and is only an approximation.
* any other method: the implicit function theorem at ``y*`` on the free coordinates strictly
  inside the box (coordinates at a bound are held there; no gradient flows through them or into
  the bounds): ``H_FF v = grad_F loss`` by batched conjugate gradients with Hessian-vector
  products, then ``grad_{theta, x} loss = -grad_{theta, x} (grad_y f(x, y*)^T v)``. For
  piecewise-linear models the Hessian is zero almost everywhere, so this regime needs a smooth
  model or ``strong_convexity > 0``; ``damping`` adds ``damping * I`` to the Hessian.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..nn.energy import PIECEWISE_LINEAR
from .entropy import entropy_hessian_inverse
from .implicit_piecewise import active_planes, kkt_adjoint
from .problem import Problem
from .result import ArgminResult


def attach_implicit_gradient(
    problem: Problem, result: ArgminResult, *, damping: float = 0.0, cg_iter: int | None = None,
) -> Tensor:
    """``result.y`` connected to the graph of ``problem.x`` and the model parameters.

    Args:
        problem: the problem the solver ran on.
        result: the solver's result (``bundle_entropy`` results need their ``info``).
        damping: ``>= 0`` added to the Hessian's diagonal in the non-bundle-entropy regime.
        cg_iter: conjugate-gradient iterations at most (default: the number of coordinates + 10).

    Returns:
        ``(batch, *shape)`` tensor equal to ``result.y``.
    """
    if damping < 0:
        raise ValueError(f"damping must be >= 0, got {damping}")
    params = [p for p in problem.model.parameters() if p.requires_grad]
    traits = problem.traits
    if not traits.convex:
        raise ValueError("differentiable='implicit' needs a model convex in y, but this one is "
                         f"not: {'; '.join(traits.issues)}. Use differentiable='unroll'")
    if traits.kinks and traits.curvature != PIECEWISE_LINEAR:
        raise ValueError(
            f"differentiable='implicit' cannot differentiate the argmin of a {traits.curvature} "
            "energy with piecewise-linear kinks (e.g. a barrier or quadratic term added to a ReLU "
            "network): its Hessian misses the kinks and the active-set derivative needs a "
            "piecewise-linear energy. Use differentiable='unroll' (method='pgd'), or a smooth "
            "activation (softplus) in the model"
        )
    n = result.y[0].numel()
    if result.method == "bundle_entropy":
        missing = {"iterates", "lam", "G", "valid", "u", "width", "free"} - set(result.info)
        if missing:
            raise ValueError(f"bundle_entropy result lacks info {sorted(missing)}; pass the "
                             "result of solve_bundle_entropy unchanged")
        if traits.curvature == PIECEWISE_LINEAR:
            return _BundleEntropyArgmin.apply(problem, result, problem.x, *params)
        # smooth f: the curvature of f between the planes matters (Proposition 3 ignores it)
        return _ImplicitArgmin.apply(problem, result, damping, cg_iter or n + 10, problem.x,
                                     *params)
    if traits.curvature == PIECEWISE_LINEAR:
        return _PiecewiseArgmin.apply(problem, result, problem.x, *params)
    return _ImplicitArgmin.apply(problem, result, damping, cg_iter or n + 10, problem.x, *params)


def _model_at(problem: Problem, x: Tensor | None, y: Tensor) -> Tensor:
    from ..nn.input_checks import validation

    with validation(False):
        return problem.model(y) if x is None else problem.model(x, y)


def _energy_at(problem: Problem, x: Tensor | None, y: Tensor, example: Tensor) -> Tensor:
    """``f(x[example], y)`` in the autograd graph of ``x`` and the weights, ``(len(example),)``.

    Uses :func:`icnn.solvers.conditioning.conditioned_energy` (differentiable), so a PICNN's
    context path runs once per example rather than once per row of ``y``; other models are
    called on ``x`` repeated.
    """
    from .conditioning import conditioned_energy

    energy = conditioned_energy(problem.model, x, differentiable=True)
    if energy is not None:
        return energy(y, example)
    return _model_at(problem, None if x is None else x[example], y)


def _grad_targets(x: Tensor | None, params: tuple[Tensor, ...],
                  x_grad: bool) -> tuple[Tensor | None, list]:
    x_leaf = None if x is None else x.detach().requires_grad_(x_grad)
    targets = ([x_leaf] if x_grad else []) + list(params)
    return x_leaf, targets


def _split_grads(x_grad: bool, grads: tuple, sign: float) -> tuple:
    grads = [None if g is None else sign * g for g in grads]
    return tuple(grads) if x_grad else (None, *grads)


def _planes_backward(problem: Problem, x: Tensor | None, params: tuple[Tensor, ...],
                     x_grad: bool, planes: dict[str, Tensor], y_star: Tensor) -> tuple:
    """The adjoint of the bundle method's planes at ``y*``.

    ``sum_i c_lam_i d plane_i(y*) + grad_y f(y^i)^T v_i``, ``v_i = lam_i c_y + c_lam_i
    (y* - y^i)``, differentiated in ``x`` and ``params``: the gradients of the loss.

    ``planes`` holds ``points (b, k, n)``, ``lam``, ``c_lam``, ``valid (b, k)`` and ``c_y (b, n)``;
    only the valid planes are evaluated, with the context path computed once per example.
    """
    x_leaf, targets = _grad_targets(x, params, x_grad)
    if not targets:
        return (None,) * (1 + len(params))
    points, lam, c_lam, valid = planes["points"], planes["lam"], planes["c_lam"], planes["valid"]
    batch = points.shape[0]
    y_flat = y_star.reshape(batch, -1).to(points.dtype)
    directions = lam[..., None] * planes["c_y"][:, None, :] + c_lam[..., None] * (
        y_flat[:, None, :] - points)
    example, plane = valid.nonzero(as_tuple=True)
    with torch.enable_grad():
        y_points = points[example, plane].reshape(-1, *problem.shape).detach().requires_grad_(True)
        values = _energy_at(problem, x_leaf, y_points, example)
        (grad_points,) = torch.autograd.grad(values.sum(), y_points, create_graph=True)
        surrogate = (c_lam[example, plane] * values).sum() + (
            grad_points.reshape(example.numel(), -1) * directions[example, plane]).sum()
        grads = torch.autograd.grad(surrogate, targets, allow_unused=True)
    return _split_grads(x_grad, grads, 1.0)


def _remember(ctx, problem: Problem, result: ArgminResult, x: Tensor | None,  # noqa: ANN001
              params: tuple[Tensor, ...]) -> Tensor:
    """The common forward of the argmin autograd functions.

    Keep what the backward needs and return ``y*`` (the solver's values, a new tensor).
    """
    ctx.problem, ctx.result = problem, result
    ctx.save_for_backward(*(() if x is None else (x,)), *params)
    ctx.has_x = x is not None
    return result.y.detach().clone()


class _BundleEntropyArgmin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, problem, result, x, *params):  # noqa: ANN001
        return _remember(ctx, problem, result, x, params)

    @staticmethod
    def backward(ctx, grad_y):  # noqa: ANN001
        problem, info = ctx.problem, ctx.result.info
        saved = ctx.saved_tensors
        x = saved[0] if ctx.has_x else None
        params = saved[1:] if ctx.has_x else saved
        batch = grad_y.shape[0]
        u, width, free = info["u"], info["width"], info["free"]
        lam, valid = info["lam"], info["valid"]
        G_u = info["G"] * width[:, None, :]
        k = lam.shape[1]
        dtype = u.dtype
        d = -(grad_y.reshape(batch, -1).to(dtype) * width)
        # inverse Hessian in u of -H(u) + (mu/2)||lo + width u||^2 (the quadratic part of f)
        entropy_inverse = entropy_hessian_inverse(u)
        mu = problem.traits.strong_convexity
        inv_h = entropy_inverse / (1.0 + mu * width.square() * entropy_inverse)
        inv_h = torch.where(free, inv_h, torch.zeros_like(u))
        schur = (G_u * inv_h[:, None, :]) @ G_u.transpose(1, 2)
        ones = valid.to(dtype)
        system = torch.zeros(batch, k + 1, k + 1, dtype=dtype, device=u.device)
        pair = valid[:, :, None] & valid[:, None, :]
        # a tiny ridge makes repeated planes (the same linear piece added twice) solvable; it
        # splits their weight evenly, which leaves the gradient unchanged
        diag = torch.diagonal(schur, dim1=1, dim2=2).where(valid, torch.zeros_like(lam))
        ridge = (1e-12 if dtype == torch.float64 else 1e-6) * diag.amax(-1).clamp_min(
            torch.finfo(dtype).tiny)
        schur = schur + torch.diag_embed(ridge[:, None].expand_as(lam))
        system[:, :k, :k] = torch.where(pair, schur, torch.diag_embed(1.0 - ones))
        system[:, :k, k] = ones
        system[:, k, :k] = ones
        rhs = torch.zeros(batch, k + 1, dtype=dtype, device=u.device)
        rhs[:, :k] = torch.where(valid, (G_u @ (inv_h * d)[..., None]).squeeze(-1), 0.0)
        solution = torch.linalg.solve(system, rhs[..., None]).squeeze(-1)
        c_lam = torch.where(valid, solution[:, :k], torch.zeros_like(lam))
        c_u = inv_h * (d - (c_lam[:, None, :] @ G_u).squeeze(1))
        planes = {"points": info["iterates"], "lam": lam, "c_lam": c_lam, "valid": valid,
                  "c_y": width * c_u}
        x_grad = x is not None and ctx.needs_input_grad[2]
        return (None, None, *_planes_backward(problem, x, params, x_grad, planes,
                                              ctx.result.y))


class _PiecewiseArgmin(torch.autograd.Function):
    """The active-set derivative of a piecewise-linear energy's argmin.

    The active-set derivative of a piecewise-linear energy's argmin
    (:mod:`icnn.solvers.implicit_piecewise`).
    """

    @staticmethod
    def forward(ctx, problem, result, x, *params):  # noqa: ANN001
        return _remember(ctx, problem, result, x, params)

    @staticmethod
    def backward(ctx, grad_y):  # noqa: ANN001
        problem = ctx.problem
        saved = ctx.saved_tensors
        x = saved[0] if ctx.has_x else None
        params = saved[1:] if ctx.has_x else saved
        x_grad = x is not None and ctx.needs_input_grad[2]
        if not x_grad and not params:
            return (None, None, None, *([None] * len(params)))
        y_star = ctx.result.y.detach()
        try:
            found = active_planes(problem, y_star)
        except ValueError as first_error:
            # an uncertified or loose solution: re-solve tightly from it, differentiate there
            y_star = _polish(problem, y_star, first_error)
            found = active_planes(problem, y_star)
        batch = y_star.shape[0]
        dtype = found["G"].dtype
        rhs = -grad_y.reshape(batch, -1).to(dtype)
        curvature = torch.full_like(rhs, problem.traits.strong_convexity)
        c_y, c_lam = kkt_adjoint(found["G"], found["active"], found["interior"], curvature, rhs)
        planes = {"points": found["points"], "lam": found["lam"], "c_lam": c_lam,
                  "valid": found["active"], "c_y": c_y}
        return (None, None, *_planes_backward(problem, x, params, x_grad, planes, y_star))


def interior_mask(problem: Problem, y: Tensor, grad: Tensor | None = None) -> Tensor:
    """Free coordinates strictly inside the box.

    A coordinate is at a bound when it is within a few ulps of it, or (with ``grad``, the
    gradient of ``f`` at ``y``) within ``sqrt(eps)`` of it while the gradient pushes it out of
    the box: a solver stopped at ``tol`` leaves such coordinates near, not on, the bound, and the
    implicit function theorem must hold them there.
    """
    eps = torch.finfo(y.dtype).eps
    lo, hi = problem.lo, problem.hi
    scale_lo, scale_hi = lo.abs().clamp_min(1.0), hi.abs().clamp_min(1.0)
    near_lo = y <= lo + eps ** 0.75 * scale_lo
    near_hi = y >= hi - eps ** 0.75 * scale_hi
    if grad is not None:
        dims = tuple(range(1, y.ndim))
        pushing = grad.abs() > eps ** 0.5 * grad.abs().amax(dims, keepdim=True)
        near_lo = near_lo | (pushing & (grad > 0) & (y <= lo + eps ** 0.5 * scale_lo))
        near_hi = near_hi | (pushing & (grad < 0) & (y >= hi - eps ** 0.5 * scale_hi))
    return problem.free & (torch.isinf(lo) | ~near_lo) & (torch.isinf(hi) | ~near_hi)


class _ImplicitArgmin(torch.autograd.Function):
    """The implicit function theorem at ``y*`` with Hessian-vector products of ``f``.

    For a ``bundle_entropy`` result, of ``f - H`` (the entropy's diagonal Hessian in ``y``, ``(1/u + 1/(1 -
    u)) / width^2``, added on the free coordinates).
    """

    @staticmethod
    def forward(ctx, problem, result, damping, cg_iter, x, *params):  # noqa: ANN001
        ctx.damping, ctx.cg_iter = damping, cg_iter
        return _remember(ctx, problem, result, x, params)

    @staticmethod
    def backward(ctx, grad_y):  # noqa: ANN001
        problem, result = ctx.problem, ctx.result
        saved = ctx.saved_tensors
        x = saved[0] if ctx.has_x else None
        params = saved[1:] if ctx.has_x else saved
        x_grad = x is not None and ctx.needs_input_grad[4]
        x_leaf, targets = _grad_targets(x, params, x_grad)
        nones = (None, None, None, None)
        if not targets:
            return (*nones, None, *([None] * len(params)))
        y_star = result.y.detach()
        with torch.enable_grad():
            y_leaf = y_star.clone().requires_grad_(True)
            values = _model_at(problem, x_leaf, y_leaf)
            (grad_y_f,) = torch.autograd.grad(values.sum(), y_leaf, create_graph=True)
        if result.method == "bundle_entropy":
            info = result.info
            u, width, free = info["u"], info["width"], info["free"]
            inverse = entropy_hessian_inverse(u) * torch.where(
                free, width, torch.ones_like(width)).square()
            # a coordinate on a face up to rounding (u(1 - u) <= eps; 1 - u = 0 in float32) has a
            # barrier beyond 1/eps: its derivative is the limit 0 to working precision, so it is
            # held like a bound rather than entering CG as inf * p (NaN gradients) or as a
            # diagonal 1/eps times the rest (CG cannot resolve that conditioning)
            eps = torch.finfo(u.dtype).eps
            held = free & (entropy_hessian_inverse(u) <= eps)
            free = free & ~held
            barrier = torch.where(free, 1.0 / torch.where(free, inverse, torch.ones_like(inverse)),
                                  torch.zeros_like(u))
            diagonal = (barrier + ctx.damping).reshape(y_star.shape)
            inside = free.reshape(y_star.shape)
        else:
            diagonal = torch.full_like(y_star, ctx.damping)
            inside = interior_mask(problem, y_star, grad_y_f.detach())
        rhs = torch.where(inside, grad_y.to(y_star.dtype), torch.zeros_like(y_star))
        with torch.enable_grad():
            def hvp(p: Tensor) -> Tensor:
                (hp,) = torch.autograd.grad(grad_y_f, y_leaf, grad_outputs=p, retain_graph=True)
                return torch.where(inside, hp + diagonal * p, torch.zeros_like(p))

            v = batched_cg(hvp, rhs, max_iter=ctx.cg_iter)
            surrogate = (grad_y_f * v.detach()).sum()
            grads = torch.autograd.grad(surrogate, targets, allow_unused=True)
        return (*nones, *_split_grads(x_grad, grads, -1.0))


def _polish(problem: Problem, y: Tensor, error: ValueError) -> Tensor:
    """``y`` re-solved tightly for the active-set derivative of a piecewise-linear energy.

    By the exact LP/QP where the model supports it, else by the bundle method on a bounded box; re-raises
    ``error`` if neither applies.
    """
    from .exact import check_exact_supported, solve_exact

    try:
        check_exact_supported(problem)
    except ValueError:
        if not problem.bounded:
            raise error from None
        from .bundle import solve_bundle

        polish_tol = 1e-10 if y.dtype == torch.float64 else 1e-6
        return solve_bundle(problem, y, tol=polish_tol, max_iter=500).y.detach()
    return solve_exact(problem).y.detach()


def batched_cg(matvec, rhs: Tensor, *, max_iter: int, rel_tol: float | None = None) -> Tensor:  # noqa: ANN001
    """Solve ``A v = rhs`` per example (``A`` symmetric positive semi-definite) by CG.

    Examples whose curvature ``p^T A p`` vanishes stop there (a singular ``A``, e.g. of a ReLU
    model, gives the partial solution rather than a blow-up).

    Args:
        matvec (Callable[[Tensor], Tensor]): ``(batch, *shape) -> (batch, *shape)``.
        rhs: ``(batch, *shape)``.
        max_iter: iterations at most.
        rel_tol: stop when ``|r| <= rel_tol |rhs|`` per example (default ``sqrt(eps)`` scaled).
    """
    dims = tuple(range(1, rhs.ndim))
    tol = rel_tol if rel_tol is not None else torch.finfo(rhs.dtype).eps ** 0.9
    v = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rr = (r * r).sum(dims)
    target = tol**2 * rr
    active = rr > 0
    shape = (-1,) + (1,) * (rhs.ndim - 1)
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        ap = matvec(p)
        curvature = (p * ap).sum(dims)
        active = active & (curvature > torch.finfo(rhs.dtype).tiny)
        alpha = torch.where(active, rr / torch.where(active, curvature, 1.0), 0.0)
        v = v + alpha.view(shape) * p
        r = r - alpha.view(shape) * ap
        rr_new = (r * r).sum(dims)
        beta = torch.where(active, rr_new / torch.where(rr > 0, rr, 1.0), 0.0)
        p = r + beta.view(shape) * p
        rr = rr_new
        active = active & (rr > target)
    return v

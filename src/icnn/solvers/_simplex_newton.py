"""Batched projected Newton method over the probability simplex (Bertsekas, 1982).

Both bundle methods solve, per example, a small dual problem over the weights ``lam`` of their
cutting planes ``g_i^T u + h_i``:

    minimise  F(lam) = -(h^T lam + psi(G^T lam))   s.t.  lam >= 0, 1^T lam = 1,

where ``psi(c) = min_{u in [0,1]^n} c^T u + R(u)`` is concave and separable and ``R`` is the
regulariser of the primal subproblem (negative entropy for bundle entropy, a proximal quadratic
for the bundle method). With ``u(c)`` the minimiser, ``grad F = -(G u + h)`` (minus the plane
values at ``u``) and ``hess F = G diag(w) G^T`` with ``w = -du/dc >= 0``: only a ``k x k`` matrix.

The method follows Bertsekas's projected Newton (Nonlinear Programming; Bertsekas 1982, eq. 97)
as in the authors' ``bundle_entropy_dual.py``: the largest weight ``lam_m`` is eliminated through
``1^T lam = 1``; on the reduced weights (constraint ``>= 0``) the epsilon-active bound set gets a
diagonally scaled gradient step and the other weights a Newton step; a projected Armijo search
along the arc picks the step. All of it is batched: every example has its own ``m``, its own
bound set and its own step length; candidates of the line search are evaluated at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .iterative import Rows, put, whole


@dataclass
class SimplexDual:
    """Callbacks describing ``F`` for a batch; see the module docstring.

    Both take ``rows``, a 1-D long tensor of the batch rows the weights belong to (the solver
    works only on the rows not yet stationary), and index their own data with it.

    Attributes:
        value: ``(lam (b, S, k), rows) -> F (b, S)`` for ``S`` candidate weight vectors.
        derivatives: ``(lam (b, k), rows) -> (F (b,), grad (b, k), hess (b, k, k))``.
    """

    value: Callable[[Tensor, Tensor], Tensor]
    derivatives: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


def row_picker(*tensors: Tensor) -> Callable[[Tensor], tuple[Tensor, ...]]:
    """A row picker that remembers its last rows.

    ``pick(rows) -> tuple(t[rows] for t in tensors)``, remembering the last ``rows`` so that a
    dual's ``value`` and ``derivatives`` in the same Newton iteration share one gather.

    ``rows`` must be sorted without repeats (as ``nonzero`` gives them): all ``batch`` rows then
    return the tensors themselves.
    """
    cache: dict[str, object] = {"rows": None, "picked": ()}
    batch = tensors[0].shape[0]

    def pick(rows: Tensor) -> tuple[Tensor, ...]:
        if rows.numel() == batch:  # every row, in order (rows come from nonzero): no copies
            return tensors
        if cache["rows"] is not rows:
            cache["rows"], cache["picked"] = rows, tuple(t[rows] for t in tensors)
        return cache["picked"]  # type: ignore[return-value]

    return pick


_STEPS = 20  # candidate step lengths 1, 1/2, ..., 2^-19
_FIRST, _TAIL = slice(0, 5), slice(5, _STEPS)  # candidates tried first, and the rest
_ARMIJO = 1e-4


def solve_simplex_dual(
    dual: SimplexDual, lam: Tensor, valid: Tensor, *, tol: Tensor, max_iter: int = 60,
) -> tuple[Tensor, Tensor]:
    """Minimise ``F`` over the simplex on the ``valid`` planes, batched.

    Only the rows not yet stationary are worked on (a few hard rows do not make every Newton
    iteration cost the whole batch), and the shorter line-search candidates are evaluated only
    for the rows whose full step failed.

    Args:
        dual: the objective.
        lam: ``(batch, k)`` starting weights; renormalised onto the valid planes.
        valid: ``(batch, k)`` bool; invalid planes keep weight 0. Every row needs one valid plane.
        tol: ``(batch,)`` stopping tolerance on the projected reduced gradient (plane-value units).
        max_iter: Newton iterations at most.

    Returns:
        ``lam (batch, k)`` on the simplex and ``done (batch,)``: True where the stationarity test
        passed (or no step made progress any more).
    """
    batch, k = lam.shape
    dtype = lam.dtype
    tol = torch.as_tensor(tol, dtype=dtype, device=lam.device).expand(batch)
    lam = torch.where(valid, lam.clamp_min(0.0), torch.zeros_like(lam))
    total = lam.sum(-1, keepdim=True)
    uniform = valid.to(dtype) / valid.sum(-1, keepdim=True).clamp_min(1).to(dtype)
    lam = torch.where(total > 0, lam / total.clamp_min(torch.finfo(dtype).tiny), uniform)
    done = valid.sum(-1) <= 1
    steps = 0.5 ** torch.arange(_STEPS, dtype=dtype, device=lam.device)  # (S,)
    eye = torch.eye(k, dtype=dtype, device=lam.device)
    ridge_scale = 1e-10 if dtype == torch.float64 else 1e-5
    for _ in range(max_iter):
        rows = (~done).nonzero().squeeze(1)
        b = rows.numel()
        if b == 0:
            break
        # every row running: views instead of gathers and scatters (the same values)
        every = b == batch
        take = whole if every else Rows(rows)
        lam_r, valid_r = take(lam), take(valid)
        value, grad, hess = dual.derivatives(lam_r, rows)
        m = torch.where(valid_r, lam_r, torch.full_like(lam_r, -1.0)).argmax(-1)  # (b,)
        is_m = torch.nn.functional.one_hot(m, k).to(torch.bool)
        reduced = valid_r & ~is_m
        grad_m = grad.gather(-1, m[:, None])
        r = torch.where(reduced, grad - grad_m, torch.zeros_like(grad))
        # projected reduced gradient: how far lam is from stationarity
        stationarity = (lam_r - (lam_r - r).clamp_min(0.0)).where(reduced, torch.zeros_like(r))
        measure = stationarity.abs().amax(-1)
        stationary = measure <= take(tol)
        if bool(stationary.all()):  # nothing moves: the line search would be thrown away
            done = put(done, rows, torch.ones_like(stationary), every)
            break
        eps = measure.clamp_max(1e-3)[:, None]
        bound = reduced & (lam_r <= eps) & (r > 0)
        newton = reduced & ~bound
        # reduced Hessian T^T H T with T's columns e_i - e_m
        h_row_m = hess.gather(1, m[:, None, None].expand(b, 1, k))  # (b, 1, k)
        h_mm = h_row_m.gather(2, m[:, None, None])  # (b, 1, 1)
        red_hess = hess - h_row_m - h_row_m.transpose(1, 2) + h_mm
        pair = newton[:, :, None] & newton[:, None, :]
        diag = torch.diagonal(red_hess, dim1=1, dim2=2)
        scale = diag.where(newton, torch.zeros_like(diag)).abs().amax(-1)
        ridge = (ridge_scale * scale + torch.finfo(dtype).tiny ** 0.5)[:, None]
        system = torch.where(pair, red_hess, torch.zeros_like(red_hess)) + eye * torch.where(
            newton, ridge, torch.ones_like(lam_r))[:, None, :]
        rhs = torch.where(newton, r, torch.zeros_like(r))
        chol, info = torch.linalg.cholesky_ex(system)
        newton_dir = -torch.cholesky_solve(rhs[..., None], chol).squeeze(-1)
        # rows whose Cholesky failed fall back on a diagonally scaled gradient step
        grad_dir = -r / (diag.clamp_min(0.0) + ridge)
        failed = (info != 0)[:, None]
        direction = torch.where(newton & ~failed, newton_dir, grad_dir)
        direction = torch.where(reduced, direction, torch.zeros_like(direction))
        # weights live in [0, 1]: a longer step only helps along a (near) null direction. The
        # length is measured on the Newton set only: a bound weight (at most eps, pushed down)
        # lands on 0 by the projection, however long its scaled-gradient step, and must not
        # shorten the Newton step of the others
        length = direction.where(newton, torch.zeros_like(direction)).abs().amax(-1, keepdim=True)
        direction = direction / length.clamp_min(1.0)
        # candidates along the projection arc: the few longest for every row at once (most
        # rows accept one of them), then the tail of shorter ones only for the rows where all
        # of those failed
        first = _arc(lam_r, direction, steps[_FIRST], reduced, is_m)
        accept, chosen = _armijo(dual, first, lam_r, value, r, rows)
        retry = (~accept & ~stationary).nonzero().squeeze(1)
        if retry.numel() > 0:
            short = _arc(lam_r[retry], direction[retry], steps[_TAIL], reduced[retry],
                         is_m[retry])
            accept_short, chosen_short = _armijo(dual, short, lam_r[retry], value[retry],
                                                 r[retry], rows[retry])
            chosen[retry] = chosen_short
            accept[retry] = accept_short
        move = accept & ~stationary
        lam = put(lam, rows, torch.where(move[:, None], chosen, lam_r), every)
        done = put(done, rows, stationary | ~accept, every)
    return lam, done


def _arc(lam: Tensor, direction: Tensor, steps: Tensor, reduced: Tensor, is_m: Tensor) -> Tensor:
    """Points ``P(lam + a d)`` for each step ``a``: ``(b, S, k)``; ``lam_m`` absorbs the sum."""
    cand = (lam[:, None, :] + steps[None, :, None] * direction[:, None, :]).clamp_min(0.0)
    cand = torch.where(reduced[:, None, :], cand, torch.zeros_like(cand))
    lam_m = 1.0 - cand.sum(-1, keepdim=True)
    return torch.where(is_m[:, None, :], lam_m.expand_as(cand), cand)


def _armijo(dual: SimplexDual, cand: Tensor, lam: Tensor, value: Tensor, r: Tensor,
            rows: Tensor) -> tuple[Tensor, Tensor]:
    """Whether some candidate passes the Armijo test, and the first (longest) that does."""
    b, _, k = cand.shape
    feasible = (cand >= 0).all(-1)
    decrease = (r[:, None, :] * (cand - lam[:, None, :])).sum(-1)
    accept = feasible & (dual.value(cand, rows) <= value[:, None] + _ARMIJO * decrease)
    first = accept.to(torch.int8).argmax(-1)
    chosen = cand.gather(1, first[:, None, None].expand(b, 1, k)).squeeze(1)
    return accept.any(-1), chosen

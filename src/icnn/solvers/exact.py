r"""Exact inference for piecewise-linear dense ICNNs: the linear program of paper Section 4.1.

For a fixed context ``x`` the y-path of a dense ICNN is ``z_{i+1} = g_i(A_i z_i + B_i y + c_i)``
with ``A_i >= 0`` (see :meth:`icnn.FICNN.affine_layers`). When every ``g_i`` is piecewise linear,
``g_i(t) = max_k (a_k t + c_k)``, minimising ``z_k`` over ``y`` is the linear program

.. math::
    \min_{y, z} \; z_k \quad \text{s.t.} \quad
    z_{i+1} \ge a_k (A_i z_i + B_i y + c_i) + c_k \;\; \forall i, k, \qquad lo \le y \le hi,

which is tight because every ``z`` enters later layers with non-negative weights through
non-decreasing activations, so the objective pushes each ``z`` down onto its activation. Pieces
with slope 0 become variable bounds; an identity output layer is folded into the objective.
With ``strong_convexity = mu > 0`` the objective gains ``(mu/2)||y||^2`` and the problem is a QP,
solved by HiGHS's QP solver through the Hessian ``mu I``.

Each example is its own LP, solved one after the other by HiGHS (the library's reference solver
for tests and benchmarks, not a fast path); each LP's matrix is assembled from dense blocks by
:mod:`scipy.sparse` without Python loops over units.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import scipy.sparse as sp
import torch

from ..nn.energy import PIECEWISE_LINEAR
from .problem import Problem
from .result import ArgminResult

_QP_REGULARIZATION = 1e-13
_QP_RETRY_REGULARIZATION = 1e-7  # HiGHS's default
_QP_RETRY_FEASIBILITY = 1e-4

_PIECEWISE_HINT = ("exact inference needs piecewise-linear activations (relu, leaky_relu, "
                   "identity, abs); use method='pgd', 'lbfgs' or 'bundle' for smooth ones")


def check_exact_supported(problem: Problem) -> None:
    """Raise ``ValueError`` unless ``problem`` can be solved as an LP/QP."""
    model = problem.model
    if not hasattr(model, "affine_layers"):
        raise ValueError(
            f"method='exact' needs a dense ICNN with affine_layers(x) (FICNN or PICNN); "
            f"{type(model).__name__} has none (convolutional models are not supported)"
        )
    if len(problem.shape) != 1:
        raise ValueError(f"method='exact' needs a flat y of shape (batch, y_dim), "
                         f"got per-example shape {problem.shape}")
    if problem.traits.curvature != PIECEWISE_LINEAR:
        raise ValueError(f"method='exact' cannot solve a {problem.traits.curvature} energy: "
                         + _PIECEWISE_HINT)


def solve_exact(problem: Problem, *, tol: float = 1e-9) -> ArgminResult:
    """Solve every example's LP (or QP when ``strong_convexity > 0``) with HiGHS.

    Args:
        problem: the batched problem; its model must provide ``affine_layers(x)``.
        tol: HiGHS primal/dual feasibility tolerance.

    Returns:
        :class:`ArgminResult` with ``lower_bound`` HiGHS's optimal objective and ``gap`` the
            model's value at ``y`` minus it (float rounding only);
        ``converged`` is True where HiGHS reported an optimal solution; elsewhere (an iteration
        or time limit) ``lower_bound`` is ``-inf`` and ``gap`` ``inf``: no certificate.

    Raises:
        ValueError: smooth activations, no ``affine_layers``, a negative ``A_i`` (the model is
            not convex, e.g. ``constraint="project"`` before ``project_()``), or an LP that is
            unbounded below (linear model on an unbounded domain).
    """
    check_exact_supported(problem)
    model = problem.model
    mu = problem.traits.strong_convexity
    with torch.no_grad():
        layers = (model.affine_layers(problem.x) if problem.x is not None
                  else model.affine_layers())
        blocks = []
        for i, layer in enumerate(layers):
            z_weight = None if layer.z_weight is None else layer.z_weight.double().cpu().numpy()
            if z_weight is not None and (z_weight < 0).any():
                raise ValueError(
                    f"layer {i} has negative z-weights (min {z_weight.min():.3g}): the model is "
                    "not convex in y, so its LP is not exact; call model.project_() first"
                )
            blocks.append((z_weight, layer.y_weight.double().cpu().numpy(),
                           layer.bias.double().cpu().numpy(), layer.activation.pieces()))
    lo = problem.lo.double().cpu().numpy()
    hi = problem.hi.double().cpu().numpy()
    batch, y_dim = lo.shape

    ys = np.zeros((batch, y_dim))
    lower = np.full(batch, -np.inf)
    ok = np.zeros(batch, dtype=bool)
    highs = _new_highs(tol)
    for b in range(batch):  # one LP per example: the reference, not the fast path
        lp = _build_lp([_take(block, b) for block in blocks], lo[b], hi[b], mu)
        ys[b], lower[b], ok[b] = _solve(highs, lp, y_dim, mu)
    dtype, device = problem.lo.dtype, problem.lo.device
    y = problem.project(torch.as_tensor(ys, dtype=dtype, device=device))
    with torch.no_grad():
        value = problem.value(y)
    lower_bound = torch.as_tensor(lower, dtype=dtype, device=device)
    gap = (value - lower_bound).clamp_min(0.0)
    return ArgminResult(
        y=y, value=value, iterations=1, converged=torch.as_tensor(ok, device=device),
        method="exact", gap=gap, lower_bound=lower_bound, objective=value,
    )


def _take(block, b):
    """Example ``b``'s blocks (FICNN blocks have batch dim 1 and are shared)."""
    z_weight, y_weight, bias, pieces = block

    def pick(a):
        return a[b if a.shape[0] > 1 else 0]

    return (None if z_weight is None else pick(z_weight), pick(y_weight), pick(bias), pieces)


def _build_lp(blocks, lo: np.ndarray, hi: np.ndarray, mu: float) -> dict:
    """Columns ``[y, z_1, ..., z_m]``; rows ``a_k A z_prev + a_k B y - z <= -a_k c - c_k``."""
    y_dim = lo.shape[0]
    last_z, last_y, last_bias, last_pieces = blocks[-1]
    fold_output = tuple(last_pieces) == ((1.0, 0.0),)
    variable_blocks = blocks[:-1] if fold_output else blocks
    sizes = [bias.shape[0] for _, _, bias, _ in variable_blocks]
    offsets = np.cumsum([y_dim, *sizes])
    n_col = int(offsets[-1])
    col_lower, col_upper = [lo], [hi]
    rows, row_upper = [], []
    for i, (z_weight, y_weight, bias, pieces) in enumerate(variable_blocks):
        n_out = bias.shape[0]
        slopes = np.array([a for a, _ in pieces])
        shifts = np.array([c for _, c in pieces])
        flat = slopes == 0.0
        col_lower.append(np.full(n_out, shifts[flat].max() if flat.any() else -np.inf))
        col_upper.append(np.full(n_out, np.inf))
        for a, c in zip(slopes[~flat], shifts[~flat], strict=True):
            parts = [sp.csr_matrix(a * y_weight)]
            if i > 0:  # zeros up to the previous layer's columns [offsets[i-1], offsets[i])
                parts.append(sp.csr_matrix((n_out, int(offsets[i - 1] - y_dim))))
                parts.append(sp.csr_matrix(a * z_weight))
            parts.append(-sp.identity(n_out, format="csr"))
            row = sp.hstack(parts, format="csr")
            rows.append(sp.hstack([row, sp.csr_matrix((n_out, n_col - row.shape[1]))],
                                  format="csr"))
            row_upper.append(-a * bias - c)
    cost = np.zeros(n_col)
    offset = 0.0
    if fold_output:
        cost[:y_dim] = last_y[0]
        if last_z is not None:
            cost[int(offsets[-2]):int(offsets[-1])] = last_z[0]
        offset = float(last_bias[0])
    else:
        cost[n_col - 1] = 1.0
    matrix = sp.vstack(rows, format="csr") if rows else sp.csr_matrix((0, n_col))
    return {
        "cost": cost, "offset": offset, "col_lower": np.concatenate(col_lower),
        "col_upper": np.concatenate(col_upper), "matrix": matrix,
        "row_upper": np.concatenate(row_upper) if row_upper else np.zeros(0),
    }


def _new_highs(tol: float):
    try:
        import highspy
    except ImportError as error:  # pragma: no cover - highspy is a dependency
        raise ImportError("method='exact' needs highspy (pip install highspy)") from error
    highs = _quietly(highspy.Highs)
    highs.setOptionValue("output_flag", False)
    # the QP solver's default proximal regularisation (1e-7) moves y by ~1e-6: not exact
    highs.setOptionValue("qp_regularization_value", _QP_REGULARIZATION)
    highs.setOptionValue("primal_feasibility_tolerance", tol)
    highs.setOptionValue("dual_feasibility_tolerance", tol)
    highs.setOptionValue("threads", 1)
    return highs


def _solve(highs, lp: dict, y_dim: int, mu: float) -> tuple[np.ndarray, float, bool]:
    import highspy

    inf = highspy.kHighsInf
    model = highspy.HighsModel()
    h_lp = model.lp_
    n_row, n_col = lp["matrix"].shape
    h_lp.num_col_, h_lp.num_row_ = n_col, n_row
    h_lp.col_cost_ = lp["cost"]
    h_lp.offset_ = lp["offset"]
    h_lp.col_lower_ = np.where(np.isfinite(lp["col_lower"]), lp["col_lower"], -inf)
    h_lp.col_upper_ = np.where(np.isfinite(lp["col_upper"]), lp["col_upper"], inf)
    h_lp.row_lower_ = np.full(n_row, -inf)
    h_lp.row_upper_ = lp["row_upper"]
    matrix = lp["matrix"]
    h_lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    h_lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    h_lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    h_lp.a_matrix_.value_ = matrix.data
    h_lp.a_matrix_.num_col_, h_lp.a_matrix_.num_row_ = n_col, n_row
    if mu > 0.0:
        hessian = model.hessian_
        hessian.dim_ = n_col
        hessian.format_ = highspy.HessianFormat.kTriangular
        hessian.start_ = np.concatenate([np.arange(y_dim + 1), np.full(n_col - y_dim, y_dim)]
                                        ).astype(np.int32)
        hessian.index_ = np.arange(y_dim, dtype=np.int32)
        hessian.value_ = np.full(y_dim, mu)
    highs.clearModel()
    highs.passModel(model)
    highs.run()
    status = highs.getModelStatus()
    if mu > 0.0 and status != highspy.HighsModelStatus.kOptimal:
        # HiGHS's QP solver can stop slightly infeasible (1e-5) on a nearly degenerate active set
        # and then reports a solve error; retry with its default regularisation and a looser
        # feasibility tolerance. The gap is then measured on the model at the returned y.
        _, tight = highs.getOptionValue("primal_feasibility_tolerance")
        highs.setOptionValue("qp_regularization_value", _QP_RETRY_REGULARIZATION)
        highs.setOptionValue("primal_feasibility_tolerance", _QP_RETRY_FEASIBILITY)
        try:
            highs.clearModel()
            highs.passModel(model)
            highs.run()
        finally:
            highs.setOptionValue("qp_regularization_value", _QP_REGULARIZATION)
            highs.setOptionValue("primal_feasibility_tolerance", tight)
        status = highs.getModelStatus()
    if status in (highspy.HighsModelStatus.kUnbounded,
                  highspy.HighsModelStatus.kUnboundedOrInfeasible):
        raise ValueError("the minimum is unbounded below on this domain (the LP is unbounded): "
                         "bound the domain with icnn.Box or use strong_convexity > 0")
    solution = highs.getSolution()
    y = np.asarray(solution.col_value[:y_dim]) if solution.value_valid else np.zeros(y_dim)
    optimal = status == highspy.HighsModelStatus.kOptimal
    # the objective is a lower bound only at an optimum (exact up to HiGHS's tolerances); a
    # stopped solve's primal objective bounds nothing from below
    lower = highs.getInfo().objective_function_value if optimal else -np.inf
    return y, float(lower), optimal


def _quietly(make):
    """``make()`` with the process's stdout silenced.

    HiGHS prints its banner from the constructor, before ``output_flag`` can be set.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            return make()
    finally:
        os.dup2(saved, 1)
        os.close(saved)

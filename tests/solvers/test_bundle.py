"""Bundle (cutting-plane) method: optimum against an exact LP, certificates, box and fixed entries."""

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

import icnn
from icnn.solvers.bundle import solve_bundle
from icnn.solvers.domain import Box
from icnn.solvers.problem import build_problem

TOL = 1e-8


def lp_optimum(model, x, lo, hi, fixed=None):
    """``min f`` of a ReLU ICNN over a box by the exact LP of paper Section 4.1 (HiGHS)."""
    layers = model.affine_layers(None if x is None else x[None])
    n = layers[0].y_weight.shape[-1]
    sizes = [layer.y_weight.shape[1] for layer in layers]
    offsets = np.concatenate([[n], n + np.cumsum(sizes)])
    n_var = int(offsets[-1])
    rows, rhs = [], []
    for i, layer in enumerate(layers):
        y_w = layer.y_weight[0].detach().double().numpy()
        bias = layer.bias[0].detach().double().numpy()
        for slope, shift in layer.activation.pieces():
            row = np.zeros((sizes[i], n_var))
            row[:, offsets[i]:offsets[i + 1]] = -np.eye(sizes[i])
            row[:, :n] += slope * y_w
            if layer.z_weight is not None:
                z_w = layer.z_weight[0].detach().double().numpy()
                row[:, offsets[i - 1]:offsets[i]] += slope * z_w
            rows.append(row)
            rhs.append(-(slope * bias + shift))
    cost = np.zeros(n_var)
    cost[offsets[-2]] = 1.0
    bounds = [(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]
    if fixed is not None:
        mask, values = fixed
        bounds = [(float(v), float(v)) if m else b for m, v, b in zip(mask, values, bounds,
                                                                        strict=True)]
    bounds += [(None, None)] * (n_var - n)
    res = linprog(cost, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=bounds,
                  method="highs")
    assert res.status == 0
    return res.fun


@pytest.fixture
def picnn():
    torch.manual_seed(3)
    return icnn.PICNN(3, 6, hidden=(24, 24)).double()


def test_reaches_lp_optimum_of_relu_picnn_with_valid_certificate(picnn):
    x = torch.randn(5, 3, dtype=torch.float64)
    problem = build_problem(picnn, x, Box(0.0, 1.0), None, None)
    result = solve_bundle(problem, torch.full((5, 6), 0.5, dtype=torch.float64),
                          tol=TOL, max_iter=200)
    optimum = torch.tensor([lp_optimum(picnn, x[i], [0] * 6, [1] * 6) for i in range(5)],
                           dtype=torch.float64)
    assert result.converged.all()
    assert torch.allclose(result.value, optimum, atol=1e-6)
    assert (result.lower_bound <= optimum + 1e-9).all()
    assert (optimum <= result.value + 1e-9).all()
    assert (result.gap <= TOL * result.value.abs().clamp_min(1.0) + 1e-12).all()
    assert torch.allclose(picnn(x, result.y), result.value)


def test_reaches_lp_optimum_of_relu_ficnn_on_general_box():
    torch.manual_seed(4)
    model = icnn.FICNN(5, hidden=(16, 16)).double()
    lo = torch.tensor([-1.0, 0.0, -2.0, 0.5, -1.0], dtype=torch.float64)
    hi = torch.tensor([2.0, 1.0, 0.0, 3.0, 1.0], dtype=torch.float64)
    problem = build_problem(model, None, Box(lo, hi), None, None, batch=2)
    result = solve_bundle(problem, torch.zeros(2, 5, dtype=torch.float64), tol=TOL,
                          max_iter=200)
    optimum = lp_optimum(model, None, lo, hi)
    assert result.converged.all()
    assert torch.allclose(result.value, torch.full((2,), optimum, dtype=torch.float64),
                          atol=1e-6)
    assert ((result.y >= lo) & (result.y <= hi)).all()


def test_fixed_coordinates_are_kept_exactly(picnn):
    x = torch.randn(3, 3, dtype=torch.float64)
    mask = torch.tensor([True, False, False, True, False, False])
    values = torch.tensor([0.3, 0.0, 0.0, 0.9, 0.0, 0.0], dtype=torch.float64)
    problem = build_problem(picnn, x, Box(0.0, 1.0), None, (mask, values))
    result = solve_bundle(problem, torch.full((3, 6), 0.5, dtype=torch.float64),
                          tol=TOL, max_iter=200)
    assert (result.y[:, mask] == values[mask]).all()
    assert ((result.y >= 0) & (result.y <= 1)).all()
    optimum = torch.tensor([lp_optimum(picnn, x[i], [0] * 6, [1] * 6, (mask, values))
                            for i in range(3)], dtype=torch.float64)
    assert torch.allclose(result.value, optimum, atol=1e-6)


def test_converged_flag_is_false_when_iterations_run_out(picnn):
    x = torch.randn(4, 3, dtype=torch.float64)
    problem = build_problem(picnn, x, Box(0.0, 1.0), None, None)
    result = solve_bundle(problem, torch.zeros(4, 6, dtype=torch.float64), tol=1e-12, max_iter=2)
    assert result.iterations == 2
    assert (result.converged == (result.gap <= 1e-12 * result.value.abs().clamp_min(1))).all()
    assert not result.converged.all()
    optimum = torch.tensor([lp_optimum(picnn, x[i], [0] * 6, [1] * 6) for i in range(4)],
                           dtype=torch.float64)
    assert (result.lower_bound <= optimum + 1e-9).all()


def test_float32_runs_and_respects_the_box():
    model = icnn.FICNN(4, hidden=(8,))
    problem = build_problem(model, None, Box(0.0, 1.0), None, None, batch=3)
    result = solve_bundle(problem, torch.rand(3, 4), tol=1e-4, max_iter=50)
    assert result.y.dtype == torch.float32
    assert ((result.y >= 0) & (result.y <= 1)).all()
    assert (result.lower_bound <= result.value + 1e-5).all()


def test_unbounded_domain_is_refused():
    model = icnn.FICNN(3, hidden=(8,)).double()
    problem = build_problem(model, None, Box(0.0, float("inf")), None, None, batch=2)
    with pytest.raises(ValueError, match="needs a bounded domain"):
        solve_bundle(problem, torch.zeros(2, 3, dtype=torch.float64), tol=1e-6, max_iter=5)


def test_examples_stop_independently_and_match_a_solve_of_their_own(picnn):
    """Finished examples drop out of the batch; the others follow the same path as alone."""
    x = torch.randn(4, 3, dtype=torch.float64)
    problem = build_problem(picnn, x, Box(0.0, 1.0), None, None)
    start = torch.full((4, 6), 0.5, dtype=torch.float64)
    batch = solve_bundle(problem, start, tol=1e-6, max_iter=200)
    for i in range(4):
        alone = build_problem(picnn, x[i:i + 1], Box(0.0, 1.0), None, None)
        single = solve_bundle(alone, start[i:i + 1], tol=1e-6, max_iter=200)
        assert torch.allclose(single.value, batch.value[i:i + 1], atol=1e-12)
        assert torch.allclose(single.y, batch.y[i:i + 1], atol=1e-9)
    assert batch.converged.all()

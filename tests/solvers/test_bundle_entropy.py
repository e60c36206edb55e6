"""Bundle entropy method: minimiser of f - H, certificates, pruning, honest flags, bad domains."""

import pytest
import torch

import icnn
from icnn.solvers.bundle_entropy import negative_entropy, solve_bundle_entropy
from icnn.solvers.domain import Box
from icnn.solvers.problem import build_problem


def reference_f_minus_h(model, x, lo, hi, n, batch):
    """``argmin f - H`` by L-BFGS on logits to full float64 accuracy (smooth models only)."""
    logits = torch.zeros(batch, n, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([logits], max_iter=500, tolerance_grad=1e-15,
                            tolerance_change=1e-20, line_search_fn="strong_wolfe")

    def objective():
        opt.zero_grad()
        u = torch.sigmoid(logits)
        free = torch.ones_like(u, dtype=torch.bool)
        y = lo + (hi - lo) * u
        energy = model(y) if x is None else model(x, y)
        total = (energy + negative_entropy(u, free)).sum()
        total.backward()
        return total

    for _ in range(4):
        opt.step(objective)
    return (lo + (hi - lo) * torch.sigmoid(logits)).detach()


def test_converges_to_minimiser_of_f_minus_entropy_on_smooth_model():
    torch.manual_seed(1)
    model = icnn.PICNN(2, 5, hidden=(16, 16), activation="softplus").double()
    x = torch.randn(4, 2, dtype=torch.float64)
    problem = build_problem(model, x, Box(-1.0, 2.0), None, None)
    result = solve_bundle_entropy(problem, None, tol=1e-10, max_iter=100)
    reference = reference_f_minus_h(model, x, -1.0, 2.0, 5, 4)
    assert result.converged.all()
    assert torch.allclose(result.y, reference, atol=1e-5)
    u = (result.y + 1.0) / 3.0
    objective = model(x, result.y) + negative_entropy(u, torch.ones_like(u, dtype=torch.bool))
    assert torch.allclose(result.objective, objective, atol=1e-12)
    assert torch.allclose(result.value, model(x, result.y), atol=1e-12)


def test_relu_model_solved_in_few_iterations_with_tight_certificate():
    torch.manual_seed(2)
    model = icnn.PICNN(3, 8, hidden=(32, 32)).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    problem = build_problem(model, x, Box(0.0, 1.0), None, None)
    result = solve_bundle_entropy(problem, None, tol=1e-10, max_iter=30)
    assert result.converged.all()
    assert result.iterations <= 15
    assert (result.gap.abs() <= 1e-10 * result.objective.abs().clamp_min(1)).all()
    # no random point of the box does better on f - H
    u = torch.rand(200, 6, 8, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    u = torch.cat([u, (result.y + 1e-3 * torch.randn(200, 6, 8, dtype=torch.float64)).clamp(
        1e-9, 1 - 1e-9)])
    energy = model(x.repeat(400, 1), u.reshape(-1, 8)).reshape(400, 6)
    free = torch.ones_like(u, dtype=torch.bool)
    objective = energy + negative_entropy(u.reshape(-1, 8), free.reshape(-1, 8)).reshape(400, 6)
    assert (objective >= result.objective - 1e-9).all()


def test_pruned_planes_and_info_describe_the_last_subproblem():
    torch.manual_seed(2)
    model = icnn.PICNN(3, 8, hidden=(32, 32)).double()
    x = torch.randn(3, 3, dtype=torch.float64)
    problem = build_problem(model, x, Box(0.0, 1.0), None, None)
    result = solve_bundle_entropy(problem, None, tol=1e-10, max_iter=30)
    info = result.info
    lam, valid = info["lam"], info["valid"]
    assert torch.allclose(lam.sum(-1), torch.ones(3, dtype=torch.float64))
    assert (lam[~valid] == 0).all() and (lam[valid] > 1e-8).all()
    # y is the sigmoid link of the active planes and every plane is tight on f at its iterate
    assert torch.allclose(result.y, torch.sigmoid(-(lam[:, None, :] @ info["G"]).squeeze(1)))
    points = info["iterates"]
    values = model(x.repeat_interleave(points.shape[1], 0), points.reshape(-1, 8)).reshape(3, -1)
    planes = (info["G"] * points).sum(-1) + info["h"]
    assert torch.allclose(planes[valid], values[valid], atol=1e-10)


def test_fixed_coordinates_keep_their_values_and_get_no_entropy():
    torch.manual_seed(2)
    model = icnn.PICNN(3, 5, hidden=(16,)).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    mask = torch.tensor([True, False, True, False, False])
    values = torch.tensor([1.0, 0.0, 0.25, 0.0, 0.0], dtype=torch.float64)
    problem = build_problem(model, x, Box(0.0, 1.0), None, (mask, values))
    result = solve_bundle_entropy(problem, None, tol=1e-10, max_iter=30)
    assert (result.y[:, mask] == values[mask]).all()
    u = result.y[:, ~mask]
    expected = model(x, result.y) + negative_entropy(u, torch.ones_like(u, dtype=torch.bool))
    assert torch.allclose(result.objective, expected, atol=1e-12)


def test_converged_flag_is_honest_when_iterations_run_out():
    torch.manual_seed(2)
    model = icnn.PICNN(3, 8, hidden=(32, 32)).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    problem = build_problem(model, x, Box(0.0, 1.0), None, None)
    result = solve_bundle_entropy(problem, None, tol=1e-12, max_iter=1)
    passed = result.gap <= 1e-12 * result.objective.abs().clamp_min(1.0)
    assert (result.converged == passed).all()
    assert not result.converged.all()
    full = solve_bundle_entropy(problem, None, tol=1e-12, max_iter=30)
    assert (result.lower_bound <= full.objective + 1e-12).all()


def test_float32_runs():
    model = icnn.FICNN(4, hidden=(8,))
    problem = build_problem(model, None, Box(0.0, 1.0), None, None, batch=3)
    result = solve_bundle_entropy(problem, None, tol=1e-5, max_iter=20)
    assert result.y.dtype == torch.float32
    assert ((result.y > 0) & (result.y < 1)).all()


def test_unbounded_domain_is_refused():
    model = icnn.FICNN(3, hidden=(8,)).double()
    problem = build_problem(model, None, None, None, None, batch=2)
    with pytest.raises(ValueError, match="needs a bounded domain"):
        solve_bundle_entropy(problem, None, tol=1e-6, max_iter=5)

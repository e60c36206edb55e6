"""Implicit gradients of the argmin: finite differences, gradcheck and unrolled descent agree."""

import torch

import icnn
from icnn.solvers.bundle_entropy import solve_bundle_entropy
from icnn.solvers.domain import Box
from icnn.solvers.implicit import attach_implicit_gradient
from icnn.solvers.problem import build_problem
from icnn.solvers.result import ArgminResult


def newton_argmin(model, x, fixed=None, batch=None, iters=30):
    """Exact unconstrained argmin of a smooth strongly convex model by Newton's method."""
    problem = build_problem(model, x, None, None, fixed, batch=batch)
    y = problem.project(torch.zeros(problem.lo.shape, dtype=torch.float64))
    free = problem.free
    for _ in range(iters):
        with torch.enable_grad():
            y_var = y.clone().requires_grad_(True)
            energy = model(y_var) if x is None else model(x.detach(), y_var)
            (grad,) = torch.autograd.grad(energy.sum(), y_var, create_graph=True)
            rows = [torch.autograd.grad(grad[:, j].sum(), y_var, retain_graph=True)[0]
                    for j in range(y.shape[1])]
        hess = torch.stack(rows, 1).detach()
        pair = free[:, :, None] & free[:, None, :]
        hess = torch.where(pair, hess, torch.diag_embed((~free).double()))
        step = torch.linalg.solve(hess, torch.where(free, grad.detach(), 0.0))
        y = (y - step).detach()
    result = ArgminResult(y=y, value=problem.value(y).detach(), iterations=iters,
                          converged=torch.ones(y.shape[0], dtype=torch.bool), method="exact")
    return problem, result


def smooth_picnn():
    torch.manual_seed(5)
    return icnn.PICNN(2, 3, hidden=(8,), activation="softplus", strong_convexity=0.5).double()


def implicit_argmin(model, x, fixed=None):
    problem, result = newton_argmin(model, x, fixed)
    return attach_implicit_gradient(problem, result)


def test_ift_gradient_in_x_passes_gradcheck():
    model = smooth_picnn()
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x_: implicit_argmin(model, x_), (x,), atol=1e-6)


def test_ift_gradient_in_parameters_matches_finite_differences():
    torch.manual_seed(6)
    model = icnn.FICNN(3, hidden=(6,), activation="softplus", strong_convexity=1.0).double()
    weights = torch.randn(2, 3, dtype=torch.float64)
    problem, result = newton_argmin(model, None, batch=2)
    loss = (attach_implicit_gradient(problem, result) * weights).sum()
    loss.backward()
    param = model.passthrough.weight
    for index in [(0, 0), (2, 1), (5, 2)]:
        with torch.no_grad():
            param[index] += 1e-6
            plus = (newton_argmin(model, None, batch=2)[1].y * weights).sum()
            param[index] -= 2e-6
            minus = (newton_argmin(model, None, batch=2)[1].y * weights).sum()
            param[index] += 1e-6
        assert abs(param.grad[index] - (plus - minus) / 2e-6) < 1e-6


def test_ift_gradient_matches_unrolled_descent_at_convergence():
    model = smooth_picnn()
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 3, dtype=torch.float64)
    (grad_implicit,) = torch.autograd.grad((implicit_argmin(model, x) * weights).sum(), x)
    y = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    for _ in range(400):
        (grad,) = torch.autograd.grad(model(x, y).sum(), y, create_graph=True)
        y = y - 0.5 * grad
    (grad_unrolled,) = torch.autograd.grad((y * weights).sum(), x)
    assert torch.allclose(grad_implicit, grad_unrolled, atol=1e-8)


def test_fixed_coordinates_get_no_gradient_and_others_stay_exact():
    model = smooth_picnn()
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    fixed = (torch.tensor([False, True, False]), torch.tensor([0.0, 0.7, 0.0]).double())
    assert torch.autograd.gradcheck(lambda x_: implicit_argmin(model, x_, fixed), (x,),
                                    atol=1e-6)
    y = implicit_argmin(model, x, fixed)
    (grad,) = torch.autograd.grad(y[:, 1].sum(), x, allow_unused=True)
    assert grad is None or (grad == 0).all()


def relu_bundle_entropy_argmin(model, x):
    problem = build_problem(model, x.detach(), Box(-1.0, 1.0), None, None)
    problem.x = x
    result = solve_bundle_entropy(problem, None, tol=1e-14, max_iter=60)
    assert result.converged.all()
    return attach_implicit_gradient(problem, result)


def test_proposition3_gradient_matches_finite_differences_in_x_for_relu_picnn():
    torch.manual_seed(7)
    model = icnn.PICNN(2, 4, hidden=(16, 16)).double()
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 4, dtype=torch.float64)
    (grad,) = torch.autograd.grad((relu_bundle_entropy_argmin(model, x) * weights).sum(), x)
    eps = 1e-6
    assert grad.abs().max() > 1e-3  # not trivially zero
    for i, j in [(0, 0), (2, 0), (2, 1)]:  # example 2 has three active planes, two repeated
        shift = torch.zeros_like(x)
        shift[i, j] = eps
        with torch.no_grad():
            plus = (relu_bundle_entropy_argmin(model, x + shift) * weights).sum()
            minus = (relu_bundle_entropy_argmin(model, x - shift) * weights).sum()
        assert abs(grad[i, j] - (plus - minus) / (2 * eps)) < 1e-5


def test_proposition3_gradient_matches_finite_differences_in_parameters():
    torch.manual_seed(8)
    model = icnn.FICNN(4, hidden=(16, 16)).double()
    weights = torch.randn(2, 4, dtype=torch.float64)

    def solve():
        problem = build_problem(model, None, Box(0.0, 1.0), None, None, batch=2)
        result = solve_bundle_entropy(problem, None, tol=1e-14, max_iter=60)
        assert result.converged.all()
        return problem, result

    loss = (attach_implicit_gradient(*solve()) * weights).sum()
    loss.backward()
    for param, index in [(model.passthrough.weight, (3, 1)), (model.passthrough.bias, (5,)),
                         (model.passthrough.weight, (10, 2))]:
        with torch.no_grad():
            param[index] += 1e-6
            plus = (solve()[1].y * weights).sum()
            param[index] -= 2e-6
            minus = (solve()[1].y * weights).sum()
            param[index] += 1e-6
        assert abs(param.grad[index] - (plus - minus) / 2e-6) < 1e-5


def entropy_argmin(model, iters=40):
    """Reference ``argmin_{y in [0,1]^n} f(y) - H(y)`` by damped Newton in ``y`` (full Hessian)."""
    n = model.convex_input_shape[0]
    y = torch.full((1, n), 0.5, dtype=torch.float64)

    def objective(v):
        return model(v).sum() + (torch.xlogy(v, v) + torch.xlogy(1 - v, 1 - v)).sum()

    for _ in range(iters):
        hess = torch.autograd.functional.hessian(objective, y).reshape(n, n)
        with torch.enable_grad():
            v = y.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(v), v)
        step = torch.linalg.solve(hess, grad.reshape(n)).reshape(1, n)
        t = 1.0
        while bool(((y - t * step <= 0) | (y - t * step >= 1)).any()):
            t *= 0.5
        y = (y - t * step).detach()
    return y


def test_bundle_entropy_gradient_on_a_smooth_model_includes_the_curvature_of_f():
    torch.manual_seed(9)
    model = icnn.FICNN(3, hidden=(6,), activation="softplus", dtype=torch.float64)
    weights = torch.randn(1, 3, dtype=torch.float64)
    y = icnn.argmin(model, domain=Box(0.0, 1.0), method="bundle_entropy", tol=1e-12,
                    max_iter=200, y0=torch.full((1, 3), 0.5, dtype=torch.float64),
                    differentiable="implicit").y
    torch.testing.assert_close(y, entropy_argmin(model), atol=1e-6, rtol=0)
    model.zero_grad()
    (y * weights).sum().backward()
    bias = model.passthrough.bias
    for index in range(3):
        with torch.no_grad():
            bias[index] += 1e-6
            plus = (entropy_argmin(model) * weights).sum()
            bias[index] -= 2e-6
            minus = (entropy_argmin(model) * weights).sum()
            bias[index] += 1e-6
        numeric = (plus - minus) / 2e-6
        assert abs(bias.grad[index] - numeric) < 1e-4 * max(1.0, abs(float(numeric)))


def test_interior_mask_holds_a_coordinate_near_its_bound_when_the_gradient_pushes_out():
    model = smooth_picnn()
    problem = build_problem(model, torch.zeros(1, 2, dtype=torch.float64), Box(0.0, 1.0),
                            None, None)
    from icnn.solvers.implicit import interior_mask

    y = torch.tensor([[1e-10, 0.5, 1.0 - 1e-10]], dtype=torch.float64)
    grad = torch.tensor([[2.0, 1e-3, -1.0]], dtype=torch.float64)
    assert interior_mask(problem, y).tolist() == [[True, True, True]]  # ulps only: too loose
    assert interior_mask(problem, y, grad).tolist() == [[False, True, False]]

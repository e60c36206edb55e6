"""Implicit gradients through the argmin of piecewise-linear (ReLU) energies, every method:
compared with central finite differences of the exact LP/QP solution (HiGHS)."""

import pytest
import torch
from torch import nn

import icnn
from icnn.solvers import Box, argmin
from icnn.solvers.implicit_piecewise import active_planes
from icnn.solvers.problem import build_problem

D = torch.float64
TOL = {"exact": 1e-9, "bundle": 1e-9, "lbfgs": 1e-9, "pgd": 1e-9, "auto": 1e-9}


def solve(model, x, method, domain, fixed=None, batch=None, differentiable="implicit"):
    kwargs = {"domain": domain, "fixed": fixed, "differentiable": differentiable}
    if method != "exact":
        kwargs["max_iter"] = 400
    if x is None and fixed is None:
        kwargs["y0"] = torch.full((batch, model.convex_input_shape[0]), 0.25, dtype=D)
    return argmin(model, x, method=method, tol=TOL[method], **kwargs).y


def exact_loss(model, x, weights, domain, fixed=None):
    with torch.no_grad():
        return float((solve(model, x, "exact", domain, fixed, weights.shape[0], None)
                      * weights).sum())


def fd_x(model, x, weights, domain, entries, eps=1e-6):
    out = []
    for i, j in entries:
        shift = torch.zeros_like(x)
        shift[i, j] = eps
        out.append((exact_loss(model, x + shift, weights, domain)
                    - exact_loss(model, x - shift, weights, domain)) / (2 * eps))
    return torch.tensor(out, dtype=D)


def fd_params(model, weights, domain, entries, x=None, fixed=None, eps=1e-6):
    out = []
    for param, index in entries:
        with torch.no_grad():
            param[index] += eps
            up = exact_loss(model, x, weights, domain, fixed)
            param[index] -= 2 * eps
            down = exact_loss(model, x, weights, domain, fixed)
            param[index] += eps
        out.append((up - down) / (2 * eps))
    return torch.tensor(out, dtype=D)


def relu_picnn(mu=0.0):
    torch.manual_seed(5)  # argmins with one or two free coordinates strictly inside the box
    return icnn.PICNN(2, 3, hidden=(6, 6), strong_convexity=mu, dtype=D)


@pytest.mark.parametrize("method", ["exact", "bundle", "lbfgs", "pgd", "auto"])
def test_relu_picnn_implicit_gradient_matches_finite_differences_of_exact(method):
    model = relu_picnn()
    domain = Box(-1.0, 2.0)
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=D,
                    requires_grad=True)
    weights = torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    entries = [(model.y_layers[0].weight, (2, 1)), (model.y_layers[1].weight, (0, 2))]
    params = [p for p, _ in entries]
    loss = (solve(model, x, method, domain) * weights).sum()
    grad_x, *grad_p = torch.autograd.grad(loss, [x, *params])
    x_entries = [(0, 0), (1, 1), (2, 0), (2, 1)]
    numeric_x = fd_x(model, x.detach(), weights, domain, x_entries)
    analytic_x = torch.stack([grad_x[i, j] for i, j in x_entries])
    assert numeric_x.abs().max() > 0.1  # the test can fail: the gradient is not trivially zero
    torch.testing.assert_close(analytic_x, numeric_x, atol=1e-6, rtol=1e-5)
    numeric_p = fd_params(model, weights, domain, entries, x=x.detach())
    analytic_p = torch.stack([g[index] for g, (_, index) in zip(grad_p, entries, strict=True)])
    torch.testing.assert_close(analytic_p, numeric_p, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("method", ["exact", "lbfgs"])
def test_strongly_convex_relu_ficnn_with_a_fixed_coordinate_matches_finite_differences(method):
    torch.manual_seed(4)  # y* = (-0.80, 1 (upper bound), 0.3 (fixed), -0.25)
    model = icnn.FICNN(4, hidden=(8,), strong_convexity=0.5, dtype=D)
    domain = Box(-1.0, 1.0)
    fixed = (torch.tensor([False, False, True, False]),
             torch.tensor([0.0, 0.0, 0.3, 0.0], dtype=D).expand(2, 4))
    weights = torch.randn(2, 4, generator=torch.Generator().manual_seed(2), dtype=D)
    model.zero_grad()
    (solve(model, None, method, domain, fixed=fixed) * weights).sum().backward()
    weight, bias = model.passthrough.weight, model.passthrough.bias
    entries = [(bias, (i,)) for i in range(bias.numel())] + [
        (weight, (i, j)) for i in range(weight.shape[0]) for j in (0, 3)]
    numeric = fd_params(model, weights, domain, entries, fixed=fixed)
    analytic = torch.stack([param.grad[index] for param, index in entries])
    assert numeric.abs().max() > 1e-2
    torch.testing.assert_close(analytic, numeric, atol=1e-6, rtol=1e-5)


def test_argmin_at_a_box_corner_has_zero_gradient_like_finite_differences():
    torch.manual_seed(0)
    model = icnn.FICNN(2, hidden=(4,), dtype=D)
    domain = Box(0.0, 1.0)
    weights = torch.ones(1, 2, dtype=D)
    y = solve(model, None, "bundle", domain, batch=1)
    model.zero_grad()
    (y * weights).sum().backward()
    numeric = fd_params(model, weights, domain, [(model.passthrough.bias, (0,))])
    torch.testing.assert_close(model.passthrough.bias.grad[:1], numeric, atol=1e-8, rtol=0)


class AbsDistance(nn.Module):
    """``|y_0 - c|``: its argmin in ``y_1`` is not unique (a flat direction)."""

    convex_input_shape = (2,)
    context_shape = None

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(0.3, dtype=D))

    def energy_traits(self) -> icnn.EnergyTraits:
        return icnn.EnergyTraits(convex=True, curvature="piecewise_linear")

    def forward(self, y):
        return (y[:, 0] - self.c).abs() + 0.0 * y[:, 1]


def test_flat_direction_gets_the_minimum_norm_convention():
    model = AbsDistance()
    y = argmin(model, domain=Box(-1.0, 1.0), method="bundle", tol=1e-12,
               y0=torch.tensor([[0.0, 0.5]], dtype=D), differentiable="implicit").y
    (y.sum()).backward()
    # d y_0 / d c = 1; y_1 has no derivative (any value is optimal): it contributes nothing
    torch.testing.assert_close(model.c.grad, torch.tensor(1.0, dtype=D))


def test_inaccurate_solution_is_refused_with_what_works():
    model = relu_picnn()
    x = torch.randn(2, 2, generator=torch.Generator().manual_seed(0), dtype=D)
    problem = build_problem(model, x, Box(-1.0, 2.0), None, None)
    far = torch.full((2, 3), 0.5, dtype=D)  # not a minimiser
    with pytest.raises(ValueError, match="could not identify the pieces.*method='exact'"):
        active_planes(problem, far)


def test_active_planes_at_an_exact_vertex_are_stationary():
    model = relu_picnn()
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(5), dtype=D)
    domain = Box(-1.0, 2.0)
    y = argmin(model, x, domain=domain, method="exact").y
    found = active_planes(build_problem(model, x, domain, None, None), y)
    assert (found["residual"] < 1e-8).all()
    lam = found["lam"]
    torch.testing.assert_close(lam.sum(-1), torch.ones(4, dtype=D))
    assert ((lam > 0) == found["active"]).all()

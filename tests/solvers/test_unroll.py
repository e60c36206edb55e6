"""differentiable="unroll": a fixed number of accelerated projected gradient steps kept in the
graph; its derivatives match finite differences (float64 gradcheck)."""

import pytest
import torch

import icnn
from icnn.solvers import Box, argmin


def smooth_picnn() -> icnn.PICNN:
    torch.manual_seed(4)
    return icnn.PICNN(3, 2, hidden=(6,), activation="softplus", strong_convexity=1.0).double()


def test_unrolled_argmin_passes_gradcheck_in_x():
    model = smooth_picnn()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)

    def solve(x):
        return argmin(model, x, domain=Box(-1.0, 1.0), differentiable="unroll", max_iter=8).y

    assert torch.autograd.gradcheck(solve, (x,), eps=1e-6, atol=1e-5)


def test_unrolled_argmin_passes_gradcheck_in_the_weights():
    model = smooth_picnn()
    x = torch.randn(2, 3, dtype=torch.float64)
    weight = model.y_layers[0].weight

    def solve(w):
        with torch.no_grad():
            weight.copy_(w.detach())
        with torch.no_grad():
            return argmin(model, x, differentiable="unroll", max_iter=6).y

    w0 = weight.detach().clone().requires_grad_(True)
    # analytic gradient through the unroll vs central differences
    y = argmin(model, x, differentiable="unroll", max_iter=6).y
    (analytic,) = torch.autograd.grad(y.sum(), weight)
    numeric = torch.zeros_like(w0)
    eps = 1e-6
    for idx in range(w0.numel()):
        delta = torch.zeros_like(w0).view(-1)
        delta[idx] = eps
        up = solve(w0 + delta.view_as(w0)).sum()
        down = solve(w0 - delta.view_as(w0)).sum()
        numeric.view(-1)[idx] = (up - down) / (2 * eps)
    with torch.no_grad():
        weight.copy_(w0.detach())
    torch.testing.assert_close(analytic, numeric, atol=1e-6, rtol=1e-5)


def test_unrolled_result_is_close_to_the_solution_and_reports_honestly():
    model = smooth_picnn()
    x = torch.randn(3, 3, dtype=torch.float64)
    solved = argmin(model, x, domain=Box(-1.0, 1.0), method="lbfgs", tol=1e-10)
    unrolled = argmin(model, x, domain=Box(-1.0, 1.0), differentiable="unroll", max_iter=60)
    assert unrolled.y.requires_grad
    torch.testing.assert_close(unrolled.y, solved.y, atol=1e-4, rtol=0)
    short = argmin(model, x, domain=Box(-1.0, 1.0), differentiable="unroll", max_iter=1,
                   tol=1e-12)
    assert not short.converged.any()


def test_default_result_is_detached():
    model = smooth_picnn()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert not argmin(model, x, domain=Box(-1.0, 1.0)).y.requires_grad


def test_unroll_refuses_methods_it_cannot_unroll():
    model = smooth_picnn()
    with pytest.raises(ValueError, match="unroll"):
        argmin(model, torch.zeros(1, 3, dtype=torch.float64), method="exact",
               differentiable="unroll")

"""Learning through the argmin: unrolled and implicit gradients agree with finite differences
and with each other at convergence (small float64 problems)."""

import pytest
import torch

import icnn
from icnn.learn import predict, unrolled_gd
from icnn.solvers.domain import Box

D = torch.float64


def small_problem(seed: int = 0):
    """A smooth (softplus), strongly convex PICNN: its argmin is differentiable in the weights."""
    torch.manual_seed(seed)
    model = icnn.PICNN(2, 3, hidden=(5,), activation="softplus", strong_convexity=1.0, dtype=D)
    x = torch.randn(4, 2, dtype=D)
    target = torch.rand(4, 3, dtype=D)
    return model, x, target


def finite_difference(loss_of_params, params, eps=1e-6, per_tensor=3):
    """Central differences of a scalar function of the parameters, first entries of each."""
    estimates = []
    for param in params:
        flat = param.data.view(-1)
        for k in range(min(per_tensor, flat.numel())):
            with torch.no_grad():
                flat[k] += eps
                up = loss_of_params()
                flat[k] -= 2 * eps
                down = loss_of_params()
                flat[k] += eps
            estimates.append((up - down) / (2 * eps))
    return torch.tensor(estimates, dtype=D)


def autograd_entries(params, per_tensor=3):
    return torch.cat([p.grad.view(-1)[:per_tensor] for p in params])


def test_unrolled_gd_gradient_matches_finite_differences():
    model, x, target = small_problem()
    y0 = torch.full((4, 3), 0.5, dtype=D)

    def loss():
        return (unrolled_gd(model, x, y0, steps=15, lr=0.1) - target).square().mean()

    params = list(model.parameters())
    model.zero_grad()
    loss().backward()
    numeric = finite_difference(lambda: loss().item(), params)
    torch.testing.assert_close(autograd_entries(params), numeric, rtol=1e-5, atol=1e-8)


def test_unrolled_gd_decreases_the_energy_and_respects_the_box():
    model, x, _ = small_problem()
    y0 = torch.full((4, 3), 0.5, dtype=D)
    y = unrolled_gd(model, x, y0, steps=30, lr=0.05, domain=Box(0.0, 1.0))
    assert bool((y >= 0).all() and (y <= 1).all())
    assert bool((model(x, y) < model(x, y0)).all())


def reference_argmin(model, x, domain=None, steps=3000, step_size=0.5):
    """Projected gradient descent to machine precision (independent of icnn.argmin)."""
    y = torch.full((x.shape[0], 3), 0.5, dtype=D)
    lo, hi = (-torch.inf, torch.inf) if domain is None else (domain.lo, domain.hi)
    for _ in range(steps):
        y = y.detach().requires_grad_(True)
        with torch.enable_grad():  # finite_difference calls this under no_grad
            (grad,) = torch.autograd.grad(model(x, y).sum(), y)
        y_next = (y - step_size * grad).clamp(lo, hi).detach()
        moved = (y_next - y).abs().max().item()
        y = y_next
        if moved < 1e-15:
            break
    assert moved < 1e-13, moved
    return y


def _loss_through(model, x, target, differentiable, domain=None):
    # unrolling keeps every step in the graph (no early stop), so it gets a fixed step budget
    if differentiable == "unroll":
        y = predict(model, x, differentiable="unroll", method="pgd", domain=domain, tol=1e-12,
                    max_iter=200)
    else:
        y = predict(model, x, differentiable="implicit", method="lbfgs", domain=domain,
                    tol=1e-12, max_iter=500)
    return (y - target).square().mean()


@pytest.mark.parametrize("differentiable", ["unroll", "implicit"])
@pytest.mark.parametrize("bounded", [False, True])
def test_argmin_gradient_matches_finite_differences(differentiable, bounded):
    model, x, target = small_problem(seed=1)
    domain = Box(0.0, 1.0) if bounded else None
    params = list(model.parameters())
    model.zero_grad()
    _loss_through(model, x, target, differentiable, domain).backward()

    def solved_loss():
        return (reference_argmin(model, x, domain) - target).square().mean().item()

    numeric = finite_difference(solved_loss, params, eps=1e-5)
    torch.testing.assert_close(autograd_entries(params), numeric, rtol=1e-4, atol=1e-7)


def test_unrolled_and_implicit_gradients_agree_at_convergence():
    model, x, target = small_problem(seed=2)
    grads = {}
    for mode in ("unroll", "implicit"):
        model.zero_grad()
        _loss_through(model, x, target, mode).backward()
        grads[mode] = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(grads["unroll"], grads["implicit"], rtol=1e-5, atol=1e-8)


def test_predict_rejects_unknown_mode():
    model, x, _ = small_problem()
    with pytest.raises(ValueError, match="differentiable must be one of"):
        predict(model, x, differentiable="magic")

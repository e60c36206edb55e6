"""float32 certificates and the saturated bundle-entropy backward (issue 14).

A float32 ICNN whose minimum is near 0 while its intermediate sums are ~5e4 (steep weights, the
box [-1e3, 1e3]) computes ``f`` with errors of ~1e-2: before planes were lowered by
``rounding_allowance``, bundle, lbfgs and bundle_entropy reported lower bounds up to 0.015 above
the float64 minimum, negative gaps and ``converged`` with a true gap of 2e-3 > tol = 1e-4.
"""

import pytest
import torch
from torch import nn

import icnn
from icnn.solvers.certificate import rounding_allowance
from icnn.solvers.domain import Box


class Shifted(nn.Module):
    """``inner(x[:, :-1], y) + x[:, -1]``: a per-example offset, declared as the inner model."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.convex_input_shape = inner.convex_input_shape
        self.context_shape = (inner.context_shape[0] + 1,)

    def energy_traits(self):
        return self.inner.energy_traits()

    def forward(self, x, y):
        return self.inner(x[:, :-1], y) + x[:, -1]


def steep_pair(seed=0, scale=5.0):
    torch.manual_seed(seed)
    inner = icnn.PICNN(3, 6, hidden=(32, 32))
    with torch.no_grad():
        for p in inner.parameters():
            p.mul_(scale)
    inner64 = icnn.PICNN(3, 6, hidden=(32, 32)).double()
    inner64.load_state_dict({k: v.double() for k, v in inner.state_dict().items()})
    return inner, inner64, torch.randn(8, 3)


@pytest.mark.parametrize("method", ["bundle", "lbfgs", "bundle_entropy"])
def test_float32_lower_bound_stays_below_float64_minimum_at_large_scale(method):
    inner, inner64, x = steep_pair()
    box = Box(-1e3, 1e3)
    zeros = torch.zeros(8, 1, dtype=torch.float64)
    if method == "bundle_entropy":  # min f - H: a tight float64 solve's objective bounds it above
        reference = icnn.argmin(Shifted(inner64), torch.cat([x.double(), zeros], 1), domain=box,
                                method="bundle_entropy", tol=1e-13, max_iter=300).objective
    else:
        reference = icnn.argmin(inner64, x.double(), domain=box, method="exact").value
    offset = (-reference).float()  # minimum near 0: the tolerance is absolute, 1e-4
    result = icnn.argmin(Shifted(inner), torch.cat([x, offset[:, None]], 1), domain=box,
                         method=method, tol=1e-4)
    minimum = reference + offset.double()
    assert (result.lower_bound.double() <= minimum).all()
    assert (result.gap >= 0).all()
    if method != "bundle_entropy":
        true_gap = Shifted(inner64)(torch.cat([x, offset[:, None]], 1).double(),
                                    result.y.double()) - minimum
        assert (true_gap[result.converged] <= 1e-4).all()


def test_rounding_allowance_is_zero_for_float64_and_scales_with_eps_for_float32():
    value, grad, point = torch.tensor([2.0]), torch.tensor([[3.0, -4.0]]), torch.tensor([[1.0, 2.0]])
    assert rounding_allowance(value.double(), grad.double(), point.double()).item() == 0.0
    expected = 8.0 * torch.finfo(torch.float32).eps * (2.0 + 3.0 + 8.0)
    assert rounding_allowance(value, grad, point).item() == pytest.approx(expected)


def test_bundle_entropy_implicit_gradient_with_saturated_labels_matches_float64_differences():
    torch.manual_seed(0)
    model = icnn.PICNN(3, 6, hidden=(32, 32))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5.0)
    model64 = icnn.PICNN(3, 6, hidden=(32, 32)).double()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    x = torch.randn(4, 3)
    weights = torch.randn(4, 6)
    x_leaf = x.clone().requires_grad_(True)
    result = icnn.argmin(model, x_leaf, domain=Box(0.0, 1.0), method="bundle_entropy",
                         differentiable="implicit", tol=1e-6, max_iter=100)
    u = result.y.detach()
    assert int(((u == 0) | (u == 1)).sum()) >= 3  # D = diag(u (1 - u)) has zeros
    (result.y * weights).sum().backward()
    assert torch.isfinite(x_leaf.grad).all()

    def loss(x64):
        y = icnn.argmin(model64, x64, domain=Box(0.0, 1.0), method="bundle_entropy", tol=1e-13,
                        max_iter=300).y
        return (y * weights.double()).sum(-1)

    step, differences = 1e-5, torch.zeros(4, 3, dtype=torch.float64)
    for j in range(3):
        e = torch.zeros(4, 3, dtype=torch.float64)
        e[:, j] = step
        differences[:, j] = (loss(x.double() + e) - loss(x.double() - e)) / (2 * step)
    torch.testing.assert_close(x_leaf.grad.double(), differences, atol=5e-4, rtol=1e-3)

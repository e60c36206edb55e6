"""icnn.gradient_map: grad_y f and Hessian-vector products, batched and differentiable."""

import pytest
import torch
from torch import nn

import icnn
from icnn.potentials import gradient_map


class Quadratic(nn.Module):
    """f(y) = y^T A y / 2 + b^T y, an independent closed-form potential."""

    convex_input_shape = (3,)
    context_shape = None

    def __init__(self, matrix, offset):
        super().__init__()
        self.matrix = nn.Parameter(matrix)
        self.offset = nn.Parameter(offset)

    def energy_traits(self):
        return icnn.EnergyTraits(convex=True, curvature="smooth")

    def forward(self, y):
        return 0.5 * ((y @ self.matrix) * y).sum(-1) + y @ self.offset


def _spd(n, dtype=torch.float64):
    root = torch.randn(n, n, dtype=dtype)
    return root @ root.T + 0.5 * torch.eye(n, dtype=dtype)


def test_gradient_map_of_a_quadratic_is_its_matrix():
    matrix, offset = _spd(3), torch.randn(3, dtype=torch.float64)
    T = gradient_map(Quadratic(matrix, offset))
    y = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(T(y), y @ matrix + offset, rtol=1e-12, atol=1e-12)
    v = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(T.hvp(y, v), v @ matrix, rtol=1e-12, atol=1e-12)


def test_gradient_map_matches_finite_differences_for_a_picnn():
    model = icnn.PICNN(2, 3, hidden=(8, 8), activation="softplus").double()
    T = gradient_map(model)
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    step = 1e-6
    for j in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[j] = step
        fd = (model(x, y + e) - model(x, y - e)) / (2 * step)
        torch.testing.assert_close(T(y, x)[:, j], fd, rtol=1e-6, atol=1e-8)


def test_hvp_matches_differences_of_the_gradient_map():
    model = icnn.FICNN(3, hidden=(8,), activation="softplus", strong_convexity=0.3).double()
    T = gradient_map(model)
    y, v = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    step = 1e-6
    fd = (T(y + step * v) - T(y - step * v)) / (2 * step)
    torch.testing.assert_close(T.hvp(y, v), fd, rtol=1e-5, atol=1e-8)


def test_gradient_map_trains_the_potential_and_differentiates_in_y():
    model = icnn.FICNN(2, hidden=(6,), activation="softplus").double()
    T = gradient_map(model)
    y = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    T(y).square().sum().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for p in model.parameters() if p.requires_grad)
    assert torch.autograd.gradcheck(lambda t: T(t), (y,))
    with torch.no_grad():
        assert not T(y).requires_grad


def test_gradient_map_refuses_bad_inputs():
    T = gradient_map(icnn.PICNN(2, 3, hidden=(4,)))
    with pytest.raises(ValueError, match=r"expected y of shape \(batch, 3\), got \(4, 2\)"):
        T(torch.randn(4, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="expected a context x"):
        T(torch.randn(4, 3))
    with pytest.raises(ValueError, match="batch size 4"):
        T(torch.randn(4, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match="dtype"):
        T(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2))
    with pytest.raises(ValueError, match="finite"):
        T(torch.full((4, 3), float("nan")), torch.randn(4, 2))
    with pytest.raises(ValueError, match="expected x=None"):
        gradient_map(icnn.FICNN(3, hidden=(4,)))(torch.randn(2, 3), torch.randn(2, 2))
    with pytest.raises(ValueError, match=r"expected v of shape"):
        T.hvp(torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 2))
    with pytest.raises(TypeError, match="convex energy"):
        gradient_map(nn.Linear(3, 1))

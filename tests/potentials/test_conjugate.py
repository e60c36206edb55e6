"""icnn.conjugate: closed forms, Fenchel-Young, inverse maps, envelope gradients, honesty."""

import math

import pytest
import torch
from torch import nn

import icnn
from icnn.potentials import conjugate, gradient_map

from .test_gradient_map import Quadratic, _spd


def _smooth_ficnn(dim=3, mu=0.5):
    return icnn.FICNN(dim, hidden=(12, 12), activation="softplus", strong_convexity=mu).double()


def test_conjugate_of_a_quadratic_is_its_closed_form():
    matrix, offset = _spd(3), torch.randn(3, dtype=torch.float64)
    z = torch.randn(6, 3, dtype=torch.float64)
    result = conjugate(Quadratic(matrix, offset), z, tol=1e-10)
    y_star = torch.linalg.solve(matrix, (z - offset).T).T
    expected = 0.5 * ((z - offset) * y_star).sum(-1)
    assert bool(result.converged.all())
    torch.testing.assert_close(result.y, y_star, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(result.value.detach(), expected, rtol=1e-10, atol=1e-10)
    assert bool((result.residual <= 1e-10).all())


def test_fenchel_young_holds_with_equality_at_the_maximiser():
    model = _smooth_ficnn()
    z = torch.randn(10, 3, dtype=torch.float64)
    result = conjugate(model, z, tol=1e-7)
    assert bool(result.converged.all())
    f_star = result.value.detach()
    y_any = torch.randn(10, 3, dtype=torch.float64) * 2
    assert bool((model(y_any).detach() + f_star >= (y_any * z).sum(-1) - 1e-10).all())
    equality = model(result.y).detach() + f_star - (result.y * z).sum(-1)
    assert float(equality.abs().max()) < 1e-12
    # the certificate brackets f*(z) tightly (strongly convex: a quadratic lower bound)
    assert bool((result.gap <= 1e-12).all()) and bool((result.upper_bound >= f_star).all())


def test_conjugate_inverts_the_gradient_map_for_a_picnn():
    model = icnn.PICNN(2, 3, hidden=(10, 10), activation="softplus", strong_convexity=0.4).double()
    x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    z = gradient_map(model)(y, x).detach()
    result = conjugate(model, z, x, tol=1e-7)
    assert bool(result.converged.all())
    torch.testing.assert_close(result.y, y, rtol=1e-6, atol=1e-6)


def test_float32_conjugate_reaches_its_tolerance_and_says_which_did():
    model = icnn.FICNN(4, hidden=(16, 16), activation="softplus", strong_convexity=1.0)
    z = torch.randn(64, 4)
    result = conjugate(model, z, tol=1e-4)
    assert result.y.dtype == torch.float32 and bool(result.converged.all())
    grad = gradient_map(model)(result.y).detach()
    true_residual = (grad - z).norm(dim=1) / torch.maximum(z.norm(dim=1), grad.norm(dim=1))
    torch.testing.assert_close(true_residual, result.residual, rtol=1e-3, atol=1e-6)
    assert bool((result.residual <= 1e-4).all())


def test_warm_start_at_the_answer_costs_one_round_and_stays_there():
    model = _smooth_ficnn()
    z = torch.randn(5, 3, dtype=torch.float64)
    first = conjugate(model, z, tol=1e-7)
    again = conjugate(model, z, y0=first.y, tol=1e-7)
    # a warm start is never accepted without a solver call, which finds nothing to do
    assert again.iterations <= 2 and bool(again.converged.all())
    assert bool((again.evaluations <= 4).all())
    torch.testing.assert_close(again.y, first.y, rtol=1e-6, atol=1e-6)


def test_envelope_gradients_are_gradchecked():
    model = icnn.PICNN(2, 3, hidden=(6,), activation="softplus", strong_convexity=0.7).double()
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    z = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    weight = model.y_layers[0].weight

    # w.r.t. z (gives y*) and x
    assert torch.autograd.gradcheck(lambda z, x: conjugate(model, z, x, tol=1e-10, unconverged="keep").value,
                                    (z, x), atol=1e-6)
    # w.r.t. a parameter: -df/dtheta at y*, against central differences of the solved value
    result = conjugate(model, z.detach(), x.detach(), tol=1e-10, unconverged="keep")
    assert bool(result.converged.all())
    (grad,) = torch.autograd.grad(result.value.sum(), weight)
    step = 1e-6
    with torch.no_grad():
        e = torch.zeros_like(weight)
        e[1, 2] = step
        weight += e
        plus = conjugate(model, z.detach(), x.detach(), tol=1e-10, unconverged="keep").value.sum()
        weight -= 2 * e
        minus = conjugate(model, z.detach(), x.detach(), tol=1e-10, unconverged="keep").value.sum()
        weight += e
    assert math.isclose(float(grad[1, 2]), float((plus - minus) / (2 * step)), rel_tol=1e-5,
                        abs_tol=1e-8)
    torch.testing.assert_close(torch.autograd.grad(
        conjugate(model, z, x.detach(), tol=1e-10, unconverged="keep").value.sum(), z)[0], result.y)


def test_unbounded_conjugate_is_flagged_not_converged():
    # a ReLU network without strong convexity grows at most linearly: for |z| beyond its
    # largest slope the supremum is +inf, and no y can make the residual small
    model = icnn.FICNN(2, hidden=(8,)).double()
    slope = gradient_map(model)(torch.randn(256, 2, dtype=torch.float64) * 10).norm(dim=1).max()
    z = torch.tensor([[10.0 * float(slope.detach()), 0.0]], dtype=torch.float64)
    result = conjugate(model, z, tol=1e-6, max_iter=100)
    assert not bool(result.converged.any())
    assert bool((result.residual > 0.5).all())
    assert bool(torch.isinf(result.upper_bound).all()) and bool(torch.isinf(result.gap).all())


def test_box_domain_conjugate_matches_a_closed_form():
    # f = ||y||^2 / 2 on [-1, 1]^n: y* = clip(z), f*(z) = <clip(z), z> - ||clip(z)||^2 / 2
    model = Quadratic(torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    z = 3 * torch.randn(6, 3, dtype=torch.float64)
    result = conjugate(model, z, tol=1e-10, domain=icnn.Box(-1.0, 1.0))
    clipped = z.clamp(-1, 1)
    assert bool(result.converged.all())
    torch.testing.assert_close(result.y, clipped, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(result.value.detach(),
                               (clipped * z).sum(-1) - 0.5 * clipped.square().sum(-1))


def test_kinked_potential_is_honest_about_its_certificate():
    # ReLU + (mu/2)||y||^2: maximisers often sit at kinks, where the residual cannot vanish;
    # an example is converged only on a certified gap, and every answer is checked against
    # an independent dense grid search (value <= f* <= upper_bound)
    model = icnn.FICNN(2, hidden=(8, 8), strong_convexity=1.0).double()
    z = torch.randn(16, 2, dtype=torch.float64)
    tol = 1e-4
    result = conjugate(model, z, tol=tol)
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-4, 4, 801, dtype=torch.float64)] * 2,
                                      indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        best = ((z @ grid.T) - model(grid)).amax(dim=1)
    value = result.value.detach()
    assert bool((result.upper_bound >= best - 1e-12).all())
    inner = (result.y * z).sum(-1)
    scale = torch.maximum(inner.abs(), (inner - value).abs())
    ok = (result.residual <= tol) | (result.gap <= tol * scale)
    assert torch.equal(result.converged, ok)
    assert int(result.converged.sum()) >= 8
    assert bool((value[result.converged] >= best[result.converged] - 1e-9).all())


def test_conjugate_refuses_bad_inputs():
    model = icnn.PICNN(2, 3, hidden=(4,))
    z, x = torch.randn(4, 3), torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"expected z of shape \(batch, 3\), got \(4, 2\)"):
        conjugate(model, torch.randn(4, 2), x)
    with pytest.raises(ValueError, match="expected a context x"):
        conjugate(model, z)
    with pytest.raises(ValueError, match="expected y0 with batch size 4"):
        conjugate(model, z, x, y0=torch.randn(3, 3))
    with pytest.raises(ValueError, match="expected method"):
        conjugate(model, z, x, method="newton")
    with pytest.raises(ValueError, match="expected tol"):
        conjugate(model, z, x, tol=float("nan"))
    with pytest.raises(ValueError, match="expected max_iter"):
        conjugate(model, z, x, max_iter=0)
    with pytest.raises(ValueError, match="finite"):
        conjugate(model, torch.full((4, 3), math.inf), x)
    projected = icnn.FICNN(3, hidden=(4, 4), constraint="project")
    with torch.no_grad():
        projected.z_layers[0].weight[0, 0] = -1.0
    with pytest.raises(ValueError, match="convex in y"):
        conjugate(projected, z)
    with pytest.raises(TypeError, match="convex energy"):
        conjugate(nn.Linear(3, 1), z)

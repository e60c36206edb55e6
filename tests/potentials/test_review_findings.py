"""Regressions of the potential API's review: float32 residuals, scale-free stopping, gradients of
unconverged rows, Gaussian-init refusals, upper bounds of warm starts, input refusals."""

import copy
import warnings

import numpy as np
import pytest
import torch

import icnn
from icnn.potentials import (
    UnconvergedConjugateError,
    UnconvergedConjugateWarning,
    conjugate,
    gaussian_map_init,
    gradient_map,
)


def _beyond_range(seed=0):
    """A float32 softplus FICNN without mu (bounded grad f) and z 5x beyond its gradients."""
    torch.manual_seed(seed)
    model = icnn.FICNN(2, hidden=(8, 8), activation="softplus")
    with torch.no_grad():
        gmax = gradient_map(model)(torch.randn(2000, 2) * 100).norm(dim=1).max()
    torch.manual_seed(seed + 1)
    d = torch.randn(6, 2)
    return model, d / d.norm(dim=1, keepdim=True) * 5 * gmax


def _true_residual(model, y, z):
    grad = gradient_map(model)(y).detach()
    return (grad - z).norm(dim=1) / torch.maximum(z.norm(dim=1), grad.norm(dim=1))


def _scaled_quadratic(mu, dim=1, dtype=torch.float32):
    """``f(y) = mu ||y||^2 / 2`` as an FICNN (the passthrough zeroed)."""
    model = icnn.FICNN(dim, hidden=(), strong_convexity=mu, dtype=dtype)
    with torch.no_grad():
        model.passthrough.weight.zero_()
        model.passthrough.bias.zero_()
    return model


def test_float32_far_y_does_not_round_the_residual_to_zero():
    # f* = +inf at every z: no row may come back converged, and the residual is the true one
    model, z = _beyond_range()
    result = conjugate(model, z, unconverged="keep")
    assert not bool(result.converged.any())
    torch.testing.assert_close(result.residual, _true_residual(model, result.y, z), rtol=1e-3,
                               atol=1e-6)
    assert bool((result.residual > 0.5).all())


def test_float32_warm_start_off_by_4_is_not_accepted():
    # f = 1e-4 y^2 / 2, z = 1: y* = 1e4; y0 = y* + 4 has residual 4e-4 (rounded to 0 before)
    model = _scaled_quadratic(1e-4)
    z = torch.tensor([[1.0]])
    result = conjugate(model, z, y0=torch.tensor([[1e4 + 4.0]]), tol=1e-6)
    assert result.iterations >= 1
    assert bool(result.converged.all())
    assert float((result.y - 1e4).abs()) < 0.05  # a few float32 ulps at 1e4 (0.001 each)
    assert float(result.residual) <= 1e-6


def test_small_z_is_held_to_the_same_relative_accuracy():
    # f = 1e-3 ||y||^2 / 2 at z = 1e-7: y* = 1e-4, a thousand times the default start y0 = z
    model = _scaled_quadratic(1e-3, dim=2, dtype=torch.float64)
    z = torch.full((1, 2), 1e-7, dtype=torch.float64)
    result = conjugate(model, z)
    assert result.iterations >= 1 and bool(result.converged.all())
    torch.testing.assert_close(result.y, z / 1e-3, rtol=1e-6, atol=0.0)
    torch.testing.assert_close(result.value.detach(), z.square().sum(-1) / 2e-3, rtol=1e-6,
                               atol=0.0)


def test_residual_is_scale_free():
    # z and z * 1e-4: the same relative accuracy of y* (an absolute 1e-8 would pass y0 = z)
    torch.manual_seed(0)
    quadratic = _scaled_quadratic(0.5, dim=3, dtype=torch.float64)
    z = torch.randn(4, 3, dtype=torch.float64)
    for scale in (1.0, 1e-4):
        result = conjugate(quadratic, z * scale, tol=1e-8)
        assert bool(result.converged.all())
        torch.testing.assert_close(result.y, z * scale / 0.5, rtol=1e-8, atol=0.0)
        grad = 0.5 * result.y
        expected = (grad - z * scale).norm(dim=1) / torch.maximum((z * scale).norm(dim=1),
                                                                  grad.norm(dim=1))
        torch.testing.assert_close(result.residual, expected, rtol=1e-6, atol=1e-15)


def test_unconverged_rows_carry_no_gradient_by_default():
    model, z = _beyond_range()
    z = z.clone().requires_grad_(True)
    with pytest.warns(UnconvergedConjugateWarning, match="6 of 6 conjugate rows did not converge"):
        result = conjugate(model, z)
    params = [p for p in model.parameters() if p.requires_grad]
    grad, *param_grads = torch.autograd.grad(result.value.sum(), [z, *params], allow_unused=True,
                                             materialize_grads=True)
    assert torch.equal(grad, torch.zeros_like(grad))
    assert all(bool((g == 0).all()) for g in param_grads)
    # "keep": the envelope gradient at the point reached (y, huge here), no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = conjugate(model, z, unconverged="keep")
    (grad,) = torch.autograd.grad(kept.value.sum(), z)
    torch.testing.assert_close(grad, kept.y)
    with pytest.raises(UnconvergedConjugateError, match="expected every row to converge"):
        conjugate(model, z, unconverged="raise")
    with pytest.raises(ValueError, match="expected unconverged in"):
        conjugate(model, z, unconverged="nan")


def test_converged_rows_keep_their_gradients_next_to_unconverged_ones():
    model = icnn.FICNN(2, hidden=(8,), activation="softplus").double()  # no mu: bounded slope
    with torch.no_grad():
        slope = gradient_map(model)(torch.randn(256, 2, dtype=torch.float64) * 10).norm(dim=1).max()
    z = torch.tensor([[0.0, 0.0], [10.0 * float(slope), 0.0]], dtype=torch.float64)
    with torch.no_grad():
        z[0] = gradient_map(model)(torch.tensor([[0.3, -0.2]], dtype=torch.float64))[0]
    z.requires_grad_(True)
    with pytest.warns(UnconvergedConjugateWarning, match="1 of 2"):
        result = conjugate(model, z, tol=1e-8, max_iter=200)
    assert result.converged.tolist() == [True, False]
    (grad,) = torch.autograd.grad(result.value.sum(), z)
    torch.testing.assert_close(grad[0], result.y[0])
    assert torch.equal(grad[1], torch.zeros(2, dtype=torch.float64))


def test_warm_start_at_the_answer_has_a_finite_upper_bound():
    torch.manual_seed(0)
    model = icnn.FICNN(4, hidden=(16, 16), activation="softplus", quadratic_rank=1,
                       strong_convexity=0.1).double()
    y = torch.randn(8, 4, dtype=torch.float64)
    with torch.no_grad():
        z = gradient_map(model)(y)
    result = conjugate(model, z, y0=y, tol=1e-6)
    assert bool(result.converged.all())
    assert bool(torch.isfinite(result.upper_bound).all())
    assert bool((result.gap <= 1e-8 * result.value.detach().abs().clamp_min(1)).all())


def test_upper_bound_holds_where_the_solver_stopped_early():
    # strongly convex quadratic, one iteration from far away: value <= f* <= upper_bound
    model = _scaled_quadratic(0.3, dim=3, dtype=torch.float64)
    z = torch.randn(5, 3, dtype=torch.float64)
    exact = z.square().sum(-1) / 0.6
    result = conjugate(model, z, y0=z * 50, max_iter=1, unconverged="keep")
    value = result.value.detach()
    assert bool((value <= exact + 1e-12).all())
    assert bool((result.upper_bound >= exact - 1e-12).all())
    assert bool(torch.isfinite(result.upper_bound).all())
    # without strong convexity a box still bounds: max over the box of <-grad h, u - y>
    linear = icnn.FICNN(2, hidden=(), dtype=torch.float64)
    z2 = torch.randn(4, 2, dtype=torch.float64)
    boxed = conjugate(linear, z2, domain=icnn.Box(-1.0, 1.0), max_iter=1, unconverged="keep")
    w = linear.passthrough.weight.detach()[0]
    b = linear.passthrough.bias.detach()[0]
    exact2 = (z2 - w).abs().sum(-1) - b  # max over the box of <y, z - w> - b
    assert bool((boxed.upper_bound >= exact2 - 1e-12).all())
    assert bool(torch.isfinite(boxed.upper_bound).all())


def test_float32_value_is_within_rounding_of_the_float64_conjugate():
    torch.manual_seed(0)
    model = icnn.FICNN(4, hidden=(16, 16), activation="softplus", quadratic_rank=1,
                       strong_convexity=0.1)
    z = torch.randn(8, 4)
    single = conjugate(model, z, tol=1e-4)
    double = conjugate(copy.deepcopy(model).double(), z.double(), tol=1e-9, unconverged="keep")
    error = (single.value.detach().double() - double.value.detach()) \
        / double.value.detach().abs().clamp_min(1)
    # documented: a lower bound up to a few 1e-7 relative (one float32 evaluation of f)
    assert float(error.max()) < 2e-6


def test_domain_must_be_an_icnn_box():
    model = icnn.FICNN(2, hidden=(4,), activation="softplus", strong_convexity=1.0)
    with pytest.raises(TypeError, match=r"icnn\.Box"):
        conjugate(model, torch.randn(3, 2), domain=(-1, 1))


def test_gaussian_map_init_refuses_mu_above_the_smallest_eigenvalue():
    torch.manual_seed(0)
    source = torch.randn(500, 3, dtype=torch.float64)
    target = torch.randn(500, 3, dtype=torch.float64) * torch.tensor([0.2, 1.0, 3.0],
                                                                     dtype=torch.float64)
    model = icnn.FICNN(3, hidden=(8,), activation="softplus", quadratic_rank=2,
                       strong_convexity=0.5).double()
    with pytest.raises(ValueError, match=r"expected the model's strong convexity mu <= "
                                         r"lambda_min\(A\) = 0\.2.*got mu = 0\.5"):
        gaussian_map_init(model, source, target)
    with pytest.raises(ValueError, match=r"lambda_min\(A\) = 1 .*got mu = 2"):
        gaussian_map_init(icnn.FICNN(3, hidden=(8,), activation="softplus", quadratic_rank=2,
                                     strong_convexity=2.0))
    # mu below lambda_min: the map is exact
    fine = icnn.FICNN(3, hidden=(8,), activation="softplus", quadratic_rank=2,
                      strong_convexity=0.1).double()
    assert gaussian_map_init(fine, source, target).error < 1e-2  # network_scale's share


def test_gaussian_map_init_refuses_numpy_and_1d_samples():
    model = icnn.FICNN(3, hidden=(8,), activation="softplus", quadratic_rank=2)
    with pytest.raises(TypeError, match=r"expected source a torch\.Tensor .*numpy\.ndarray"):
        rng = np.random.default_rng(0)
        gaussian_map_init(model, rng.standard_normal((50, 3)), rng.standard_normal((50, 3)))
    with pytest.raises(ValueError, match=r"expected source a floating tensor of shape \(N, D\).*"
                                         r"shape \(3,\)"):
        gaussian_map_init(model, torch.randn(3), torch.randn(3))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        icnn.potentials.gaussian_map(torch.randn(3), torch.randn(50, 3))


def test_quadratic_rank_above_the_dimension_is_refused():
    with pytest.raises(ValueError, match=r"expected quadratic_rank <= y_dim = 3.*got 4"):
        icnn.FICNN(3, hidden=(8,), activation="softplus", quadratic_rank=4)
    with pytest.raises(ValueError, match=r"expected quadratic_rank <= y_dim = 2.*got 5"):
        icnn.PICNN(2, 2, hidden=(8,), activation="softplus", quadratic_rank=5)
    assert icnn.FICNN(3, hidden=(8,), activation="softplus", quadratic_rank=3).quadratic.rank == 3


def test_gradient_map_takes_the_context_by_keyword_and_positionally():
    model = icnn.PICNN(2, 3, hidden=(6,), activation="softplus").double()
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    T = gradient_map(model)
    torch.testing.assert_close(T(y, x=x), T(y, x))
    with pytest.raises(ValueError, match="expected"):
        T(x, y)  # swapped: shapes differ, refused

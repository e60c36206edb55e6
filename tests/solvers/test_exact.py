"""method="exact": the LP of paper Section 4.1 (a QP with strong convexity), solved by HiGHS."""

import pytest
import torch

import icnn
from icnn.solvers import Box, argmin


def grid_minimum(model, lo=-1.0, hi=1.0, n=401):
    g = torch.linspace(lo, hi, n, dtype=torch.float64)
    points = torch.cartesian_prod(g, g)
    with torch.no_grad():
        values = model(points)
    return values.min(), points[values.argmin()]


def test_exact_matches_a_fine_grid_on_a_2d_relu_ficnn(zoo):
    model = zoo.relu_ficnn(y_dim=2)
    result = argmin(model, domain=Box(-1.0, 1.0), method="exact")
    grid_value, _ = grid_minimum(model)
    assert result.converged.all()
    # the LP optimum is below every grid point and within the grid's resolution of the best one
    assert float(result.value) <= float(grid_value) + 1e-9
    assert float(result.value) >= float(grid_value) - 5e-2
    assert float(result.gap.max()) < 1e-8


def test_exact_value_is_the_model_at_the_returned_y(zoo):
    model = zoo.relu_picnn()
    x = torch.randn(5, 4, dtype=torch.float64)
    result = argmin(model, x, domain=Box(0.0, 1.0), method="exact")
    torch.testing.assert_close(result.value, model(x, result.y))
    assert ((result.y >= 0) & (result.y <= 1)).all()


def test_exact_handles_leaky_relu_and_abs_first_layer(zoo):
    model = zoo.relu_ficnn(y_dim=2, activation={"name": "leaky_relu", "negative_slope": 0.2},
                       first_activation="abs")
    result = argmin(model, domain=Box(-1.0, 1.0), method="exact")
    grid_value, _ = grid_minimum(model)
    assert float(grid_value) - 5e-2 <= float(result.value) <= float(grid_value) + 1e-9


def test_exact_with_strong_convexity_solves_the_qp(zoo):
    model = zoo.relu_ficnn(y_dim=2, strong_convexity=2.0)
    result = argmin(model, method="exact")  # unbounded domain is fine: the QP has a minimum
    grid_value, _ = grid_minimum(model, -2.0, 2.0, 801)
    assert result.converged.all()
    assert float(grid_value) - 1e-2 <= float(result.value) <= float(grid_value) + 1e-9


def test_exact_keeps_fixed_coordinates(zoo):
    model = zoo.relu_picnn()
    x = torch.randn(3, 4, dtype=torch.float64)
    mask = torch.tensor([True, False, False])
    result = argmin(model, x, domain=Box(0.0, 1.0), fixed=(mask, torch.full((3,), 0.25,
                    dtype=torch.float64)), method="exact")
    assert (result.y[:, 0] == 0.25).all()


def test_exact_refuses_smooth_activations(zoo):
    model = zoo.relu_ficnn(activation="softplus")
    with pytest.raises(ValueError, match="smooth.*piecewise-linear"):
        argmin(model, domain=Box(0.0, 1.0), method="exact")


def test_exact_refuses_models_without_affine_layers(zoo):
    with pytest.raises(ValueError, match="affine_layers"):
        argmin(zoo.quadratic(), domain=Box(0.0, 1.0), method="exact")


def test_exact_refuses_a_linear_model_on_an_unbounded_domain():
    model = icnn.FICNN(2, hidden=()).double()
    with pytest.raises(ValueError, match="unbounded"):
        argmin(model, method="exact", allow_unbounded=True)


def test_exact_prints_nothing_on_stdout(zoo, capfd):
    model = zoo.relu_ficnn(y_dim=2)
    argmin(model, domain=Box(-1.0, 1.0), method="exact")
    out, _ = capfd.readouterr()
    assert out == ""


def test_exact_reports_no_lower_bound_when_highs_stops_early(zoo, monkeypatch):
    from icnn.solvers import exact

    make = exact._new_highs

    def limited(tol):
        highs = make(tol)
        highs.setOptionValue("simplex_iteration_limit", 0)
        return highs

    monkeypatch.setattr(exact, "_new_highs", limited)
    result = argmin(zoo.relu_ficnn(y_dim=3), domain=Box(-1.0, 1.0), method="exact")
    assert not result.converged.any()
    assert torch.isinf(result.lower_bound).all() and (result.lower_bound < 0).all()
    assert torch.isinf(result.gap).all()


def test_exact_qp_with_strong_convexity_is_at_least_as_good_as_a_tight_local_solve():
    torch.manual_seed(0)
    model = icnn.PICNN(2, 3, hidden=(6, 6), strong_convexity=0.3, dtype=torch.float64)
    x = torch.randn(3, 2, dtype=torch.float64)
    exact = argmin(model, x, domain=Box(-1.0, 2.0), method="exact")
    reference = argmin(model, x, domain=Box(-1.0, 2.0), method="lbfgs", tol=1e-15,
                       max_iter=3000)
    assert (exact.value <= reference.value + 1e-12).all()
    # strong convexity: |y - y*|^2 <= 2 (f(y) - f*) / mu; HiGHS's default QP regularisation
    # (1e-7) left y ~2e-6 away
    torch.testing.assert_close(exact.y, reference.y, atol=1e-7, rtol=0)

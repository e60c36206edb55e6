"""Opt-in PSD quadratic terms (quadratic_rank) in FICNN and PICNN: convex, declared honestly."""

import pytest
import torch

import icnn
from icnn.nn.layers import PSDQuadratic


def _models(rank=2, **kw):
    return [icnn.FICNN(3, hidden=(8, 8), quadratic_rank=rank, **kw).double(),
            icnn.PICNN(2, 3, hidden=(8, 8), quadratic_rank=rank, **kw).double()]


def _call(model, x, y):
    return model(y) if model.context_shape is None else model(x, y)


def _jensen_violation(model, n=200):
    a, b = torch.randn(n, 3, dtype=torch.float64) * 2, torch.randn(n, 3, dtype=torch.float64) * 2
    x = torch.randn(n, 2, dtype=torch.float64)
    t = torch.rand(n, 1, dtype=torch.float64)
    with torch.no_grad():
        mid = _call(model, x, t * a + (1 - t) * b)
        chord = t[:, 0] * _call(model, x, a) + (1 - t[:, 0]) * _call(model, x, b)
    return float((mid - chord).max())


def test_psd_quadratic_is_its_unit_matrices():
    quadratic = PSDQuadratic(3, 4, rank=2).double()
    torch.nn.init.normal_(quadratic.factors)
    y = torch.randn(5, 3, dtype=torch.float64)
    expected = torch.stack([((y @ quadratic.unit_matrix(o)) * y).sum(-1) for o in range(4)], -1)
    torch.testing.assert_close(quadratic(y), expected)
    assert bool((torch.linalg.eigvalsh(quadratic.unit_matrix(1)) >= -1e-12).all())


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_quadratic_models_stay_convex_after_an_optimiser_step(activation):
    for model in _models(activation=activation):
        assert _jensen_violation(model) <= 1e-10
        optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
        y, x = torch.randn(64, 3, dtype=torch.float64), torch.randn(64, 2, dtype=torch.float64)
        (-_call(model, x, y).sum()).backward()  # push towards concave-looking weights
        optimiser.step()
        assert _jensen_violation(model) <= 1e-10


def test_quadratic_traits_are_smooth_with_kinks_and_the_diagonal_strong_convexity():
    relu, smooth = _models(activation="relu")[0], _models(activation="softplus")[1]
    traits = relu.energy_traits()
    assert (traits.curvature, traits.kinks, traits.convex) == ("smooth", True, True)
    assert not smooth.energy_traits().kinks
    with torch.no_grad():
        icnn.nn.constraints.set_nonnegative_(relu.quadratic.diagonal,
                                             torch.full_like(relu.quadratic.diagonal.weight, 0.25))
    assert relu.energy_traits().strong_convexity == pytest.approx(0.5)
    # the declared modulus is real: the Hessian of f - 0.25 ||y||^2 ... is PSD (f - mu/2 convex)
    y = torch.randn(3, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(lambda t: relu(t[None])[0], y)
    assert float(torch.linalg.eigvalsh(hessian).min()) >= 0.5 - 1e-9


def test_exact_lp_refuses_a_quadratic_model():
    model = icnn.FICNN(3, hidden=(4,), quadratic_rank=1)
    with pytest.raises(ValueError, match="cannot solve a smooth energy"):
        icnn.argmin(model, y0=torch.zeros(2, 3), method="exact", domain=icnn.Box(-1, 1))
    with pytest.raises(ValueError, match="no affine layers"):
        model.affine_layers()


def test_quadratic_rank_is_validated():
    with pytest.raises(ValueError, match="quadratic_rank an int >= 0"):
        icnn.FICNN(3, quadratic_rank=-1)
    with pytest.raises(ValueError, match="non-decreasing first_activation"):
        icnn.PICNN(2, 3, first_activation="abs", quadratic_rank=1)


def test_projected_diagonal_is_checked_like_any_constrained_weight():
    model = icnn.FICNN(3, hidden=(4,), quadratic_rank=1, constraint="project")
    with torch.no_grad():
        model.quadratic.diagonal.weight[0, 0] = -1.0
    traits = model.energy_traits()
    assert not traits.convex and "quadratic.diagonal.weight" in traits.issues[0]
    model.project_()
    assert model.energy_traits().convex


def test_quadratic_model_round_trips_a_checkpoint(tmp_path):
    model = icnn.PICNN(2, 3, hidden=(4,), quadratic_rank=2)
    icnn.save(model, tmp_path / "m.safetensors")
    loaded = icnn.load(tmp_path / "m.safetensors")
    y, x = torch.randn(4, 3), torch.randn(4, 2)
    assert torch.equal(model(x, y), loaded(x, y))

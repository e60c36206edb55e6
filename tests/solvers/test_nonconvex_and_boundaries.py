"""A model that is not convex gets no certificate, and bad calls are refused at the door."""

import math

import pytest
import torch

import icnn
from icnn import Box, argmin
from icnn.learn.margin import LossAugmentedEnergy

CONV = {"channels": (3, 4), "kernel_sizes": (3, 2), "strides": (2, 1), "dense": (5,)}


def broken_project_ficnn() -> icnn.FICNN:
    torch.manual_seed(4)
    model = icnn.FICNN(3, hidden=(8, 8), constraint="project").double()
    with torch.no_grad():
        model.z_layers[0].weight.sub_(2.0)  # an optimiser step before project_()
    return model


def nonconvex_conv() -> icnn.ConvPICNN:
    torch.manual_seed(5)
    return icnn.ConvPICNN((1, 8, 6), (1, 8, 6), convex=False, **CONV).double()


@pytest.mark.parametrize("method", ["auto", "bundle", "bundle_entropy", "exact"])
def test_certifying_methods_refuse_a_model_that_is_not_convex(method):
    model = broken_project_ficnn()
    with pytest.raises(ValueError, match=r"needs a model convex in y.*z_layers.0.weight.*pgd"):
        argmin(model, domain=Box(0.0, 1.0), method=method)


def test_conv_ablation_is_refused_by_bundle_not_given_a_negative_gap():
    model = nonconvex_conv()
    x = torch.rand(2, 1, 8, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="convex=False"):
        argmin(model, x, domain=Box(0.0, 1.0), method="bundle")


@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_local_methods_run_on_a_non_convex_model_without_a_certificate(method):
    model = broken_project_ficnn()
    result = argmin(model, domain=Box(0.0, 1.0), y0=torch.rand(3, 3, dtype=torch.float64),
                    method=method, max_iter=200)
    assert not bool(result.converged.any())
    assert result.gap is None and result.lower_bound is None
    assert result.info["not_convex"] and result.info["stationary"].shape == (3,)
    # the point is still a real, feasible evaluation of the model
    torch.testing.assert_close(result.value, model(result.y))
    assert bool(((result.y >= 0) & (result.y <= 1)).all())


def test_unrolled_prediction_of_the_conv_ablation_runs_and_is_not_certified():
    model = nonconvex_conv()
    x = torch.rand(2, 1, 8, 6, dtype=torch.float64)
    result = argmin(model, x, domain=Box(0.0, 1.0), differentiable="unroll", max_iter=3)
    assert result.y.requires_grad and not bool(result.converged.any()) and result.gap is None


def test_implicit_gradient_is_refused_on_a_non_convex_model():
    with pytest.raises(ValueError, match="differentiable='implicit' needs a model convex"):
        argmin(broken_project_ficnn(), domain=Box(0.0, 1.0), method="pgd",
               differentiable="implicit")


def test_projected_model_is_certified_again():
    model = broken_project_ficnn().project_()
    result = argmin(model, domain=Box(0.0, 1.0), method="bundle")
    assert bool(result.converged.all()) and result.gap is not None


def test_auto_sends_a_barrier_energy_to_lbfgs_not_the_bundle_method():
    torch.manual_seed(0)
    picnn = icnn.PICNN(3, 4, hidden=(6,)).double()
    y_true = torch.randint(0, 2, (2, 4)).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    plain = LossAugmentedEnergy(picnn, 1.0)
    assert argmin(plain, plain.context(x, y_true), domain=Box(0.0, 1.0)).method == "bundle"
    barrier = LossAugmentedEnergy(picnn, 1.0, entropy=True)
    result = argmin(barrier, barrier.context(x, y_true), domain=Box(0.0, 1.0))
    assert result.method == "lbfgs" and bool(torch.isfinite(result.gap).all())


def test_empty_batch_is_refused_clearly():
    model = icnn.PICNN(3, 2, hidden=(4,)).double()
    for method in ("pgd", "lbfgs", "bundle", "bundle_entropy", "exact", "auto"):
        with pytest.raises(ValueError, match="at least one example"):
            argmin(model, torch.zeros(0, 3, dtype=torch.float64), domain=Box(0, 1), method=method)


def test_float_mask_is_refused_not_cast():
    model = icnn.FICNN(3, hidden=(4,)).double()
    mask = torch.tensor([0.5, 0.0, 1.0])
    with pytest.raises(ValueError, match="bool tensor.*not cast"):
        argmin(model, domain=Box(0, 1), fixed=(mask, torch.zeros(3)), method="pgd")


@pytest.mark.parametrize("lo, hi", [(math.inf, math.inf), (-math.inf, -math.inf),
                                    (0.0, -math.inf)])
def test_empty_or_infinite_box_is_refused(lo, hi):
    with pytest.raises(ValueError, match="Box"):
        Box(lo, hi)


def test_unroll_refuses_options_it_would_ignore():
    model = icnn.FICNN(3, hidden=(4,)).double()
    with pytest.raises(ValueError, match=r"takes no solver options.*\['lipschitz'\]"):
        argmin(model, domain=Box(0, 1), differentiable="unroll", lipschitz=3.0)


def test_auto_with_a_pgd_option_runs_pgd():
    model = icnn.FICNN(3, hidden=(4,)).double()
    result = argmin(model, domain=Box(0, 1), lipschitz=2.0, max_iter=5)
    assert result.method == "pgd"
    assert argmin(model, domain=Box(0, 1), memory=3, max_iter=5).method == "lbfgs"
    with pytest.raises(ValueError, match="no single method takes"):
        argmin(model, domain=Box(0, 1), memory=3, lipschitz=2.0)


class InfOutside(torch.nn.Module):
    """``||y - 3||^2`` where every coordinate is below 1, ``+inf`` elsewhere (a barrier's outside)."""

    convex_input_shape, context_shape = (2,), None

    def energy_traits(self):
        return icnn.EnergyTraits(convex=True, curvature="smooth", strong_convexity=2.0)

    def forward(self, y):
        value = (y - 3).square().sum(-1)
        return torch.where((y < 1).all(-1), value, torch.full_like(value, math.inf))


@pytest.mark.parametrize("method", ["pgd", "lbfgs", "bundle"])
def test_an_infinite_value_is_never_converged(method):
    result = argmin(InfOutside(), y0=torch.full((1, 2), 2.0), domain=Box(-5.0, 5.0),
                    method=method)
    assert not bool(result.converged.any())
    if result.lower_bound is not None:
        assert not bool((result.lower_bound == math.inf).any())


@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_a_vanishing_strong_convexity_never_overflows_into_a_certificate(method):
    torch.manual_seed(0)
    model = icnn.FICNN(3, hidden=(8,), strong_convexity=1e-200).double()
    result = argmin(model, method=method)
    assert not bool(result.converged.any())
    assert bool((result.lower_bound <= result.value).all())


def test_a_nan_energy_is_refused_not_returned():
    model = icnn.FICNN(3, hidden=(8,), strong_convexity=1e300)  # inf in float32: inf * 0 is NaN
    with pytest.raises(ValueError, match="NaN at the solver's point"):
        argmin(model, method="lbfgs")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_models_are_refused_at_the_door(dtype):
    with pytest.raises(ValueError, match="float32 or float64 model"):
        argmin(icnn.FICNN(3, hidden=(8,)).to(dtype), domain=Box(0.0, 1.0))


def test_finite_bounds_whose_width_overflows_are_refused():
    with pytest.raises(ValueError, match="width overflows"):
        argmin(icnn.FICNN(4, hidden=(8,)), domain=Box(-3e38, 3e38), method="bundle")


@pytest.mark.parametrize("tol", [math.inf, math.nan, -1e-3])
def test_tol_must_be_finite_and_non_negative(tol):
    with pytest.raises(ValueError, match="tol must be a finite number"):
        argmin(icnn.FICNN(3, hidden=(4,)), domain=Box(0.0, 1.0), tol=tol)

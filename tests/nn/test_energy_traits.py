"""The declared interface: every energy states what it is, and wrappers combine it."""

import math

import pytest
import torch
from torch import nn

import icnn
from icnn.learn.margin import LossAugmentedEnergy
from icnn.nn.energy import LINEAR_TERM, EnergyTraits, energy_traits, sum_traits
from icnn.tasks.completion.energy import CompletionEnergy
from icnn.tasks.completion.ensemble import CompletionEnsemble
from icnn.tasks.rl.entropy import EntropyRegularizedEnergy
from icnn.tasks.rl.quadratic_head import QuadraticHeadEnergy

TINY_CONV = {"channels": (3, 4), "kernel_sizes": (3, 2), "strides": (2, 1), "dense": (5,)}


def test_relu_models_declare_piecewise_linear_and_smooth_ones_smooth():
    relu = icnn.PICNN(3, 2, hidden=(4,))
    smooth = icnn.FICNN(2, hidden=(4,), activation="softplus", strong_convexity=0.5)
    assert relu.energy_traits() == EnergyTraits(convex=True, curvature="piecewise_linear",
                                                constraint="softplus")
    assert relu.energy_traits().piecewise_linear
    traits = smooth.energy_traits()
    assert (traits.curvature, traits.strong_convexity, traits.piecewise_linear) == \
        ("smooth", 0.5, False)


def test_relu_with_strong_convexity_is_not_piecewise_linear_as_a_whole():
    traits = icnn.FICNN(2, hidden=(4,), strong_convexity=0.1).energy_traits()
    assert traits.curvature == "piecewise_linear" and not traits.piecewise_linear


def test_project_model_is_non_convex_until_projected_and_says_where():
    model = icnn.FICNN(2, hidden=(4, 4), constraint="project")
    with torch.no_grad():
        model.z_layers[0].weight[0, 0] = -0.5
    traits = model.energy_traits()
    assert not traits.convex
    assert len(traits.issues) == 1 and "z_layers.0.weight" in traits.issues[0]
    assert "project_()" in traits.issues[0]
    model.project_()
    assert model.energy_traits().convex


def test_non_finite_constrained_weight_is_not_convex():
    model = icnn.FICNN(2, hidden=(4, 4))
    with torch.no_grad():
        model.z_layers[0].parametrizations.weight.original[0, 0] = math.nan
    assert "non-finite" in model.energy_traits().issues[0]


def test_exp_weight_that_overflows_is_not_convex():
    model = icnn.FICNN(2, hidden=(4, 4), constraint="exp")
    with torch.no_grad():
        model.z_layers[0].parametrizations.weight.original[0, 0] = 1000.0
    assert "overflows" in model.energy_traits().issues[0]


def test_nonconvex_conv_ablation_declares_itself():
    model = icnn.ConvPICNN((1, 8, 6), (1, 8, 6), convex=False, **TINY_CONV)
    traits = model.energy_traits()
    assert not traits.convex and "convex=False" in traits.issues[0]
    report = icnn.check_convexity(model, n_pairs=8)
    assert not report.structural_ok and "convex=False" in report.issues[0]


def test_plus_combines_convexity_modulus_and_curvature():
    a = EnergyTraits(convex=True, strong_convexity=0.5, curvature="piecewise_linear",
                     constraint="softplus")
    b = EnergyTraits(convex=False, curvature="barrier", issues=("broken",))
    total = a.plus(b)
    assert total == EnergyTraits(convex=False, strong_convexity=0.5, curvature="barrier",
                                 constraint="softplus", issues=("broken",), kinks=True)
    assert not EnergyTraits(convex=True, curvature="smooth").kinks
    # an affine term adds no kinks to a smooth energy, a ReLU network does
    smooth = EnergyTraits(convex=True, curvature="smooth")
    assert not smooth.plus(LINEAR_TERM).kinks and smooth.plus(a).kinks
    assert a.plus(LINEAR_TERM).curvature == "piecewise_linear"
    assert a.plus(EnergyTraits(convex=True, constraint="project")).constraint == "mixed"
    assert sum_traits([a, a]).strong_convexity == 1.0
    assert a.scaled(4.0).strong_convexity == 2.0


@pytest.mark.parametrize("kwargs, message", [
    ({"convex": 1}, "bool"),
    ({"convex": True, "strong_convexity": -1.0}, ">= 0"),
    ({"convex": True, "strong_convexity": math.inf}, "finite"),
    ({"convex": True, "curvature": "wiggly"}, "curvature"),
    ({"convex": True, "constraint": "clamp"}, "constraint"),
    ({"convex": True, "issues": ("x",)}, "no issues"),
])
def test_traits_refuse_bad_declarations(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        EnergyTraits(**kwargs)


@pytest.mark.parametrize("factor", [0.0, -1.0, math.inf, math.nan])
def test_scaling_needs_a_positive_finite_factor(factor):
    with pytest.raises(ValueError, match="factor > 0"):
        EnergyTraits(convex=True).scaled(factor)


def test_a_module_that_declares_nothing_is_refused_with_what_is_missing():
    class Bare(nn.Module):
        convex_input_shape = (2,)

        def forward(self, y):
            return y.sum(-1)

    with pytest.raises(TypeError, match=r"icnn.ConvexEnergy.*\['context_shape', 'energy_traits'\]"):
        energy_traits(Bare())
    with pytest.raises(TypeError, match="ConvexEnergy"):
        icnn.argmin(Bare(), domain=icnn.Box(0, 1), method="pgd")


def test_declaration_must_return_traits():
    class Wrong(nn.Module):
        convex_input_shape = (2,)
        context_shape = None

        def energy_traits(self):
            return {"convex": True}

    with pytest.raises(TypeError, match="must return icnn.EnergyTraits, got dict"):
        energy_traits(Wrong())


def test_wrappers_declare_their_terms():
    picnn = icnn.PICNN(3, 2, hidden=(4,))
    augmented = LossAugmentedEnergy(picnn, margin=1.0)
    assert augmented.energy_traits().curvature == "piecewise_linear"
    barrier = EntropyRegularizedEnergy(picnn, weight=0.7)
    assert (barrier.energy_traits().curvature, barrier.energy_traits().strong_convexity) == \
        ("barrier", 0.7)
    head = QuadraticHeadEnergy(picnn, obs_dim=3, act_dim=2)
    assert (head.energy_traits().curvature, head.energy_traits().strong_convexity) == ("smooth", 0.0)


def test_wrappers_see_a_wrapped_model_become_non_convex():
    picnn = icnn.PICNN(3, 2, hidden=(4, 4), constraint="project")
    wrapped = [LossAugmentedEnergy(picnn), EntropyRegularizedEnergy(picnn, weight=1.0)]
    assert all(w.energy_traits().convex for w in wrapped)
    with torch.no_grad():
        picnn.z_layers[0].weight.fill_(-1.0)
    for w in wrapped:
        assert not w.energy_traits().convex and "z_layers.0.weight" in w.energy_traits().issues[0]


def test_completion_energy_and_ensemble_scale_and_sum_member_traits():
    conv = icnn.ConvPICNN((1, 8, 6), (1, 8, 6), strong_convexity=0.2, **TINY_CONV)
    energy = CompletionEnergy(conv, scale=5.0)
    assert energy.energy_traits().strong_convexity == pytest.approx(1.0)
    ablation = CompletionEnergy(icnn.ConvPICNN((1, 8, 6), (1, 8, 6), convex=False, **TINY_CONV))
    ensemble = CompletionEnsemble([energy, ablation])
    traits = ensemble.energy_traits()
    assert not traits.convex and traits.strong_convexity == pytest.approx(0.5)

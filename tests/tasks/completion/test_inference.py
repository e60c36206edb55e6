"""Completion inference: GD and bundle entropy stay in [0, 1] and never move observed pixels."""

from __future__ import annotations

import pytest
import torch

from icnn.learn import unrolled_gd
from icnn.nn.conv import ConvPICNN
from icnn.solvers.domain import Box
from icnn.tasks.completion.energy import CompletionEnergy
from icnn.tasks.completion.inference import InferenceConfig, complete

SMALL = {"channels": (3, 4), "kernel_sizes": (3, 3), "strides": (2, 1), "dense": (6,)}


def test_unrolled_gd_reaches_the_box_constrained_minimiser_of_a_quadratic():
    target = torch.tensor([[-0.5, 0.25, 0.8, 1.7]])

    def energy(y):
        return 0.5 * (y - target).square().sum(-1)

    y = unrolled_gd(energy, None, torch.full((1, 4), 0.5), steps=200, lr=0.1, momentum=0.5,
                    domain=Box(0.0, 1.0), create_graph=False)
    torch.testing.assert_close(y, target.clamp(0, 1), atol=1e-5, rtol=0)


def test_unrolled_gd_keeps_fixed_coordinates_and_differentiates_the_others():
    weight = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    mask = torch.tensor([[True, False, False]])
    values = torch.tensor([[0.3, 0.0, 0.0]])

    def energy(y):
        return (weight * y).sum(-1) + y.square().sum(-1)

    y = unrolled_gd(energy, None, torch.full((1, 3), 0.5), steps=5, lr=0.1, momentum=0.9,
                    domain=Box(0.0, 1.0), fixed=(mask, values))
    assert torch.equal(y[0, 0].detach(), values[0, 0])
    y.sum().backward()
    assert weight.grad is not None and float(weight.grad[1].abs()) > 0


@pytest.fixture
def masked_problem():
    torch.manual_seed(0)
    model = ConvPICNN((2, 8, 6), (1, 8, 6), **SMALL)
    energy = CompletionEnergy(model, scale=50.0)
    truth = torch.rand(4, 1, 8, 6)
    observed = torch.rand(4, 1, 8, 6) < 0.6
    x = torch.cat([truth * observed, observed.float()], dim=1)
    return energy, x, truth, observed


@pytest.mark.parametrize("method", ["gd", "bundle_entropy"])
def test_fixed_coordinate_completion_leaves_observed_pixels_untouched(masked_problem, method):
    energy, x, truth, observed = masked_problem
    y0 = torch.full_like(truth, 0.5)
    config = InferenceConfig(method=method, steps=5, lr=0.05)
    features = energy.features(x)
    y_hat = complete(energy, features, y0, config, fixed=(observed, truth))
    assert torch.equal(y_hat[observed], truth[observed])
    assert bool((y_hat >= 0).all() and (y_hat <= 1).all())
    assert not torch.allclose(y_hat[~observed], y0[~observed])  # the free pixels did move


@pytest.mark.parametrize("method", ["gd", "bundle_entropy"])
def test_differentiable_completion_reaches_the_weights(masked_problem, method):
    energy, x, truth, observed = masked_problem
    features = energy.features(x)
    y_hat = complete(energy, features, torch.full_like(truth, 0.5),
                     InferenceConfig(method=method, steps=3), fixed=(observed, truth),
                     differentiable=True)
    (y_hat - truth).square().mean().backward()
    assert float(energy.log_scale.grad.abs()) > 0
    assert float(energy.model.x_convs[0].weight.grad.abs().sum()) > 0  # through the features
    assert float(energy.model.z_dense[0].raw_weight.grad.abs().sum()) > 0


def test_energy_scale_multiplies_the_picnn_and_keeps_convexity():
    model = ConvPICNN((1, 6, 4), (1, 6, 4), **SMALL).double()
    energy = CompletionEnergy(model, scale=7.0).double()
    x, y = torch.rand(3, 1, 6, 4, dtype=torch.float64), torch.rand(3, 1, 6, 4, dtype=torch.float64)
    torch.testing.assert_close(energy(energy.features(x), y), 7.0 * model(x, y))
    from icnn import check_convexity

    assert check_convexity(energy, energy.features(x).detach(), n_pairs=3).ok
    with pytest.raises(ValueError, match="scale"):
        CompletionEnergy(model, scale=0.0)


def test_bundle_entropy_refuses_the_nonconvex_ablation():
    energy = CompletionEnergy(ConvPICNN((1, 6, 4), (1, 6, 4), **SMALL, convex=False))
    x = torch.rand(2, 1, 6, 4)
    with pytest.raises(ValueError, match="convex"):
        complete(energy, energy.features(x), torch.rand(2, 1, 6, 4),
                 InferenceConfig(method="bundle_entropy"))


def reference_heavy_ball(energy, y0, steps, lr, momentum, mask, values):
    """The authors' projected heavy-ball loop written out plainly, as completion ran it."""
    y = torch.where(mask, values, y0.clamp(0.0, 1.0))
    velocity = torch.zeros_like(y)
    for _ in range(steps):
        y = y.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(y).sum(), y)
        velocity = momentum * velocity + grad
        y = torch.where(mask, values, (y - lr * velocity).clamp(0.0, 1.0))
    return y.detach()


@pytest.mark.parametrize("differentiable", [False, True])
def test_gd_completion_is_the_heavy_ball_loop_on_a_fixed_seed(masked_problem, differentiable):
    energy, x, truth, observed = masked_problem
    features = energy.features(x)
    y0 = torch.full_like(truth, 0.5)
    config = InferenceConfig(method="gd", steps=5, lr=0.05)
    y_hat = complete(energy, features, y0, config, fixed=(observed, truth),
                     differentiable=differentiable)
    expected = reference_heavy_ball(lambda y: energy.energy(features.detach(), y), y0, 5, 0.05,
                                    0.9, observed, truth)
    torch.testing.assert_close(y_hat.detach(), expected, rtol=0, atol=1e-6)
    assert y_hat.requires_grad == differentiable

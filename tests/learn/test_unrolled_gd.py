"""The one unrolled heavy-ball descent (icnn.learn.unrolled_gd): its gradient, its callers, its door."""

import pytest
import torch

import icnn
from icnn.learn import unrolled_gd
from icnn.solvers.domain import Box
from icnn.tasks.synthetic.models import build_model

D = torch.float64


def plain_heavy_ball(energy, y0, steps, lr, momentum, lo=None, hi=None):
    """v ← μv + ∇f(y), y ← clamp(y − αv), written out; the iterates keep their graph."""
    y = y0 if lo is None else y0.clamp(lo, hi)
    velocity = torch.zeros_like(y0)
    for _ in range(steps):
        if not y.requires_grad:
            y = y.requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(y).sum(), y, create_graph=True)
        velocity = momentum * velocity + grad
        y = y - lr * velocity
        if lo is not None:
            y = y.clamp(lo, hi)
    return y


def test_gradient_in_weights_context_and_start_passes_gradcheck():
    torch.manual_seed(0)
    weight = torch.randn(4, 3, dtype=D, requires_grad=True)
    x = torch.randn(2, 4, dtype=D, requires_grad=True)
    y0 = (0.3 * torch.randn(2, 3, dtype=D)).requires_grad_()

    def unrolled(weight, x, y0):
        def energy(x, y):  # smooth and convex in y: softplus of an affine map plus a quadratic
            return torch.nn.functional.softplus(y @ weight.T + x).sum(1) + 0.5 * y.square().sum(1)

        return unrolled_gd(energy, x, y0, steps=6, lr=0.1, momentum=0.9)

    assert torch.autograd.gradcheck(unrolled, (weight, x, y0))


def test_gradient_through_a_picnn_passes_gradcheck_with_pinned_coordinates():
    torch.manual_seed(1)
    model = icnn.PICNN(2, 3, hidden=(4,), activation="softplus", strong_convexity=1.0, dtype=D)
    params = dict(model.named_parameters())
    name = "z_layers.0.parametrizations.weight.original"  # the non-negative z-weight, raw
    x = torch.randn(3, 2, dtype=D, requires_grad=True)
    y0 = torch.full((3, 3), 0.5, dtype=D)
    mask = torch.tensor([False, True, False]).expand(3, 3)
    values = torch.full((3, 3), 0.2, dtype=D)

    def unrolled(weight, x):
        def energy(x, y):
            return torch.func.functional_call(model, {**params, name: weight}, (x, y))

        return unrolled_gd(energy, x, y0, steps=5, lr=0.05, momentum=0.9, fixed=(mask, values))

    weight = params[name].detach().clone().requires_grad_()
    out = unrolled(weight, x)
    assert torch.equal(out[:, 1], values[:, 1])
    assert torch.autograd.gradcheck(unrolled, (weight, x))


@pytest.mark.parametrize("kind", ["ficnn", "picnn"])
@pytest.mark.parametrize("domain", [None, Box(0.0, 1.0)], ids=["free", "box01"])
def test_the_synthetic_classifier_is_the_plain_heavy_ball_loop_on_a_fixed_seed(kind, domain):
    torch.manual_seed(0)
    model = build_model(kind, (8, 8), steps=30, lr=0.01, domain=domain)
    x = torch.randn(6, 2)
    model.train()
    y_hat = model(x)
    start = torch.full((6, 1), 0.5)
    bounds = (None, None) if domain is None else (0.0, 1.0)
    expected = plain_heavy_ball(lambda y: model.energy(x, y), start, 30, 0.01, 0.9, *bounds)
    torch.testing.assert_close(y_hat, expected, rtol=0, atol=1e-6)
    weights = [p for p in model.parameters() if p.requires_grad]
    got = torch.autograd.grad(y_hat.sum(), weights, allow_unused=True)
    want = torch.autograd.grad(expected.sum(), weights, allow_unused=True)
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None
        else:
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    model.eval()
    evaluated = model(x)
    assert not evaluated.requires_grad
    torch.testing.assert_close(evaluated, y_hat.detach(), rtol=0, atol=1e-6)


def test_iterates_start_projected_and_stay_in_the_domain():
    def energy(y):
        return -(3.0 * y).sum(1)  # pushes up without bound

    y = unrolled_gd(energy, None, torch.full((2, 3), 5.0, dtype=D), steps=4, lr=0.1,
                    domain=Box(-1.0, 2.0))
    assert torch.equal(y, torch.full((2, 3), 2.0, dtype=D))
    y = unrolled_gd(energy, None, torch.full((2, 3), 5.0, dtype=D), steps=0, domain=Box(0., 1.))
    assert torch.equal(y, torch.ones(2, 3, dtype=D))


def test_the_door_refuses_bad_settings_with_what_was_expected():
    def energy(y):
        return y.square().sum(1)

    y0 = torch.zeros(2, 3, dtype=D)
    cases = [
        ({"steps": -1}, ValueError, r"steps must be an int >= 0, got -1"),
        ({"steps": 2.5}, ValueError, r"steps must be an int >= 0, got 2.5"),
        ({"lr": 0.0}, ValueError, r"expected lr a finite number > 0, got 0.0"),
        ({"momentum": 1.0}, ValueError, r"expected momentum in \[0, 1\), got 1.0"),
        ({"fixed": (torch.zeros(2, 3), y0)}, TypeError, "bool fixed mask"),
        ({"fixed": (torch.zeros(2, 4, dtype=torch.bool), y0)}, ValueError,
         r"fixed mask broadcastable to y0's shape \(2, 3\), got \(2, 4\)"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            unrolled_gd(energy, None, y0, **options)
    with pytest.raises(ValueError, match=r"expected y0 a floating-point tensor"):
        unrolled_gd(energy, None, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"energy to return shape \(2,\).*got \(2, 3\)"):
        unrolled_gd(lambda y: y.square(), None, y0, steps=1)


def test_without_create_graph_the_result_has_no_graph_and_the_same_values():
    weight = torch.tensor([0.5, -1.0, 2.0], dtype=D, requires_grad=True)

    def energy(y):
        return (weight * y).sum(1) + y.square().sum(1)

    y0 = torch.full((2, 3), 0.5, dtype=D)
    kept = unrolled_gd(energy, None, y0, steps=7, lr=0.1, domain=Box(0.0, 1.0))
    dropped = unrolled_gd(energy, None, y0, steps=7, lr=0.1, domain=Box(0.0, 1.0),
                          create_graph=False)
    assert kept.requires_grad and not dropped.requires_grad
    torch.testing.assert_close(kept.detach(), dropped, rtol=0, atol=0)

"""Max-margin loss (Section 5.1): values and gradients on a case solved by hand."""

import math

import pytest
import torch

import icnn
from icnn.learn import LossAugmentedEnergy, hamming_margin, max_margin, negative_entropy

D = torch.float64


def linear_quadratic_model() -> icnn.FICNN:
    """f(y) = w·y + b + ½‖y‖² with w = (0.5, −1), b = 0.2 (an FICNN without hidden layers)."""
    model = icnn.FICNN(2, hidden=(), strong_convexity=1.0, dtype=D)
    with torch.no_grad():
        model.passthrough.weight.copy_(torch.tensor([[0.5, -1.0]], dtype=D))
        model.passthrough.bias.fill_(0.2)
    return model


def closed_form_solver(energy: LossAugmentedEnergy, context: torch.Tensor) -> torch.Tensor:
    """min over [0,1]^2 of ½‖y‖² + (w + s(2 y_true − 1))·y, coordinate-wise."""
    _, y_true = energy.split(context)
    w = energy.model.passthrough.weight[0]
    return (-(w + energy.margin * (2 * y_true - 1))).clamp(0, 1)


Y_TRUE = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D)
# by hand: y* = (0, 1) and (0.5, 0); f(y_true) = 1.2, −0.3; f(y*) = −0.3, 0.575; Δ = 2, 1.5
# hinge = 1.2 − (−0.3 − 2) = 3.5 and −0.3 − (0.575 − 1.5) = 0.625
HAND_LOSSES = torch.tensor([3.5, 0.625], dtype=D)


def test_hamming_margin_counts_flipped_labels_and_is_linear_in_y():
    y_true = torch.tensor([[1.0, 0.0, 1.0]], dtype=D)
    assert hamming_margin(y_true, torch.tensor([[0.0, 1.0, 1.0]], dtype=D)).item() == 2.0
    assert hamming_margin(y_true, torch.tensor([[0.5, 0.5, 0.5]], dtype=D)).item() == 1.5


def test_max_margin_matches_hand_computed_values():
    losses = max_margin(linear_quadratic_model(), None, Y_TRUE, solver=closed_form_solver,
                        reduction="none")
    torch.testing.assert_close(losses, HAND_LOSSES, rtol=0, atol=1e-12)
    mean = max_margin(linear_quadratic_model(), None, Y_TRUE, solver=closed_form_solver)
    assert mean.item() == pytest.approx(2.0625, abs=1e-12)


def test_margin_scale_enters_the_augmented_minimum():
    losses = max_margin(linear_quadratic_model(), None, Y_TRUE[:1], margin=0.5,
                        solver=closed_form_solver, reduction="none")
    assert losses.item() == pytest.approx(1.2 - (-0.3 - 0.5 * 2), abs=1e-12)


def test_max_margin_gradient_is_danskins():
    model = linear_quadratic_model()
    max_margin(model, None, Y_TRUE, solver=closed_form_solver).backward()
    # d/dw mean_i (w·y_true_i − w·y*_i) = mean(y_true − y*) = ((1, −1) + (−0.5, 1)) / 2
    torch.testing.assert_close(model.passthrough.weight.grad,
                               torch.tensor([[0.25, 0.0]], dtype=D), rtol=0, atol=1e-12)
    assert model.passthrough.bias.grad.item() == pytest.approx(0.0, abs=1e-12)


def test_max_margin_gradient_matches_finite_differences_on_a_picnn():
    torch.manual_seed(3)
    model = icnn.PICNN(3, 4, hidden=(6,), strong_convexity=0.5, dtype=D)
    x = torch.randn(5, 3, dtype=D)
    y_true = (torch.rand(5, 4, dtype=D) > 0.5).to(D)
    options = {"tol": 1e-12, "max_iter": 5000}

    def loss() -> torch.Tensor:
        return max_margin(model, x, y_true, solver="pgd", solver_options=options)

    model.zero_grad()
    loss().backward()
    eps = 1e-6
    for param in model.parameters():
        flat, grad = param.data.view(-1), param.grad.view(-1)
        for k in range(min(flat.numel(), 4)):
            with torch.no_grad():
                flat[k] += eps
                up = loss().item()
                flat[k] -= 2 * eps
                down = loss().item()
                flat[k] += eps
            assert grad[k].item() == pytest.approx((up - down) / (2 * eps), abs=1e-5)


def test_max_margin_with_argmin_solver_agrees_with_closed_form():
    model = linear_quadratic_model()
    losses = max_margin(model, None, Y_TRUE, solver="pgd",
                        solver_options={"tol": 1e-12, "max_iter": 2000}, reduction="none")
    torch.testing.assert_close(losses, HAND_LOSSES, rtol=0, atol=1e-8)


def test_loss_augmented_energy_is_batch_agnostic_and_adds_entropy():
    torch.manual_seed(0)
    model = icnn.PICNN(3, 4, hidden=(5,), dtype=D)
    energy = LossAugmentedEnergy(model, margin=2.0, entropy=True)
    assert energy.convex_input_shape == (4,) and energy.context_shape == (7,)
    x, y_true = torch.randn(6, 3, dtype=D), (torch.rand(6, 4, dtype=D) > 0.5).to(D)
    y = torch.rand(6, 4, dtype=D)
    context = energy.context(x, y_true)
    expected = model(x, y) - 2.0 * hamming_margin(y_true, y) + negative_entropy(y)
    torch.testing.assert_close(energy(context, y), expected)
    torch.testing.assert_close(energy(context[2:4], y[2:4]), expected[2:4])


def test_negative_entropy_is_zero_at_vertices_and_minus_n_log2_at_half():
    assert negative_entropy(torch.tensor([[0.0, 1.0]], dtype=D)).item() == 0.0
    half = negative_entropy(torch.full((1, 3), 0.5, dtype=D)).item()
    assert half == pytest.approx(-3 * torch.log(torch.tensor(2.0)).item())


def test_bundle_entropy_solver_uses_entropy_in_the_hinge():
    model = linear_quadratic_model()
    seen = {}

    def spy(energy, context):
        seen["entropy_in_wrapper"] = energy.entropy
        return closed_form_solver(energy, context).clamp(0.25, 0.75)

    with pytest.raises(ValueError, match="solver must be"):
        max_margin(model, None, Y_TRUE, solver=3)
    losses = max_margin(model, None, Y_TRUE, solver=spy, entropy=True, reduction="none")
    y_star = closed_form_solver(LossAugmentedEnergy(model), LossAugmentedEnergy(model).context(
        None, Y_TRUE)).clamp(0.25, 0.75)
    expected = (model(Y_TRUE) - (model(y_star) + negative_entropy(y_star)
                                 - hamming_margin(Y_TRUE, y_star))).relu()
    assert seen["entropy_in_wrapper"] is True
    torch.testing.assert_close(losses, expected)


def test_max_margin_rejects_wrong_label_shape():
    with pytest.raises(ValueError, match=r"expected y_true of shape \(batch, 2\)"):
        max_margin(linear_quadratic_model(), None, torch.zeros(2, 3, dtype=D),
                   solver=closed_form_solver)


# --- the entropy lives on the solver's box (issue 14, defects 4 and 5) ---------------------------

def small_picnn(seed: int = 0, activation: str = "relu"
                ) -> tuple[icnn.PICNN, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = icnn.PICNN(3, 4, hidden=(6,), activation=activation, dtype=D)
    x = torch.randn(5, 3, dtype=D)
    y_true = (torch.rand(5, 4, dtype=D) > 0.5).to(D)
    return model, x, y_true


def reference_hinge(model, x, y_true, lo, hi, margin=1.0):
    """Independent reference: min_y f − sΔ − H over [lo, hi] by scipy's L-BFGS-B, per example,
    with −H written out in numpy on u = (y − lo)/(hi − lo). Reliable to ~1e-8 on a smooth f (on
    a ReLU f it stalls at kinks, 3e-5 above the certified minimum)."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    import numpy as np

    lo = np.broadcast_to(np.asarray(lo, dtype=float), y_true.shape[1:])
    hi = np.broadcast_to(np.asarray(hi, dtype=float), y_true.shape[1:])
    width = hi - lo

    def neg_entropy(y):
        u = np.clip((y - lo) / width, 1e-300, 1 - 1e-16)
        return float(np.sum(u * np.log(u) + (1 - u) * np.log1p(-u)))

    def neg_entropy_grad(y):
        u = np.clip((y - lo) / width, 1e-300, 1 - 1e-16)
        return (np.log(u) - np.log1p(-u)) / width

    losses = []
    for i in range(y_true.shape[0]):
        xi, ti = x[i:i + 1], y_true[i:i + 1]

        def objective(y, xi=xi, ti=ti):
            yt = torch.tensor(y[None], dtype=D, requires_grad=True)
            value = model(xi, yt) - margin * hamming_margin(ti, yt)
            (grad,) = torch.autograd.grad(value.sum(), yt)
            return value.item() + neg_entropy(y), grad[0].numpy() + neg_entropy_grad(y)

        # start inside the box; the barrier keeps L-BFGS-B off the faces
        start = lo + 0.5 * width
        eps = 1e-12 * width
        res = scipy_optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                                      bounds=list(zip(lo + eps, hi - eps, strict=True)),
                                      options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 5000})
        with torch.no_grad():
            truth = model(xi, ti).item() + neg_entropy(ti[0].numpy())
        losses.append(max(truth - res.fun, 0.0))
    return torch.tensor(losses, dtype=D)


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-1.0, 2.0),
                                    (torch.tensor([-1.0, 0.0, -0.5, 0.0], dtype=D),
                                     torch.tensor([2.0, 1.0, 1.5, 3.0], dtype=D))],
                         ids=["unit", "minus1_2", "per_coordinate"])
@pytest.mark.parametrize("solver", ["bundle_entropy", "lbfgs", "auto"])
def test_entropy_hinge_is_finite_and_equals_an_independent_tight_solve_on_any_box(solver, lo, hi):
    model, x, y_true = small_picnn(activation="softplus")
    options = {"bundle_entropy": {"tol": 1e-10, "max_iter": 200},
               "lbfgs": {"tol": 1e-10, "max_iter": 3000}, "auto": None}[solver]
    losses = max_margin(model, x, y_true, solver=solver, entropy=True, domain=icnn.Box(lo, hi),
                        solver_options=options, reduction="none")
    assert torch.isfinite(losses).all()
    torch.testing.assert_close(losses.detach(), reference_hinge(model, x, y_true, lo, hi),
                               rtol=0, atol=1e-6)


def test_auto_with_entropy_matches_a_tight_lbfgs_solve_and_is_never_nan():
    # issue 14, defect 5: auto sent the barrier to the bundle method (NaN gaps, 5.14 vs 5.49)
    for seed in range(3):
        model, x, y_true = small_picnn(seed)
        auto = max_margin(model, x, y_true, solver="auto", entropy=True, reduction="none")
        tight = max_margin(model, x, y_true, solver="lbfgs", entropy=True, reduction="none",
                           solver_options={"tol": 1e-10, "max_iter": 5000})
        assert not torch.isnan(auto).any()
        torch.testing.assert_close(auto, tight, rtol=0, atol=1e-4)


def test_bundle_entropy_refuses_a_hinge_without_the_entropy_it_minimises():
    model, x, y_true = small_picnn()
    with pytest.raises(ValueError, match=r"bundle_entropy.*minimises f − Δ − H.*entropy=False"):
        max_margin(model, x, y_true, solver="bundle_entropy", entropy=False)


@pytest.mark.parametrize("solver", ["bundle_entropy", "lbfgs", "auto"])
def test_entropy_on_an_unbounded_domain_is_refused(solver):
    model, x, y_true = small_picnn()
    with pytest.raises(ValueError, match="entropy needs a bounded"):
        max_margin(model, x, y_true, solver=solver, entropy=True, domain=icnn.Box(0.0, math.inf))
    with pytest.raises(ValueError, match="entropy needs a bounded"):
        LossAugmentedEnergy(model, entropy=True, domain=icnn.Box(-math.inf, 1.0))


def test_entropy_refuses_labels_outside_the_box():
    model, x, y_true = small_picnn()
    with pytest.raises(ValueError, match=r"y_true inside the domain.*outside"):
        max_margin(model, x, y_true + 2.0, solver="lbfgs", entropy=True)


def test_entropy_refuses_fixed_coordinates_in_solver_options():
    model, x, y_true = small_picnn()
    fixed = (torch.zeros_like(y_true, dtype=torch.bool), y_true)
    with pytest.raises(ValueError, match="fixed"):
        max_margin(model, x, y_true, solver="bundle_entropy", solver_options={"fixed": fixed})


def test_loss_augmented_energy_adds_the_entropy_of_the_rescaled_box():
    model, x, y_true = small_picnn()
    lo, hi = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=D), torch.tensor([2.0, 1.0, 0.5, 4.0],
                                                                      dtype=D)
    energy = LossAugmentedEnergy(model, margin=1.0, entropy=True, domain=icnn.Box(lo, hi))
    y = lo + (hi - lo) * torch.rand(5, 4, dtype=D)
    u = ((y - lo) / torch.where(hi > lo, hi - lo, 1.0))[:, [0, 1, 3]]  # coordinate 2 is degenerate
    by_hand = (u * u.log() + (1 - u) * (1 - u).log()).sum(1)
    expected = model(x, y) - hamming_margin(y_true, y) + by_hand
    torch.testing.assert_close(energy(energy.context(x, y_true), y), expected)


def test_loss_augmented_energy_refuses_bounds_that_depend_on_the_example():
    model, _, _ = small_picnn()
    with pytest.raises(ValueError, match="per-example shape"):
        LossAugmentedEnergy(model, entropy=True, domain=icnn.Box(torch.zeros(5, 4), 1.0))

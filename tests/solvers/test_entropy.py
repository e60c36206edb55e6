"""The one binary negative entropy: values against the closed form, the faces, the box version."""

import math

import numpy as np
import pytest
import torch

import icnn
from icnn.solvers import argmin, bundle_entropy
from icnn.solvers.entropy import box_negative_entropy, entropy_terms, negative_entropy

D = torch.float64


def closed_form(u: np.ndarray) -> np.ndarray:
    """Σ u log u + (1 − u) log(1 − u) per row, in numpy (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(u > 0, u * np.log(np.where(u > 0, u, 1)), 0.0) + np.where(
            u < 1, (1 - u) * np.log(np.where(u < 1, 1 - u, 1)), 0.0)
    return terms.reshape(u.shape[0], -1).sum(1)


def test_negative_entropy_matches_the_closed_form_on_the_unit_box():
    u = torch.rand(50, 2, 3, dtype=D, generator=torch.Generator().manual_seed(0))
    u[0] = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]], dtype=D)
    expected = closed_form(u.numpy())
    np.testing.assert_allclose(negative_entropy(u).numpy(), expected, rtol=1e-13, atol=1e-15)
    assert negative_entropy(torch.full((1, 3), 0.5, dtype=D)).item() == pytest.approx(
        -3 * math.log(2), rel=1e-15)
    assert negative_entropy(torch.tensor([[0.0, 1.0]], dtype=D)).item() == 0.0


def test_free_mask_leaves_coordinates_out():
    u = torch.tensor([[0.2, 0.5, 0.9]], dtype=D)
    free = torch.tensor([[True, False, True]])
    expected = closed_form(u[:, [0, 2]].numpy())
    np.testing.assert_allclose(negative_entropy(u, free).numpy(), expected, rtol=1e-14)
    np.testing.assert_allclose(negative_entropy(u, free.flatten()[None]).numpy(), expected,
                               rtol=1e-14)
    with pytest.raises(TypeError, match="bool free mask"):
        negative_entropy(u, free.to(D))
    with pytest.raises(ValueError, match=r"expected free of shape \(1, 3\)"):
        negative_entropy(u, torch.ones(1, 2, dtype=torch.bool))


def test_outside_the_unit_box_the_value_is_inf_and_nan_stays_nan():
    u = torch.tensor([[-1e-9, 0.5], [0.5, 1.0 + 1e-9], [math.nan, 0.5]], dtype=D)
    values = negative_entropy(u)
    assert values[0] == math.inf and values[1] == math.inf and math.isnan(values[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_at_the_faces_value_and_gradient_are_finite_and_the_gradient_points_inward(dtype):
    u = torch.tensor([[0.0, 1.0, 0.5]], dtype=dtype, requires_grad=True)
    value = negative_entropy(u)
    (grad,) = torch.autograd.grad(value.sum(), u)
    assert value.item() == pytest.approx(-math.log(2), rel=1e-6)
    assert torch.isfinite(grad).all()
    steep = -math.log(torch.finfo(dtype).eps)  # the slope at u = eps
    assert grad[0, 0].item() == pytest.approx(-steep) and grad[0, 1].item() == pytest.approx(steep)
    assert grad[0, 2].item() == 0.0


def test_gradients_and_hessians_are_exact_inside():
    u = (0.05 + 0.9 * torch.rand(3, 4, dtype=D)).requires_grad_()
    assert torch.autograd.gradcheck(negative_entropy, (u,))
    assert torch.autograd.gradgradcheck(negative_entropy, (u,))
    (grad,) = torch.autograd.grad(entropy_terms(u).sum(), u)
    torch.testing.assert_close(grad, torch.log(u / (1 - u)).detach())


def test_entropy_refuses_integer_input_and_a_missing_batch_dimension():
    with pytest.raises(TypeError, match="floating-point"):
        entropy_terms(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected u of shape \(batch, \*shape\), got \(3,\)"):
        negative_entropy(torch.rand(3))


def test_box_version_is_the_unit_entropy_of_the_rescaled_coordinates():
    lo = torch.tensor([-1.0, 0.0, 2.0, 0.5], dtype=D)
    hi = torch.tensor([2.0, 1.0, 5.0, 0.5], dtype=D)  # the last coordinate is degenerate
    u = torch.rand(7, 4, dtype=D)
    y = lo + (hi - lo) * u
    expected = closed_form(u[:, :3].numpy())
    np.testing.assert_allclose(box_negative_entropy(y, lo, hi).numpy(), expected, rtol=1e-12)
    free = torch.ones(7, 4, dtype=torch.bool)
    free[:, 0] = False  # fixed coordinates are left out too
    np.testing.assert_allclose(box_negative_entropy(y, lo, hi, free).numpy(),
                               closed_form(u[:, 1:3].numpy()), rtol=1e-12)


def test_box_version_is_finite_on_the_faces_and_inf_outside():
    lo, hi = -1.0, 2.0
    y = torch.tensor([[-1.0, 2.0], [-1.0 - 1e-9, 0.5], [0.5, 2.0 + 1e-9]], dtype=D)
    values = box_negative_entropy(y, lo, hi)
    assert values[0] == 0.0 and values[1] == math.inf and values[2] == math.inf
    # a point rebuilt from u in [0, 1] may round just past a face: still inside, still finite
    u = torch.tensor([[1.0, 0.0]], dtype=D)
    y = 0.1 + 0.7 * u
    assert torch.isfinite(box_negative_entropy(y, 0.1, 0.8)).all()


def test_box_version_refuses_unbounded_free_sides_and_bad_shapes():
    y = torch.zeros(2, 3, dtype=D)
    with pytest.raises(ValueError, match="entropy needs a bounded box.*got 6 with an infinite"):
        box_negative_entropy(y, 0.0, math.inf)
    lo = torch.tensor([0.0, -math.inf, 0.0], dtype=D)
    hi = torch.tensor([1.0, math.inf, 0.0], dtype=D)  # degenerate last, unbounded middle
    with pytest.raises(ValueError, match="got 2 with an infinite"):
        box_negative_entropy(y, lo, hi)
    free = torch.tensor([[True, False, True]] * 2)
    assert torch.isfinite(box_negative_entropy(y, lo, hi, free)).all()  # the middle is fixed
    with pytest.raises(ValueError, match=r"broadcast to y's shape \(2, 3\)"):
        box_negative_entropy(y, torch.zeros(2, dtype=D), 1.0)


def test_bundle_entropy_minimises_f_minus_the_box_entropy_this_module_computes():
    torch.manual_seed(1)
    model = icnn.PICNN(2, 3, hidden=(5,), dtype=D)
    x = torch.randn(4, 2, dtype=D)
    lo, hi = torch.tensor([-1.0, 0.0, 0.5], dtype=D), torch.tensor([2.0, 1.0, 4.0], dtype=D)
    result = argmin(model, x, domain=icnn.Box(lo, hi), method="bundle_entropy", tol=1e-12,
                    max_iter=100)
    expected = model(x, result.y) + box_negative_entropy(result.y, lo, hi)
    torch.testing.assert_close(result.objective, expected.detach(), rtol=0, atol=1e-12)
    assert bundle_entropy.negative_entropy is negative_entropy  # one implementation


def test_the_rl_form_of_the_interior_agrees_with_entropy_terms_to_a_few_ulps():
    from icnn.solvers.entropy import entropy_terms, interior_entropy_terms

    for dtype in (torch.float32, torch.float64):
        u = torch.linspace(1e-6, 1 - 1e-6, 10001, dtype=dtype)
        a, b = interior_entropy_terms(u), entropy_terms(u)
        assert float((a - b).abs().max()) <= 8 * torch.finfo(dtype).eps * float(b.abs().max())

"""gaussian_map_init: grad f starts as the identity or the Gaussian OT map."""

import pytest
import torch

import icnn
from icnn.potentials import gradient_map
from icnn.potentials.gaussian_init import gaussian_map, gaussian_map_init


def test_gaussian_map_is_the_closed_form_between_gaussians():
    # independent check: A is symmetric positive definite and pushes S_s onto S_t (A S_s A = S_t)
    torch.manual_seed(1)
    root_s, root_t = torch.randn(3, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    source = torch.randn(4000, 3, dtype=torch.float64) @ root_s.T + 1.0
    target = torch.randn(5000, 3, dtype=torch.float64) @ root_t.T - 2.0
    matrix, offset = gaussian_map(source, target)
    cov_s, cov_t = torch.cov(source.T), torch.cov(target.T)
    torch.testing.assert_close(matrix @ cov_s @ matrix, cov_t, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(matrix, matrix.T)
    assert float(torch.linalg.eigvalsh(matrix).min()) > 0
    torch.testing.assert_close(source.mean(0) @ matrix.T + offset, target.mean(0))


@pytest.mark.parametrize("cls", ["FICNN", "PICNN"])
def test_initialised_gradient_map_is_the_gaussian_map(cls):
    dim = 4
    source = torch.randn(500, dim) * 2 + 1
    target = torch.randn(600, dim) @ torch.randn(dim, dim).T - 1
    model = icnn.FICNN(dim, hidden=(16, 16), quadratic_rank=dim - 1) if cls == "FICNN" \
        else icnn.PICNN(2, dim, hidden=(16, 16), quadratic_rank=dim - 1)
    init = gaussian_map_init(model, source, target)
    x = None if cls == "FICNN" else torch.randn(500, 2)
    mapped = gradient_map(model)(source, x).detach()
    expected = source @ init.matrix.T + init.offset
    error = (mapped - expected).norm(dim=1) / expected.norm(dim=1).clamp_min(1)
    assert float(error.max()) < 5e-3 and init.error < 5e-3
    assert model.energy_traits().convex


def test_identity_init_and_a_low_rank_model_reports_its_error():
    model = icnn.FICNN(3, hidden=(8,), quadratic_rank=1, strong_convexity=0.2)
    init = gaussian_map_init(model)
    y = torch.randn(50, 3)
    assert float((gradient_map(model)(y).detach() - y).abs().max()) < 5e-3
    assert init.error < 5e-3
    low = icnn.FICNN(4, hidden=(8,), quadratic_rank=1)
    scales = torch.tensor([1.0, 2.0, 3.0, 4.0])
    report = gaussian_map_init(low, torch.randn(400, 4), torch.randn(400, 4) * scales)
    assert report.error > 0.1  # rank 1 + diagonal cannot hold three distinct eigenvalues


def test_gaussian_init_refuses_bad_input():
    with pytest.raises(ValueError, match="quadratic_rank > 0"):
        gaussian_map_init(icnn.FICNN(3, hidden=(4,)))
    model = icnn.FICNN(3, hidden=(4,), quadratic_rank=2)
    with pytest.raises(ValueError, match="more source samples than dimensions"):
        gaussian_map_init(model, torch.randn(3, 3), torch.randn(10, 3))
    with pytest.raises(ValueError, match="dimension 3"):
        gaussian_map_init(model, torch.randn(10, 2), torch.randn(10, 2))
    with pytest.raises(ValueError, match="finite"):
        gaussian_map_init(model, torch.full((10, 3), float("nan")), torch.randn(10, 3))
    with pytest.raises(ValueError, match="or neither"):
        gaussian_map_init(model, torch.randn(10, 3))
    with pytest.raises(TypeError, match="FICNN or icnn.PICNN"):
        gaussian_map_init(torch.nn.Linear(3, 1))

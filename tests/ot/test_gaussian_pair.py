"""Closed-form Gaussian pairs: the true map is the linear Brenier map."""

import pytest
import torch

from icnn.ot.gaussian_pair import GaussianPair


@pytest.mark.parametrize("dim", [1, 3, 16])
def test_true_map_pushes_p_to_q_and_is_a_symmetric_positive_gradient(dim):
    pair = GaussianPair.from_seed(dim, 7)
    a = pair.matrix
    torch.testing.assert_close(a, a.T)
    assert float(torch.linalg.eigvalsh(a)[0]) > 0
    # A Σ_p A = Σ_q: the linear map pushes N(m_p, Σ_p) to N(m_q, Σ_q)
    torch.testing.assert_close(a @ pair.cov_p @ a, pair.cov_q, atol=1e-10, rtol=1e-10)
    x = torch.randn(5, dim, dtype=torch.float64)
    torch.testing.assert_close(pair.transport(x), pair.mean_q + (x - pair.mean_p) @ a)
    torch.testing.assert_close(pair.inverse(pair.transport(x)), x)


def test_cost_is_half_the_expected_squared_displacement():
    pair = GaussianPair.from_seed(4, 1)
    x, _ = pair.sample(200_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    monte_carlo = 0.5 * float((pair.transport(x) - x).square().sum(dim=1).mean())
    assert abs(monte_carlo - pair.cost()) < 0.02 * pair.cost()


def test_samples_have_the_pairs_moments_and_the_seed_fixes_the_pair():
    pair = GaussianPair.from_seed(3, 5)
    x, y = pair.sample(100_000, torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(torch.cov(y.T), pair.cov_q, atol=0.05, rtol=0.05)
    torch.testing.assert_close(x.mean(0), pair.mean_p, atol=0.03, rtol=0)
    assert torch.equal(GaussianPair.from_seed(3, 5).matrix, pair.matrix)
    assert not torch.equal(GaussianPair.from_seed(3, 6).matrix, pair.matrix)


def test_large_dimension_and_bad_dimension():
    assert GaussianPair.from_seed(256, 0).dim == 256
    with pytest.raises(ValueError, match="expected a Gaussian pair dimension D in 1..256"):
        GaussianPair.from_seed(257, 0)

"""The linear Gaussian map and the POT discrete plan."""

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from icnn.ot.baselines import DiscreteOTMap, LinearGaussianMap
from icnn.ot.gaussian_pair import GaussianPair
from icnn.ot.metrics import transport_metrics


def test_linear_map_recovers_a_gaussian_pairs_map():
    pair = GaussianPair.from_seed(4, 3)
    x, y = pair.sample(50_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    linear = LinearGaussianMap(x, y)
    scores = transport_metrics(linear, linear.inverse, pair.truth(dtype=torch.float64))
    assert scores["l2_uvp_forward"] < 0.2 and scores["l2_uvp_inverse"] < 0.2
    torch.testing.assert_close(linear.matrix, pair.matrix, atol=0.05, rtol=0.05)


def test_discrete_plan_is_the_optimal_assignment():
    pytest.importorskip("ot")
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 2, generator=gen, dtype=torch.float64), torch.randn(12, 2, generator=gen,
                                                                                  dtype=torch.float64)
    _, best = linear_sum_assignment(torch.cdist(x, y).square().numpy())  # independent solver
    plan = DiscreteOTMap(x, y)
    torch.testing.assert_close(plan(x), y[list(best)])  # barycentric projection of a permutation
    torch.testing.assert_close(plan.inverse(y[list(best)]), x)
    # a new point takes the image of its nearest training point
    torch.testing.assert_close(plan(x[2:3] + 1e-3), y[[best[2]]])


def test_singular_source_is_refused():
    x = torch.zeros(20, 2, dtype=torch.float64)
    x[:, 0] = torch.randn(20, dtype=torch.float64)
    with pytest.raises(ValueError, match="full rank"):
        LinearGaussianMap(x, torch.randn(20, 2, dtype=torch.float64))

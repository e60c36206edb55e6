"""L2-UVP, cos and the W2² estimate on maps whose scores are known."""

import pytest
import torch

from icnn.ot.gaussian_pair import GaussianPair
from icnn.ot.metrics import GroundTruth, cos_similarity, l2_uvp, transport_metrics


@pytest.fixture
def truth():
    return GaussianPair.from_seed(3, 0).truth(n=2048, dtype=torch.float64)


def test_true_map_scores_zero_and_cos_one(truth):
    pair = GaussianPair.from_seed(3, 0)
    scores = transport_metrics(pair.transport, pair.inverse, truth)
    assert scores["l2_uvp_forward"] < 1e-20 and scores["l2_uvp_inverse"] < 1e-20
    assert scores["cos_forward"] == pytest.approx(1.0, abs=1e-12)
    assert scores["w2_squared"] == pytest.approx(2 * truth.cost, rel=1e-12)


def test_identity_scores_its_displacement_over_the_variance(truth):
    expected = 100 * 2 * truth.cost / truth.target_var  # E‖x − T*(x)‖² / Var(Q)
    assert l2_uvp(truth.source, truth.mapped, truth.target_var) == pytest.approx(expected, rel=1e-12)


def test_constant_map_at_the_target_mean_scores_about_100():
    pair = GaussianPair.from_seed(5, 2)
    truth = pair.truth(n=50_000, dtype=torch.float64)
    constant = pair.mean_q.expand_as(truth.source)
    assert l2_uvp(constant, truth.mapped, truth.target_var) == pytest.approx(100, rel=0.03)


def test_half_way_map_has_cos_one_and_a_quarter_of_the_identity_uvp(truth):
    half = truth.source + 0.5 * (truth.mapped - truth.source)
    assert cos_similarity(truth.source, half, truth.mapped, truth.cost) == pytest.approx(1.0, abs=1e-12)
    full = l2_uvp(truth.source, truth.mapped, truth.target_var)
    assert l2_uvp(half, truth.mapped, truth.target_var) == pytest.approx(full / 4, rel=1e-12)


def test_bad_inputs_are_refused(truth):
    with pytest.raises(ValueError, match="expected predicted points of shape"):
        l2_uvp(truth.source[:, :2], truth.mapped, 1.0)
    with pytest.raises(ValueError, match="positive variance"):
        l2_uvp(truth.source, truth.mapped, 0.0)
    with pytest.raises(ValueError, match="identity"):
        cos_similarity(truth.source, truth.source, truth.mapped, truth.cost)
    with pytest.raises(ValueError, match="finite images"):
        transport_metrics(lambda p: p * float("nan"), None, truth)
    with pytest.raises(ValueError, match="finite positive cost"):
        GroundTruth(truth.source, truth.mapped, 1.0, 1.0, 0.0)

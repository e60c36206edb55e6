"""The validation verdict: Student-t critical values and the comparison with every baseline."""

from __future__ import annotations

import math

import pytest
import torch

from icnn.tasks.completion.folds import clustered_mean
from icnn.tasks.completion.verdict import student_t_cdf, t_critical, validation_verdict


def _normal_tail(z: float) -> float:
    return 0.5 * (1.0 - math.erf(z / math.sqrt(2.0)))


@pytest.mark.parametrize("z", [1.0, 2.0, 3.0])
def test_t_critical_matches_the_closed_forms_and_tends_to_z(z):
    p = 1.0 - _normal_tail(z)
    # df = 1 (Cauchy): tan(pi (p - 1/2)); df = 2: (2p - 1) / sqrt(2 p (1 - p))
    assert t_critical(z, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert t_critical(z, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
    assert z < t_critical(z, 200) < z * 1.02
    assert student_t_cdf(t_critical(z, 7), 7) == pytest.approx(p, abs=1e-12)


def test_t_critical_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 3, 6, 9, 30):
        assert t_critical(2.0, df) == pytest.approx(stats.t.ppf(stats.norm.cdf(2.0), df), rel=1e-9)
        assert student_t_cdf(-1.7, df) == pytest.approx(stats.t.cdf(-1.7, df), abs=1e-12)


def test_bad_degrees_of_freedom_are_refused():
    with pytest.raises(ValueError, match="expected degrees of freedom that are an int >= 1, got 0"):
        t_critical(2.0, 0)


def test_a_noisy_gain_of_two_people_does_not_beat_the_baseline_and_the_baseline_ships():
    # two people of two images: gains 6 and 2 per person -> mean 4, s.e. 2 (2 s.e. > z = 1.5,
    # below t_1 at that level, 4.5): with one degree of freedom the baseline is selected
    baseline = torch.tensor([10.0, 10.0, 10.0, 10.0])
    model = torch.tensor([4.0, 4.0, 8.0, 8.0])
    verdict = validation_verdict("energy", {"energy": model, "ridge": baseline}, 4, 2, 1.5)
    comparison = verdict["comparisons"]["ridge"]
    assert comparison["val_gain"] == pytest.approx(4.0) and comparison["stderr"] == pytest.approx(2.0)
    assert comparison["critical"] == pytest.approx(t_critical(1.5, 1)) and not comparison["beaten"]
    assert verdict["best_on_validation"] == "energy" and verdict["selected"] == "ridge"
    assert "ridge" in verdict["verdict"]


def test_the_model_ships_only_when_it_beats_every_baseline():
    model = torch.tensor([1.0, 1.1, 1.0, 1.2, 0.9, 1.0, 1.1, 1.0])
    weak = model + torch.tensor([50.0, 52.0, 49.0, 51.0, 50.0, 48.0, 53.0, 50.0])
    close = model + torch.tensor([0.5, -0.4, 0.3, -0.2, 0.1, 0.2, -0.3, 0.1])
    errors = {"energy": model, "mean_image": weak}
    assert validation_verdict("energy", errors, 0, 1, 2.0)["selected"] == "energy"
    verdict = validation_verdict("energy", {**errors, "blend": close}, 0, 1, 2.0)
    assert verdict["comparisons"]["mean_image"]["beaten"]
    assert not verdict["comparisons"]["blend"]["beaten"]
    assert verdict["selected"] == "blend" and not verdict["beats_every_baseline"]
    # one person: no standard error, nobody is beaten
    single = validation_verdict("energy", errors, 0, 10, 2.0)
    assert single["comparisons"]["mean_image"]["stderr"] is None
    assert single["selected"] == "mean_image"


def test_the_clustered_gain_and_its_standard_error_are_of_the_same_person_means():
    # person 0: three images of gain 1; person 1: one image of gain 4 (a smaller last group)
    gain = torch.tensor([1.0, 1.0, 1.0, 4.0], dtype=torch.float64)
    mean, stderr, per_person = clustered_mean(gain, 0, 3)
    assert torch.equal(per_person, torch.tensor([1.0, 4.0], dtype=torch.float64))
    assert mean == pytest.approx(2.5)                     # not the image mean 1.75
    assert stderr == pytest.approx(3.0 / 2 ** 0.5 / 2 ** 0.5)
    # the verdict's t is that mean over that standard error
    errors = {"energy": torch.zeros(4, dtype=torch.float64), "ridge": gain}
    comparison = validation_verdict("energy", errors, 0, 3, 2.0)["comparisons"]["ridge"]
    assert comparison["val_gain"] == pytest.approx(2.5)
    assert comparison["t"] == pytest.approx(2.5 / 1.5)
    # equal groups: the mean of the person means is the mean over images
    equal = torch.tensor([1.0, 3.0, 2.0, 6.0], dtype=torch.float64)
    assert clustered_mean(equal, 0, 2)[0] == pytest.approx(float(equal.mean()))

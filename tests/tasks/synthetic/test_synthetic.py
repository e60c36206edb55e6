"""Synthetic 2-D classification: datasets as the authors built them, models, one tiny fit."""

import numpy as np
import pytest
import torch

from icnn.tasks.synthetic.data import make_dataset
from icnn.tasks.synthetic.figure import FigureConfig, fit_one
from icnn.tasks.synthetic.models import EnergyClassifier, JointEnergy


@pytest.mark.parametrize("name", ["moons", "circles", "linear"])
def test_datasets_are_standardised_balanced_binary(name):
    points, labels = make_dataset(name)
    assert points.shape == (100, 2) and set(np.unique(labels)) == {0.0, 1.0}
    np.testing.assert_allclose(points.mean(axis=0), 0, atol=1e-12)
    assert 40 <= labels.sum() <= 60


def test_joint_energy_is_convex_along_random_segments_in_x_and_y():
    torch.manual_seed(0)
    energy = JointEnergy(2, 1, hidden=(16, 16))
    a, b = torch.randn(64, 3), torch.randn(64, 3)
    t = 0.3
    mid = energy(*(t * a + (1 - t) * b).split([2, 1], dim=1))
    chord = t * energy(*a.split([2, 1], dim=1)) + (1 - t) * energy(*b.split([2, 1], dim=1))
    assert bool((mid <= chord + 1e-5).all())


def test_energy_classifier_is_differentiable_through_inference():
    torch.manual_seed(0)
    model = EnergyClassifier(JointEnergy(2, 1, hidden=(8,)), steps=5, lr=0.1)
    model(torch.randn(4, 2)).sum().backward()
    assert model.energy.ficnn.passthrough.weight.grad.abs().sum() > 0


def test_fit_one_feedforward_learns_linear_data():
    config = FigureConfig(hidden=(16, 16), epochs=60, grid=5)
    result = fit_one("linear", "ff", config)
    assert result["train_accuracy"] >= 0.9
    assert result["surface"].shape == (5, 5)

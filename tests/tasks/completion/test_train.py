"""Training one variant: masked completion keeps observed pixels; the config is checked."""

from __future__ import annotations

import math

import pytest
import torch

from icnn.tasks.completion.data import make_completion_data, mirrored
from icnn.tasks.completion.train import CompletionConfig, paper_mse, train_completion

TINY = {"channels": (3, 3), "kernel_sizes": (3, 3), "strides": (2, 1), "dense": (4,),
        "epochs": 2, "batch_size": 6, "inner_steps": 3, "energy_scale": 10.0,
        "progress": False}


@pytest.mark.parametrize("variant", ["bundle_entropy", "gd"])
def test_masked_completion_returns_observed_pixels_unchanged(variant):
    torch.manual_seed(0)
    data = make_completion_data(torch.rand(12, 8, 6), 8, "random:0.4", seed=1)
    result = train_completion(data, CompletionConfig(variant=variant, **TINY))
    observed = data.test.observed
    assert torch.equal(result.test_completion[observed], data.test.y[observed])
    assert math.isfinite(result.test_mse) and math.isfinite(result.train_mse)
    assert result.test_mse == pytest.approx(paper_mse(result.test_completion, data.test))


def test_paper_mse_is_in_0_255_units_over_predicted_pixels_only():
    data = make_completion_data(torch.zeros(4, 2, 4), 2, "block:0,0,1,4")
    prediction = data.test.y + 0.1  # wrong everywhere, but only row 0 is predicted
    assert paper_mse(prediction, data.test) == pytest.approx(25.5**2, rel=1e-5)


def test_mirroring_the_left_half_task_swaps_the_halves():
    images = torch.rand(3, 4, 6)
    split = make_completion_data(images, 2).train
    flipped = mirrored(split)
    torch.testing.assert_close(flipped.to_images(flipped.y), images[:2].flip(-1))


@pytest.mark.parametrize("kwargs, message", [
    ({"variant": "exact"}, "variant"),
    ({"inner_steps": 0}, "steps"),
    ({"momentum": 1.0}, "momentum"),
    ({"max_shift": -1}, "max_shift"),
])
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompletionConfig(**kwargs)

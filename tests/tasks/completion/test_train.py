"""Training one variant: it beats the untrained model and the mean image; masked completion keeps
observed pixels; the config is checked."""

from __future__ import annotations

import pytest
import torch

from icnn.learn import seed_everything
from icnn.tasks.completion.data import make_completion_data, mirrored, subset
from icnn.tasks.completion.train import (
    CompletionConfig,
    build_model,
    mean_start,
    paper_mse,
    predict,
    train_completion,
)

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
    assert result.test_mse == pytest.approx(paper_mse(result.test_completion, data.test))


def brightness_faces(n: int = 24) -> torch.Tensor:
    """``(n, 8, 8)``: one smooth pattern times a per-image brightness, so the left half tells
    the right half's brightness; the mean image cannot."""
    window = torch.hann_window(10, periodic=False)[1:-1]
    pattern = 0.6 + 0.4 * torch.outer(window, window)
    brightness = torch.rand(n, 1, 1, generator=torch.Generator().manual_seed(0)) * 0.85 + 0.15
    return brightness * pattern


@pytest.mark.parametrize("variant, epochs, lr", [("bundle_entropy", 10, 2e-2), ("gd", 20, 2e-2)])
def test_training_beats_the_untrained_model_and_the_mean_image(variant, epochs, lr):
    """Left-half completion of 16 training faces, a few seconds: the trained model's train MSE
    falls far below the untrained model's (same seed, same inference), and its test MSE below
    the mean-image baseline (``icnn completion``'s ``baselines.mean_image``)."""
    data = make_completion_data(brightness_faces(), 16, "left-half")
    config = CompletionConfig(variant=variant, channels=(4, 4), kernel_sizes=(3, 3),
                              strides=(2, 1), dense=(8,), epochs=epochs, batch_size=8, lr=lr,
                              inner_steps=5, energy_scale=10.0, eval_every=100, progress=False)
    seed_everything(config.seed)  # the weights train_completion starts from
    untrained = build_model(data, config)
    result = train_completion(data, config)

    initial_train_mse = paper_mse(predict(untrained, data.train, result.y0, config.inference),
                                  data.train)
    mean_image = mean_start(data.train).expand_as(data.test.y)
    mean_image_test_mse = paper_mse(mean_image, data.test)
    assert result.train_mse < 0.25 * initial_train_mse, (result.train_mse, initial_train_mse)
    assert result.test_mse < 0.75 * mean_image_test_mse, (result.test_mse, mean_image_test_mse)
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


def test_keep_epoch_keeps_that_epoch_and_returns_every_epochs_validation_errors():
    data = make_completion_data(brightness_faces(), 16, "left-half")
    data.validation, data.train = subset(data.train, torch.arange(12, 16)), subset(
        data.train, torch.arange(12))
    config = CompletionConfig(variant="gd", **{**TINY, "epochs": 3})
    kept = train_completion(data, config, keep_epoch=2)
    assert kept.selected_epoch == 2 and kept.val_errors.shape == (3, 4)
    # the kept weights are those after epoch 2: their validation MSE is that epoch's
    assert kept.val_mse == pytest.approx(float(kept.val_errors[1].mean()), rel=1e-5)
    assert [r["val_mse"] for r in kept.history if "val_mse" in r] == pytest.approx(
        kept.val_errors.mean(1).tolist(), rel=1e-5)
    for bad in (0, 4, True):
        with pytest.raises(ValueError, match=r"expected an epoch to keep in \[1, 3\]"):
            train_completion(data, config, keep_epoch=bad)

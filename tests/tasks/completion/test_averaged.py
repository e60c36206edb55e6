"""The averaged recipe: the bundle-entropy ICNN's completion blended with a baseline's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icnn.checkpoint import load_metadata
from icnn.cli import main
from icnn.tasks.completion.baselines import load_anchor, predict_anchor
from icnn.tasks.completion.blend import BLEND_WEIGHTS, blend, blend_errors, unravel
from icnn.tasks.completion.data import make_completion_data, per_example_mse
from icnn.tasks.completion.energy import load_completion_energy
from icnn.tasks.completion.train import (
    CompletionConfig,
    mean_start,
    paper_mse,
    predict,
    train_completion,
)

TINY_NET = ["--channels", "4,4", "--kernel-sizes", "3,3", "--strides", "2,1", "--dense", "8",
            "--no-scale-geometry"]


def _data(n=12, seed=0):
    images = torch.rand(n + 4, 8, 8, generator=torch.Generator().manual_seed(seed))
    return make_completion_data(images, n)


def test_the_blend_is_the_weighted_mean_and_its_ends_are_the_two_predictors():
    split = _data().train
    completion, anchor = torch.rand(2, *split.y.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(blend(completion, anchor, 1.0), completion)
    assert torch.equal(blend(completion, anchor, 0.0), anchor)
    assert torch.allclose(blend(completion, anchor, 0.25), 0.25 * completion + 0.75 * anchor)
    errors = blend_errors(completion, anchor, split)
    assert errors.shape == (len(BLEND_WEIGHTS), len(split))
    assert torch.equal(errors[0], per_example_mse(anchor, split))
    assert torch.equal(errors[-1], per_example_mse(completion, split))
    # the squared error is convex in the weight: the mean at 0.5 is at most the ends' mean
    assert bool((errors[2] <= (errors[0] + errors[-1]) / 2 + 1e-6).all())


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), True])
def test_a_weight_outside_the_unit_interval_is_refused(weight):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="expected a blend weight in \\[0, 1\\]"):
        blend(x, x, weight)


def test_predictions_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match=r"one shape, got \(2, 3\) and \(2, 4\)"):
        blend(torch.zeros(2, 3), torch.zeros(2, 4), 0.5)


def test_the_flat_candidate_index_unravels_to_epoch_and_weight():
    assert unravel(0) == (1, BLEND_WEIGHTS[0])
    assert unravel(len(BLEND_WEIGHTS) - 1) == (1, BLEND_WEIGHTS[-1])
    assert unravel(len(BLEND_WEIGHTS) + 2) == (2, BLEND_WEIGHTS[2])
    assert unravel(5, (0.0, 1.0)) == (3, 1.0)


def test_a_validation_score_gives_every_epochs_candidate_errors():
    data = _data()
    held = data.train
    config = CompletionConfig(variant="averaged", channels=(4, 4), kernel_sizes=(3, 3),
                              strides=(2, 1), dense=(8,), epochs=2, batch_size=6,
                              progress=False, inner_steps=2)
    assert config.inference.method == "bundle_entropy"
    anchor = torch.full_like(held.y, 0.5)
    from icnn.tasks.completion.data import CompletionData

    result = train_completion(CompletionData(data.train, data.test, data.mask, held), config,
                              keep_epoch=2,
                              validation_score=lambda c: blend_errors(c, anchor, held))
    assert result.val_errors.shape == (2, len(BLEND_WEIGHTS), len(held))
    # the weight-0 candidate is the anchor at every epoch; weight 1 is the ICNN kept at epoch 2
    assert torch.equal(result.val_errors[:, 0], per_example_mse(anchor, held).expand(2, -1))
    completion = predict(result.model, held, result.y0, config.inference)
    assert torch.allclose(result.val_errors[1, -1], per_example_mse(completion, held))
    with pytest.raises(ValueError, match="expected keep_epoch with a validation_score"):
        train_completion(CompletionData(data.train, data.test, data.mask, held), config,
                         validation_score=lambda c: blend_errors(c, anchor, held))


def _run(faces, out, *flags):
    code = main(["completion", "--images", str(faces), "--train", "16", "--out", str(out),
                 "--batch-size", "8", "--lr", "1e-2", "--show", "2", "--no-progress",
                 "--method", "averaged", "--inner-steps", "3", *TINY_NET, *flags])
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


def test_against_an_exact_baseline_the_weight_zero_candidate_is_the_baseline_and_it_ships(
        brightness_faces, tmp_path):
    metrics = _run(brightness_faces, tmp_path / "run", "--epochs", "2", "--baselines", "ridge",
                   "--anchor", "ridge", "--verdict-folds", "4")
    record = metrics["methods"]["averaged"]
    cross = record["cross_fit"]
    assert cross["blend_weights"] == list(BLEND_WEIGHTS)
    assert len(cross["curve_per_weight"]) == 2 and len(cross["fold_blend_weights"]) == 4
    # weight 0 is ridge fit on the fold's other people: ridge's own cross-fit errors
    for epoch in cross["curve_per_weight"]:
        assert epoch[0] == pytest.approx(record["validation_mse"]["ridge"], rel=1e-5, abs=1e-6)
    assert record["fallback"] and record["shipped"] == "ridge"
    assert metrics["test_mse"]["averaged"] == metrics["baselines"]["ridge"]
    assert (tmp_path / "run" / "averaged" / "shipped.safetensors").exists()


def test_an_averaged_icnn_that_beats_a_bad_baseline_ships_and_its_files_reproduce_it(
        brightness_faces, tmp_path):
    # the only baseline is the mean image, which ignores the brightness x tells
    metrics = _run(brightness_faces, tmp_path / "run", "--epochs", "8", "--baselines",
                   "--lr", "3e-2", "--energy-scale", "10", "--verdict-folds", "4")
    record = metrics["methods"]["averaged"]
    cross = record["cross_fit"]
    assert record["anchor"] == "mean_image" and record["blend_weight"] == cross["blend_weight"]
    assert cross["blend_weight"] > 0 and record["selected_epoch"] == cross["epoch"]
    pooled = torch.tensor(cross["curve_per_weight"])
    index = int(pooled.flatten().argmin())
    assert unravel(index) == (cross["epoch"], cross["blend_weight"])
    assert record["comparisons"]["mean_image"]["beaten"]
    assert not record["fallback"] and record["shipped"] == "averaged"
    assert metrics["test_mse"]["averaged"] == record["test_mse"]
    assert record["val_mse"] < record["validation_mse"]["mean_image"]
    # shipped: the ICNN and the baseline fit on every training image, and the weight
    out = tmp_path / "run" / "averaged"
    meta = load_metadata(out / "model.safetensors")
    assert meta["blend_weight"] == cross["blend_weight"] and meta["anchor"] == "mean_image"
    assert meta["test_mse"] == record["icnn_test_mse"]
    assert meta["averaged_test_mse"] == pytest.approx(record["test_mse"])
    energy = load_completion_energy(out / "model.safetensors")
    data = make_completion_data(torch.from_numpy(np.load(brightness_faces)), 16)
    config = CompletionConfig.from_record(record["config"])
    completion = predict(energy, data.test, mean_start(data.train), config.inference)
    anchor = predict_anchor(load_anchor(out / "anchor.safetensors"), data.test)
    assert paper_mse(completion, data.test) == pytest.approx(record["icnn_test_mse"], rel=1e-5)
    assert paper_mse(blend(completion, anchor, meta["blend_weight"]), data.test) == \
        pytest.approx(record["test_mse"], rel=1e-5)


@pytest.mark.parametrize("flags", [["--verdict-folds", "0"], ["--validation", "4"]])
def test_the_averaged_method_without_the_cross_fit_is_a_one_line_error(
        brightness_faces, tmp_path, capsys, flags):
    code = main(["completion", "--images", str(brightness_faces), "--train", "16", "--out",
                 str(tmp_path / "run"), "--epochs", "1", "--no-progress", "--method",
                 "averaged", *TINY_NET, *flags])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "expected the cross-fit for the averaged method" in error and "\n" not in error


def test_the_command_offers_exactly_the_trainable_variants():
    from icnn.tasks.completion.baselines import BASELINES
    from icnn.tasks.completion.command import BASELINE_NAMES, METHOD_NAMES
    from icnn.tasks.completion.train import VARIANTS

    assert METHOD_NAMES == VARIANTS and BASELINE_NAMES == BASELINES


def test_the_ends_of_the_blend_are_exact_even_for_a_diverged_completion():
    anchor = torch.full((2, 3), 0.5)
    completion = torch.tensor([[float("nan"), float("inf"), 0.1], [0.2, 0.3, 0.4]])
    assert torch.equal(blend(completion, anchor, 0.0), anchor)
    assert blend(completion, anchor, 1.0) is completion


def test_a_diverged_candidate_is_never_chosen():
    from icnn.tasks.completion.crossfit import choose_epochs
    from icnn.tasks.completion.folds import group_folds

    curves = torch.tensor([[1.0] * 4, [float("nan")] * 4, [0.5, 0.5, float("nan"), 0.5]])
    choice = choose_epochs(curves, group_folds(4, 2))
    # pooled, epoch 3 has a NaN image: epoch 1; fold 0 chooses on images 2-3 (epoch 3 NaN there),
    # fold 1 on images 0-1, where epoch 3 is best; its NaN image then counts as infinite
    assert choice["epoch"] == 1 and choice["fold_epochs"] == [1, 3]
    assert torch.equal(choice["errors"], torch.tensor([1.0, 1.0, float("inf"), 0.5]))


def test_an_ensemble_of_the_averaged_method_is_a_one_line_error(brightness_faces, tmp_path,
                                                                 capsys):
    code = main(["completion", "--images", str(brightness_faces), "--train", "16", "--out",
                 str(tmp_path / "run"), "--epochs", "1", "--no-progress", "--method",
                 "averaged", "--ensemble", "2", *TINY_NET])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "expected --ensemble 1 with the averaged method" in error and "\n" not in error


def test_a_model_file_without_an_energy_scale_is_refused(tmp_path):
    from icnn.checkpoint import save
    from icnn.nn.conv import ConvPICNN

    model = ConvPICNN((1, 8, 4), (1, 8, 4), channels=(4,), kernel_sizes=(3,), strides=(1,),
                      dense=(8,))
    save(model, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="expected a completion model file with an energy_scale"):
        load_completion_energy(tmp_path / "m.safetensors")
    save(model, tmp_path / "s.safetensors", metadata={"energy_scale": 3.0})
    energy = load_completion_energy(tmp_path / "s.safetensors")
    assert energy.scale == pytest.approx(3.0)
    assert CompletionConfig.from_record({"variant": "gd", "channels": [4, 4]}).channels == (4, 4)

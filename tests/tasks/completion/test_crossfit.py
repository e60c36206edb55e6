"""The cross-fitted verdict: folds of whole people, the epoch choice, and what ships."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icnn.cli import main
from icnn.tasks.completion.anchor import AnchoredEnergy
from icnn.tasks.completion.baselines import MeanAnchor, fit_on, load_anchor, predict_anchor
from icnn.tasks.completion.crossfit import (
    choose_epochs,
    closed_form_errors,
    cross_fit_curves,
    fold_baselines,
    fold_splits,
)
from icnn.tasks.completion.crossval import fit_baselines_cv
from icnn.tasks.completion.data import make_completion_data, per_example_mse, subset
from icnn.tasks.completion.energy import load_completion_energy
from icnn.tasks.completion.folds import group_folds
from icnn.tasks.completion.train import CompletionConfig, mean_start, paper_mse, predict

TINY_NET = ["--channels", "4,4", "--kernel-sizes", "3,3", "--strides", "2,1", "--dense", "8",
            "--no-scale-geometry"]


def _split(n=30, seed=0):
    images = torch.rand(n + 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    return make_completion_data(images, n).train


def test_every_training_person_is_held_out_exactly_once_and_never_trained_on():
    train = _split(30)
    blocks = group_folds(30, 4, 3)   # 10 people of 3 images, 4 folds
    seen = torch.zeros(30, dtype=torch.long)

    def fit_fold(rest, held):
        # the fold's images are not among the images it is fit on
        assert not (held.images[:, None] == rest.images[None]).flatten(2).all(2).any()
        assert len(rest) + len(held) == 30
        index = (held.images[:, None] == train.images[None]).flatten(2).all(2).int().argmax(1)
        seen[index] += 1
        # whole people: every held image's person is held out entirely
        people = index // 3
        assert torch.equal(torch.bincount(people, minlength=10)[people.unique()],
                           torch.full((len(people.unique()),), 3))
        return index.double()[None].expand(2, -1) * torch.tensor([[1.0], [2.0]])

    curves = cross_fit_curves(fit_fold, train, blocks)
    assert torch.equal(seen, torch.ones(30, dtype=torch.long))
    # each image's column is its own fold's curve, in stack order
    assert torch.equal(curves, torch.arange(30).double()[None] * torch.tensor([[1.0], [2.0]]))
    assert [len(rest) for rest, _ in fold_splits(train, blocks)] == [21, 21, 24, 24]


def test_fold_curves_of_the_wrong_shape_are_refused():
    train = _split(12)
    blocks = group_folds(12, 3)
    with pytest.raises(ValueError, match=r"expected a fold curve of shape \(epochs, 4\)"):
        cross_fit_curves(lambda rest, held: torch.zeros(2, len(held) + 1), train, blocks)
    with pytest.raises(ValueError, match="expected at least two folds partitioning the 12"):
        cross_fit_curves(lambda rest, held: torch.zeros(2, len(held)), train, blocks[:2])


def test_the_epoch_is_chosen_on_the_pooled_curve_and_each_fold_on_the_others():
    # 3 folds of 2 images, 3 epochs; fold 0 alone prefers epoch 1, the others epoch 3
    curves = torch.tensor([[1.0, 1.0, 9.0, 9.0, 9.0, 9.0],
                           [4.0, 4.0, 4.0, 4.0, 4.0, 4.0],
                           [20.0, 20.0, 2.0, 2.0, 2.0, 2.0]])
    blocks = group_folds(6, 3)
    choice = choose_epochs(curves, blocks)
    assert choice["curve"] == pytest.approx([38 / 6, 4.0, 8.0])
    assert choice["epoch"] == 2                    # pooled over every image
    # fold 0 is scored at the epoch best on folds 1-2 (epoch 3): its own best is not used
    assert choice["fold_epochs"] == [3, 2, 2]
    assert torch.equal(choice["errors"], torch.tensor([20.0, 20.0, 4.0, 4.0, 4.0, 4.0]))
    with pytest.raises(ValueError, match=r"expected curves of shape \(epochs >= 1, n\)"):
        choose_epochs(curves[0], blocks)


def test_closed_form_errors_are_the_fits_on_the_other_folds():
    data = make_completion_data(torch.rand(20, 8, 8, generator=torch.Generator().manual_seed(1)),
                                16)
    train = data.train
    blocks = group_folds(16, 4)
    per_fold = fold_baselines(train, data.test, ["ridge"], blocks, folds=3, group_size=1)
    errors = closed_form_errors(per_fold, train, blocks)
    assert set(errors) == {"mean_image", "ridge"}
    # the mean image of the other folds (without mirrors), scored on the fold
    expected = torch.cat([per_example_mse(predict_anchor(MeanAnchor(rest.y.mean(0, keepdim=True)),
                                                         held), held)
                          for rest, held in fold_splits(train, blocks)])
    assert torch.allclose(errors["mean_image"], expected, rtol=1e-6)
    # ridge: each fold's alpha chosen by a 3-fold cross-validation of the other folds alone
    for fits, (rest, held), block in zip(per_fold, fold_splits(train, blocks), blocks,
                                         strict=True):
        alone = fit_baselines_cv(rest, rest, None, data.test, ["ridge"], group_folds(12, 3))
        assert fits["ridge"].params == alone["ridge"].params
        assert torch.allclose(errors["ridge"][block], per_example_mse(
            predict_anchor(fit_on(alone["ridge"], rest), held), held), rtol=1e-5)
    with pytest.raises(ValueError, match="expected one dict of the same baselines per fold"):
        closed_form_errors(per_fold[:3], train, blocks)


def test_a_held_out_person_that_would_change_ridge_alpha_does_not_choose_it():
    """Planted: 3 outlier people whose targets ignore x; with them, ridge prefers a large alpha.

    The fold that holds them out chooses its alpha without them: small (the rest is linear).
    """
    generator = torch.Generator().manual_seed(0)
    n, side = 24, 6
    x_part = torch.rand(n, side, side // 2, generator=generator)
    images = torch.cat([x_part.flip(-1), x_part], dim=-1)   # y (left) = mirror of x: linear
    images[:6] = torch.rand(6, side, side, generator=generator)   # people 0-2: noise
    data = make_completion_data(torch.cat([images, images[-2:]]), n)
    train, blocks = data.train, group_folds(n, 4, 2)   # 12 people of 2, 4 folds of 3 people
    everyone = fit_baselines_cv(train, train, None, data.test, ["ridge"], group_folds(n, 6, 2))
    per_fold = fold_baselines(train, data.test, ["ridge"], blocks, folds=6, group_size=2)
    clean = per_fold[0]["ridge"].params["alpha"]   # fold 0 holds out the noisy people 0-2
    assert clean < everyone["ridge"].params["alpha"]
    assert clean == fit_baselines_cv(*[subset(train, torch.arange(6, n))] * 2, None, data.test,
                                     ["ridge"], group_folds(18, 6, 2))["ridge"].params["alpha"]


def test_no_held_out_image_reaches_the_hyper_parameter_choice_of_its_fold(
        brightness_faces, tmp_path, monkeypatch):
    """Spy on every call of the baselines' cross-validation and every fold anchor of a run."""
    import icnn.tasks.completion.crossfit as crossfit
    import icnn.tasks.completion.run as run

    calls, anchors = [], []
    real_cv, real_anchor_fit = crossfit.fit_baselines_cv, run._anchor_fit

    def spy_cv(everything, *args, **kwargs):
        calls.append(everything.images.clone())
        return real_cv(everything, *args, **kwargs)

    def spy_anchor_fit(chosen, train, *args):
        anchors.append((chosen, train.images.clone()))
        return real_anchor_fit(chosen, train, *args)

    monkeypatch.setattr(crossfit, "fit_baselines_cv", spy_cv)
    monkeypatch.setattr(run, "_anchor_fit", spy_anchor_fit)
    metrics = _run(brightness_faces, tmp_path / "run", "--epochs", "1", "--baselines", "ridge",
                   "kernel_ridge", "--verdict-folds", "4")
    data = make_completion_data(torch.from_numpy(np.load(brightness_faces)), 16)
    blocks = group_folds(16, 4)
    assert len(calls) == 4
    for seen, block in zip(calls, blocks, strict=True):
        held = data.train.images[block]
        assert len(seen) == 12
        assert not (held[:, None] == seen[None]).flatten(2).all(2).any()
    # the energy of fold k: its anchor fit on the other folds, chosen among fold k's baselines
    assert len(anchors) == 5   # 4 folds, then the final fit on every training image
    fold_params = metrics["baseline_selection"]["verdict_fold_params"]
    recorded = metrics["methods"]["anchored"]["cross_fit"]["fold_anchors"]
    for (chosen, seen), block, params, record in zip(anchors, blocks, fold_params, recorded,
                                                     strict=False):
        held = data.train.images[block]
        assert not (held[:, None] == seen[None]).flatten(2).all(2).any()
        assert record == {"anchor": chosen.name, "params": chosen.params}
        if chosen.name != "mean_image":
            assert chosen.params == params[chosen.name]


def _run(faces, out, *flags):
    code = main(["completion", "--images", str(faces), "--train", "16", "--out", str(out),
                 "--batch-size", "8", "--lr", "1e-2", "--show", "2", "--no-progress", *TINY_NET,
                 *flags])
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


def test_an_energy_that_is_exactly_its_anchor_gains_nothing_and_the_baseline_ships(
        brightness_faces, tmp_path):
    # a vanishing PICNN: the energy's minimiser is its anchor, GD from it stays there
    metrics = _run(brightness_faces, tmp_path / "run", "--epochs", "2", "--anchor", "ridge",
                   "--baselines", "ridge", "--energy-scale", "1e-20", "--lr", "1e-6",
                   "--verdict-folds", "4")
    record = metrics["methods"]["anchored"]
    assert record["validation"] == "cross-fit" and metrics["n_validation"] == 0
    assert record["comparisons"]["ridge"]["val_gain"] == pytest.approx(0.0, abs=1e-6)
    assert record["val_gain"] == pytest.approx(0.0, abs=1e-6)
    assert not record["comparisons"]["ridge"]["beaten"]
    assert record["fallback"] and record["shipped"] == "ridge" and record["selected"] == "ridge"
    assert metrics["test_mse"]["anchored"] == metrics["baselines"]["ridge"]
    assert record["energy_test_mse"] == pytest.approx(metrics["baselines"]["ridge"], rel=1e-5)
    # what ships loads with the library's own reader and reproduces the recorded test MSE
    shipped = load_anchor(tmp_path / "run" / "anchored" / "shipped.safetensors")
    data = make_completion_data(torch.from_numpy(np.load(brightness_faces)), 16)
    assert paper_mse(predict_anchor(shipped, data.test), data.test) == pytest.approx(
        metrics["test_mse"]["anchored"], rel=1e-6)


def test_an_energy_that_beats_a_deliberately_bad_baseline_ships(brightness_faces, tmp_path):
    # the only baseline is the mean image, which ignores the brightness x tells
    metrics = _run(brightness_faces, tmp_path / "run", "--epochs", "8", "--baselines",
                   "--anchor-weight", "1", "--lr", "3e-2", "--verdict-folds", "4")
    record = metrics["methods"]["anchored"]
    cross = record["cross_fit"]
    assert (cross["folds"], cross["images"], cross["people"], cross["dof"]) == (
        4, [4, 4, 4, 4], 16, 15)
    assert 1 <= cross["epoch"] <= 8 and len(cross["fold_epochs"]) == 4 and len(cross["curve"]) == 8
    assert cross["epoch"] == 1 + int(np.argmin(cross["curve"]))
    comparison = record["comparisons"]["mean_image"]
    assert comparison["beaten"] and comparison["t"] > comparison["critical"] > 2.0
    assert comparison["t"] == pytest.approx(comparison["val_gain"] / comparison["stderr"])
    assert not record["fallback"] and record["shipped"] == "energy"
    assert metrics["test_mse"]["anchored"] == record["energy_test_mse"] < metrics["baselines"][
        "mean_image"]
    assert record["selected_epoch"] == cross["epoch"]
    # shipped: the PICNN and the anchor fit on every training image, at the cross-fit's epoch
    out = tmp_path / "run" / "anchored"
    anchor = load_anchor(out / "anchor.safetensors")
    assert isinstance(anchor, MeanAnchor)
    data = make_completion_data(torch.from_numpy(np.load(brightness_faces)), 16)
    energy = AnchoredEnergy(load_completion_energy(out / "model.safetensors"), anchor,
                            record["config"]["anchor_weight"])
    config = CompletionConfig.from_record(record["config"])
    test = paper_mse(predict(energy, data.test, mean_start(data.train), config.inference),
                     data.test)
    assert test == pytest.approx(record["energy_test_mse"], rel=1e-5)


def test_a_plain_variant_gets_the_cross_fitted_verdict_and_ships_its_own_predictions(
        brightness_faces, tmp_path):
    metrics = _run(brightness_faces, tmp_path / "run", "--epochs", "2", "--method", "gd",
                   "--baselines", "ridge", "--energy-scale", "10")
    record = metrics["methods"]["gd"]
    assert metrics["validation"] == "cross-fit over every training person, 5 folds"
    assert set(record["comparisons"]) == {"mean_image", "ridge"}
    assert record["cross_fit"]["people"] == 16 and record["comparisons"]["ridge"]["dof"] == 15
    assert metrics["test_mse"]["gd"] == record["test_mse"]
    assert record["val_mse"] == pytest.approx(record["validation_mse"]["gd"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--verdict-folds", "1"], "expected --verdict-folds 0 (a hold-out) or an int >= 2, got 1"),
    (["--verdict-folds", "-2"], "expected --verdict-folds 0 (a hold-out) or an int >= 2, got -2"),
    (["--verdict-folds", "17"], "expected --verdict-folds at most the 16 training people"),
    (["--group-size", "4", "--verdict-folds", "5"],
     "expected --verdict-folds at most the 4 training people (groups of 4 images), got 5"),
    (["--group-size", "8", "--verdict-folds", "2"],
     "expected at least 2 people (groups of 8 images) outside every cross-fit fold"),
    (["--method", "gd", "--ensemble", "2"], "expected --ensemble 1 with the cross-fitted verdict"),
])
def test_bad_verdict_folds_are_one_line_errors(brightness_faces, tmp_path, capsys, flags, message):
    code = main(["completion", "--images", str(brightness_faces), "--train", "16", "--out",
                 str(tmp_path / "run"), "--epochs", "1", "--no-progress", *TINY_NET, *flags])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_the_default_run_cross_fits_every_baseline_and_writes_the_verdict(brightness_faces,
                                                                          tmp_path):
    metrics = _run(brightness_faces, tmp_path / "run", "--epochs", "2")
    assert metrics["n_train"] == 16 and metrics["n_validation"] == 0
    assert metrics["baseline_selection"]["verdict_folds"] == [4, 3, 3, 3, 3]   # 16 people, 5 folds
    assert metrics["baseline_selection"]["cnn"] == "epoch by the cross-fit"
    cnn = metrics["baseline_details"]["cnn"]
    assert [g["epoch"] for g in cnn["grid"]] == [1, 2] and len(cnn["params"]["fold_epochs"]) == 5
    best = min(cnn["grid"], key=lambda g: g["cross_fit_mse"])
    assert cnn["params"]["epoch"] == best["epoch"]
    record = metrics["methods"]["anchored"]
    assert set(record["comparisons"]) == {"mean_image", "ridge", "kernel_ridge", "blend", "cnn"}
    for key in ("folds", "images", "people", "dof", "critical", "epoch", "fold_epochs", "curve",
                "wall_seconds"):
        assert key in record["cross_fit"]
    for comparison in record["comparisons"].values():
        assert set(comparison) >= {"val_gain", "stderr", "t", "dof", "critical", "beaten"}
        assert comparison["dof"] == 15 and comparison["groups"] == 16
    # the gain against the anchor is the paired difference of the cross-fit MSEs
    assert record["val_gain"] == pytest.approx(
        record["validation_mse"][record["anchor"]] - record["energy_val_mse"], rel=1e-4, abs=1e-3)
    assert record["anchor_val_mse"] == record["validation_mse"][record["anchor"]]
    shipped = (metrics["baselines"][record["shipped"]] if record["fallback"]
               else record["energy_test_mse"])
    assert metrics["test_mse"]["anchored"] == shipped
    if record["fallback"]:
        best_baseline = min(record["comparisons"], key=record["validation_mse"].get)
        assert record["shipped"] == best_baseline

"""``icnn completion`` end to end on a few small images: files, finite MSE below the mean image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icnn.cli import main
from icnn.tasks.completion.anchor import AnchoredEnergy
from icnn.tasks.completion.baselines import BaselineResult, fit_on, load_anchor
from icnn.tasks.completion.data import concatenate, hold_out, make_completion_data, mirrored
from icnn.tasks.completion.energy import load_completion_energy
from icnn.tasks.completion.train import CompletionConfig, mean_start, paper_mse, predict

TINY_NET = ["--channels", "4,4", "--kernel-sizes", "3,3", "--strides", "2,1", "--dense", "8",
            "--no-scale-geometry"]


@pytest.mark.parametrize("method", ["bundle_entropy", "gd", "nonconvex"])
def test_completion_command_writes_metrics_and_figure_and_beats_the_mean_image(
        brightness_faces, tmp_path, method):
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--validation", "0", "--baselines",
                 "--out", str(out), "--method", method, "--epochs", "15", "--batch-size", "8",
                 "--lr", "1e-2", "--inner-steps", "5", "--inner-lr", "0.01",
                 "--energy-scale", "10", "--eval-every", "100", "--show", "4", "--no-progress",
                 *TINY_NET])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "completions.png").stat().st_size > 0
    assert (out / method / "model.safetensors").is_file()
    assert metrics["n_train"] == 16 and metrics["n_test"] == 8
    mse = metrics["test_mse"][method]
    assert np.isfinite(mse)
    assert mse < metrics["baselines"]["mean_image"]


def test_validation_split_shifts_and_averaging_are_reported(brightness_faces, tmp_path):
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--validation", "4", "--out", str(out), "--method", "gd", "--epochs", "4",
                 "--batch-size", "6", "--lr", "1e-2", "--energy-scale", "10", "--eval-every", "2",
                 "--max-shift", "1", "--average", "0.9", "--show", "2", "--no-progress",
                 *TINY_NET])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_validation"], metrics["n_test"]) == (12, 4, 8)
    record = metrics["methods"]["gd"]
    assert record["config"]["max_shift"] == 1 and record["config"]["average"] == 0.9
    # val_mse is the saved model's MSE on the 4 held-out training faces: recomputed here
    config = CompletionConfig.from_record(record["config"])
    data = hold_out(make_completion_data(torch.from_numpy(np.load(brightness_faces)), 16), 4)
    path = out / "gd" / "model.safetensors"
    energy = load_completion_energy(path)
    start = mean_start(concatenate(data.train, mirrored(data.train)))  # flip: on by default
    completion = predict(energy, data.validation, start, config.inference)
    assert record["val_mse"] == pytest.approx(paper_mse(completion, data.validation), rel=1e-5)
    # validation every epoch (selection), the test set every --eval-every epochs (curve only)
    assert [c["epoch"] for c in record["curve"] if "val_mse" in c] == [1, 2, 3, 4]
    assert [c["epoch"] for c in record["curve"] if "test_mse" in c] == [2, 4]
    best = min(record["curve"], key=lambda c: c["val_mse"])
    assert record["selected_epoch"] == best["epoch"] and record["val_mse"] == pytest.approx(
        best["val_mse"], rel=1e-5)


def test_ensemble_predicts_with_the_mean_energy_of_its_members(brightness_faces, tmp_path):
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--ensemble", "2", "--seed", "3", "--baselines", "--validation", "0",
                 "--out", str(out), "--method",
                 "bundle_entropy", "--epochs", "15", "--batch-size", "8", "--lr", "1e-2",
                 "--energy-scale", "10", "--eval-every", "100", "--show", "2", "--no-progress",
                 *TINY_NET])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    record = metrics["methods"]["bundle_entropy"]
    assert record["ensemble"] == 2 and [m["seed"] for m in record["members"]] == [3, 4]
    assert all((out / "bundle_entropy" / f"member{k}" / "model.safetensors").is_file()
               for k in range(2))
    assert np.isfinite(record["test_mse"]) and record["test_mse"] < metrics["baselines"]["mean_image"]


def test_hold_out_run_reports_baselines_and_the_anchored_energy(brightness_faces, tmp_path):
    # --verdict-folds 0: the hold-out of --validation-fraction instead of the cross-fit
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--verdict-folds", "0", "--validation-fraction", "0.25", "--anchor-weight", "5",
                 "--out", str(out),
                 "--epochs", "3", "--batch-size", "8", "--lr", "1e-2", "--eval-every", "3",
                 "--show", "2", "--no-progress", *TINY_NET])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_validation"], metrics["n_test"]) == (12, 4, 8)
    assert set(metrics["baselines"]) == {"mean_image", "ridge", "kernel_ridge", "cnn", "blend"}
    details = metrics["baseline_details"]
    assert details["ridge"]["params"]["alpha"] in [g["alpha"] for g in details["ridge"]["grid"]]
    assert details["cnn"]["params"]["epoch"] in (1, 2, 3)
    # a .npy stack: groups of one image, 10 contiguous folds over all 16 training images
    assert metrics["baseline_selection"] == {
        "closed_forms": "cross-validation", "n_images": 16, "folds": [2] * 6 + [1] * 4,
        "group_size": 1, "cnn_n_fit": 12, "cnn_n_validation": 4}
    record = metrics["methods"]["anchored"]
    closed = ("mean_image", "ridge", "kernel_ridge", "blend")
    assert record["anchor"] in closed
    # the anchor is the closed form best by a cross-validation of the training part only (the
    # validation people unseen); its validation MSE, the number the fallback compares against,
    # is of that training-part fit
    checked = metrics["verdict_baselines"]
    assert set(checked) == set(closed)
    assert record["anchor_cv_mse"] == min(checked[k]["cv_mse"] for k in closed)
    assert record["anchor_val_mse"] == checked[record["anchor"]]["val_mse"]
    assert record["config"]["epochs"] == 3
    assert record["config"]["anchor_weight"] == 5.0 and record["config"]["energy_scale"] == 10.0
    assert record["fallback_z"] == 2.0 and record["val_gain_stderr"] > 0
    # the verdict covers every baseline measured in the run, on the same validation images
    assert set(record["comparisons"]) == set(metrics["baselines"])
    for name, comparison in record["comparisons"].items():
        assert record["validation_mse"][name] == pytest.approx(
            {**details, **checked}[name]["val_mse"], rel=1e-5)
        assert comparison["groups"] == 4 and comparison["critical"] == pytest.approx(3.3068, abs=1e-3)  # t_3
    assert record["fallback"] == (not all(c["beaten"] for c in record["comparisons"].values()))
    # one definition of the mean image's test MSE: the fit on every training image
    assert metrics["baselines"]["mean_image"] == details["mean_image"]["test_mse"]
    # the gain is the paired per-image difference: its mean is the difference of the MSEs
    assert record["val_gain"] == pytest.approx(record["anchor_val_mse"] - record["energy_val_mse"],
                                               rel=1e-4, abs=1e-3)
    shipped = (metrics["baselines"][record["shipped"]] if record["fallback"]
               else record["energy_test_mse"])
    assert metrics["test_mse"]["anchored"] == shipped
    assert (out / "anchored" / "anchor.safetensors").is_file()


def test_saved_energy_and_anchor_reproduce_the_reported_predictions(brightness_faces, tmp_path):
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--validation", "4", "--anchor", "ridge", "--baselines", "ridge", "--out",
                 str(out), "--epochs", "2", "--batch-size", "8", "--lr", "1e-2", "--show", "2",
                 "--no-progress", *TINY_NET])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    record = metrics["methods"]["anchored"]
    config = CompletionConfig.from_record(record["config"])
    data = hold_out(make_completion_data(torch.from_numpy(np.load(brightness_faces)), 16), 4)
    path = out / "anchored" / "model.safetensors"
    anchor = load_anchor(out / "anchored" / "anchor.safetensors")
    # the saved anchor is the one fit on the training part (the one validated), not the refit
    part = fit_on(BaselineResult("ridge", anchor, {"alpha": record["anchor_params"]["alpha"]},
                                 None, 0.0, 0.0), data.train)
    assert torch.equal(anchor.weight, part.weight) and torch.equal(anchor.bias, part.bias)
    energy = AnchoredEnergy(load_completion_energy(path),
                            anchor, record["config"]["anchor_weight"])
    start = mean_start(data.train)
    test = paper_mse(predict(energy, data.test, start, config.inference), data.test)
    assert test == pytest.approx(record["energy_test_mse"], rel=1e-5)
    val = paper_mse(predict(energy, data.validation, start, config.inference), data.validation)
    assert val == pytest.approx(record["energy_val_mse"], rel=1e-5)
    if record["shipped"] == "energy":
        assert test == pytest.approx(metrics["test_mse"]["anchored"], rel=1e-5)


@pytest.mark.parametrize("validation", ["4", "0"])
def test_every_method_gets_a_validation_verdict(brightness_faces, tmp_path, validation):
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--validation", validation, "--baselines", "ridge", "--method", "gd",
                 "--out", str(out), "--epochs", "1", "--batch-size", "8", "--show", "2",
                 "--no-progress", *TINY_NET])
    assert code == 0
    record = json.loads((out / "metrics.json").read_text())["methods"]["gd"]
    if validation == "0":
        assert record["selected"] is None and "no verdict" in record["verdict"]
        return
    assert set(record["comparisons"]) == {"mean_image", "ridge"}
    assert record["selected"] in ("gd", "mean_image", "ridge")
    assert record["validation_mse"]["gd"] == pytest.approx(record["val_mse"], rel=1e-5)
    best = min(record["validation_mse"], key=record["validation_mse"].get)
    assert record["best_on_validation"] == best
    if record["selected"] != "gd":   # a baseline won on validation: said so, not hidden
        assert record["selected"] in record["verdict"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--validation-fraction", "1.5"], "expected a validation fraction in (0, 1), got 1.5"),
    (["--validation-fraction", "0"], "expected a validation fraction in (0, 1), got 0.0"),
    (["--train", "2", "--verdict-folds", "0"], "expected enough training images"),
    (["--train", "16", "--verdict-folds", "3", "--validation", "4"],
     "expected either --verdict-folds K (the cross-fit) or --validation N (a hold-out), got "
     "--verdict-folds 3 and --validation 4"),
    (["--train", "16", "--anchor", "kernel_ridge", "--baselines", "ridge", "cnn"],
     "expected --anchor best or a closed-form baseline fit in this run ['mean_image', 'ridge'] "
     "(see --baselines), got 'kernel_ridge'"),
    (["--train", "16", "--anchor", "blend", "--baselines", "kernel_ridge"],
     "expected --anchor best or a closed-form baseline fit in this run"),
    (["--protocol", "small-faces"], "expected the 400 Olivetti images"),
    (["--train", "16", "--validation", "0", "--method", "anchored"],
     "expected a validation split for the anchored method"),
    (["--train", "16", "--ensemble", "2"], "expected --ensemble 1 with the anchored method"),
    (["--train", "16", "--fallback-z", "-1"], "expected a fallback z that is a finite number"),
    (["--train", "16", "--folds", "1"], "expected folds >= 2, got 1"),
    (["--train", "16", "--group-size", "0"], "expected a group size >= 1, got 0"),
    (["--train", "15", "--group-size", "10", "--verdict-folds", "0"],
     "expected at least 2 people (groups of 10 images) in the training part"),
    (["--train", "16", "--group-size", "8", "--verdict-folds", "0", "--validation-fraction", "0.5"],
     "expected at least 2 people (groups of 8 images) in the training part"),
    (["--train", "16", "--group-size", "4", "--validation", "3"],
     "expected --validation to hold out whole people"),
])
def test_bad_inputs_are_one_line_errors(brightness_faces, tmp_path, capsys, flags, message):
    args = ["completion", "--images", str(brightness_faces), "--out", str(tmp_path / "run"),
            "--epochs", "1", "--no-progress", *TINY_NET]
    if "--train" not in flags and "--protocol" not in flags:
        args += ["--train", "16"]
    code = main(args + flags)
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_user_errors_come_before_any_fitting(brightness_faces, tmp_path, capsys, monkeypatch):
    import icnn.tasks.completion.run as run

    def no_fitting(*args, **kwargs):
        raise AssertionError("a baseline was fit before the user error was reported")

    monkeypatch.setattr(run, "fit_baselines_cv", no_fitting)
    monkeypatch.setattr(run, "_cross_fit_regressor", no_fitting)
    out = tmp_path / "run"
    base = ["completion", "--images", str(brightness_faces), "--out", str(out), "--epochs", "1",
            "--no-progress", *TINY_NET]
    code = main(base + ["--train", "16", "--anchor", "kernel_ridge", "--baselines", "ridge",
                        "cnn"])
    assert code == 2 and "expected --anchor best" in capsys.readouterr().err
    # two people in two folds: the cross-fit's own message, not the unused hold-out fraction's
    code = main(base + ["--train", "2", "--verdict-folds", "2"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error
    assert "expected at least 2 people (groups of 1 images) outside every cross-fit fold" in error
    assert "fraction" not in error
    code = main(base + ["--train", "16", "--validation", "0"])
    assert code == 2 and "expected a validation split for the anchored method" in \
        capsys.readouterr().err
    assert not out.exists()


def test_the_hold_out_chooses_the_verdicts_baselines_without_the_validation_people(
        brightness_faces, tmp_path, monkeypatch):
    import icnn.tasks.completion.run as run

    calls = []
    real = run.fit_baselines_cv

    def spy(everything, part, validation, *args, **kwargs):
        calls.append((everything.images.clone(), validation))
        return real(everything, part, validation, *args, **kwargs)

    monkeypatch.setattr(run, "fit_baselines_cv", spy)
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--group-size", "4", "--validation", "4", "--baselines", "ridge",
                 "--out", str(out), "--epochs", "1", "--batch-size", "8", "--show", "2",
                 "--no-progress", *TINY_NET])
    assert code == 0
    # first: every training image (the reported rows, what ships); then the training part only
    assert [len(images) for images, _ in calls] == [16, 12]
    held = calls[0][0][12:]
    assert not (held[:, None] == calls[1][0][None]).flatten(2).all(2).any()
    assert calls[1][1] is not None and len(calls[1][1]) == 4
    record = json.loads((out / "metrics.json").read_text())["methods"]["anchored"]
    assert record["anchor_val_mse"] == pytest.approx(record["validation_mse"][record["anchor"]],
                                                     rel=1e-5)


def test_group_size_holds_out_and_folds_whole_people(brightness_faces, tmp_path):
    out = tmp_path / "run"
    code = main(["completion", "--images", str(brightness_faces), "--train", "16",
                 "--group-size", "4", "--validation-fraction", "0.3", "--baselines", "ridge",
                 "--verdict-folds", "0",
                 "--out", str(out), "--epochs", "1", "--batch-size", "8", "--show", "2",
                 "--no-progress", *TINY_NET])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # 4 people of 4 images: round(0.3 * 4) = 1 person validates; one fold per person (10 > 4)
    assert (metrics["n_train"], metrics["n_validation"]) == (12, 4)
    selection = metrics["baseline_selection"]
    assert selection["folds"] == [4, 4, 4, 4] and selection["group_size"] == 4
    record = metrics["methods"]["anchored"]
    assert record["val_gain_groups"] == 1 and record["fallback"]   # one person: no error bar
    assert record["val_gain_stderr"] is None   # no standard error: null in metrics.json


def test_metrics_record_a_relative_images_path_as_given(brightness_faces, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["completion", "--images", brightness_faces.name, "--train", "16",
                 "--validation", "0", "--baselines", "--out", "run", "--method", "gd",
                 "--epochs", "1", "--batch-size", "8", "--inner-steps", "2", "--show", "2",
                 "--no-progress", *TINY_NET])
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["images"] == "faces.npy"
    assert "/" not in metrics["images"] and str(tmp_path) not in json.dumps(metrics)

"""The feed-forward net's dropout, chosen on the validation split (issue 18)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from icnn.tasks.multilabel.config import FF_DROPOUT, MultilabelConfig
from icnn.tasks.multilabel.experiment import load_data
from icnn.tasks.multilabel.training import build_model, fit, select_feedforward


def _config(data_dir, **overrides) -> MultilabelConfig:
    d = data_dir / "emotions"
    settings = {"train": str(d / "emotions-train.arff"), "test": str(d / "emotions-test.arff"),
                "labels": 6, "model": "ff", "hidden": 32, "batch_size": 32, "max_train": 200,
                "epochs": 3, "threads": 1, "progress": False, "seed": 3, **overrides}
    return MultilabelConfig(**settings)


def test_the_default_grid_is_no_dropout_or_a_half():
    assert MultilabelConfig().ff_dropout == FF_DROPOUT == (0.0, 0.5)


@pytest.mark.parametrize("grid", [(), (0.5, 0.5), (1.0,), (-0.1,), (True,)])
def test_a_bad_grid_is_refused(grid):
    with pytest.raises(ValueError, match="expected ff_dropout to be distinct values in"):
        MultilabelConfig(ff_dropout=grid)


@pytest.mark.parametrize("grid", [0.5, "0.5", None])
def test_a_grid_that_is_not_a_sequence_is_refused(grid):
    with pytest.raises(ValueError, match="expected ff_dropout to be a sequence of values"):
        MultilabelConfig(ff_dropout=grid)


def test_for_hamming_the_lowest_validation_loss_is_chosen(data_dir):
    config = _config(data_dir, threshold_metric="hamming", ff_dropout=(0.0, 0.5))
    train, validation, _ = load_data(config)
    model, _, _, selection = select_feedforward(config, train, validation)
    losses = [s["val_score"] for s in selection]
    assert all(0.0 <= v <= 1.0 for v in losses)  # the Hamming loss itself, not its negation
    chosen = min(range(2), key=lambda i: (losses[i], i))
    assert [s["chosen"] for s in selection] == [i == chosen for i in range(2)]
    assert model.config["dropout"] == selection[chosen]["dropout"]


def test_the_feedforward_net_takes_its_dropout_from_ff_dropout_not_dropout():
    with pytest.raises(ValueError, match="expected --ff-dropout for the feed-forward"):
        MultilabelConfig(model="ff", dropout=0.3)
    MultilabelConfig(model="picnn", dropout=0.3)  # the picnn's input dropout
    with pytest.raises(ValueError, match="expected one ff_dropout"):
        build_model(MultilabelConfig(model="ff"), 4, 3)
    net = build_model(MultilabelConfig(model="ff", ff_dropout=(0.25,)), 4, 3)
    assert net.config["dropout"] == 0.25


def test_selection_keeps_the_candidate_best_on_validation_and_equals_its_own_fit(data_dir):
    config = _config(data_dir)
    train, validation, _ = load_data(config)
    model, history, epoch, selection = select_feedforward(config, train, validation)
    assert [s["dropout"] for s in selection] == [0.0, 0.5]
    scores = [s["val_score"] for s in selection]
    chosen = max(range(2), key=lambda i: (scores[i], -i))  # the first wins ties
    assert model.config["dropout"] == selection[chosen]["dropout"]
    assert [s["chosen"] for s in selection] == [i == chosen for i in range(2)]
    assert epoch == selection[chosen]["best_epoch"]
    assert history[epoch - 1]["val_example_f1"] == pytest.approx(scores[chosen], abs=0)
    # every candidate is the fit of that dropout alone, from the same seed: the same weights
    alone, _, alone_epoch = fit(dataclasses.replace(config, ff_dropout=(selection[chosen][
        "dropout"],)), train, validation)
    assert alone_epoch == epoch
    for (name, a), b in zip(model.state_dict().items(), alone.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    # fit() of a grid is the selection's choice too
    again, _, again_epoch = fit(config, train, validation)
    assert again_epoch == epoch and torch.equal(again.net[0].weight, model.net[0].weight)


def test_an_ff_run_records_the_selection_and_a_picnn_run_its_baselines_dropout(data_dir,
                                                                             tmp_path):
    from icnn.cli import main

    d = data_dir / "emotions"
    common = ["multilabel", "--train", str(d / "emotions-train.arff"), "--test",
              str(d / "emotions-test.arff"), "--hidden", "16", "--y-hidden", "8",
              "--max-train", "150", "--batch-size", "32", "--solver-iters", "2", "--threads",
              "1", "--no-progress", "--baselines"]
    assert main([*common, "--model", "ff", "--epochs", "2", "--ff-dropout", "0", "0.3",
                 "--out", str(tmp_path / "ff")]) == 0
    metrics = json.loads((tmp_path / "ff" / "metrics.json").read_text())
    selection = metrics["ff_dropout_selection"]
    assert [s["dropout"] for s in selection] == [0.0, 0.3]
    best = max(selection, key=lambda s: s["val_score"])  # example F1: higher is better
    assert [s["chosen"] for s in selection] == [s is best for s in selection]
    assert metrics["val_score"] == pytest.approx(best["val_score"], abs=1e-12)
    assert main([*common, "--model", "picnn", "--epochs", "1", "--ff-epochs", "2",
                 "--ff-dropout", "0.3", "--out", str(tmp_path / "picnn")]) == 0
    metrics = json.loads((tmp_path / "picnn" / "metrics.json").read_text())
    assert metrics["baselines"]["ff"]["hyper"] == {"hidden": 16, "dropout": 0.3}
    assert metrics["ff_dropout_selection"] is None


def test_a_small_training_set_gets_smaller_batches_and_never_a_batch_of_one():
    from icnn.tasks.multilabel.training import MIN_BATCHES, effective_batch_size

    config = MultilabelConfig(batch_size=128)
    assert MIN_BATCHES == 8
    assert effective_batch_size(config, 4148) == 128  # BibTeX: as given
    assert effective_batch_size(config, 1024) == 128  # exactly 8 batches of 128
    assert effective_batch_size(config, 1023) == 128  # ceil(1023 / 8) = 128
    assert effective_batch_size(config, 255) == 32  # yeast's small-data protocol
    assert effective_batch_size(MultilabelConfig(batch_size=16), 255) == 16  # never raised ...
    # ... except to leave no batch of a single example (BatchNorm cannot train on one)
    assert effective_batch_size(config, 1025) == 129  # 1025 = 8 * 128 + 1
    assert effective_batch_size(config, 57) == 9  # ceil(57 / 8) = 8 would leave 57 = 7 * 8 + 1
    assert effective_batch_size(config, 5) == 3  # at least 2, and 5 = 2 * 2 + 1
    for n in range(2, 3000):
        size = effective_batch_size(config, n)
        assert 2 <= size and (size >= n or n % size != 1), n
        base = max(2, min(128, -(-n // MIN_BATCHES)))  # max(2, min(batch, ceil(n / 8)))
        # raised by the fewest examples: every smaller size from the base leaves a batch of one
        assert size >= base and all(n % smaller == 1 for smaller in range(base, size)), n


@pytest.mark.parametrize("max_train", [10, 67])
def test_a_training_set_whose_batches_would_leave_one_example_trains(data_dir, tmp_path,
                                                                     max_train):
    # 8 and 57 training examples: batches of ceil(n / 8) would leave a last batch of one,
    # and the feed-forward net's BatchNorm raised "Expected more than 1 value per channel"
    from icnn.cli import main

    d = data_dir / "emotions"
    out = tmp_path / "ff"
    assert main(["multilabel", "--train", str(d / "emotions-train.arff"), "--test",
                 str(d / "emotions-test.arff"), "--model", "ff", "--hidden", "16", "--epochs",
                 "2", "--ff-dropout", "0", "--max-train", str(max_train), "--threads", "1",
                 "--no-progress", "--baselines", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] % metrics["batch_size_effective"] != 1


def test_the_effective_batch_size_drives_training_and_is_recorded(data_dir, tmp_path,
                                                                   monkeypatch):
    import icnn.learn
    from icnn.cli import main

    seen = []
    original = icnn.learn.TrainerConfig

    def recording(*args, **kwargs):
        config = original(*args, **kwargs)
        seen.append(config.batch_size)
        return config

    monkeypatch.setattr(icnn.learn, "TrainerConfig", recording)
    d = data_dir / "emotions"
    out = tmp_path / "ff"
    assert main(["multilabel", "--train", str(d / "emotions-train.arff"), "--test",
                 str(d / "emotions-test.arff"), "--model", "ff", "--hidden", "16", "--epochs",
                 "1", "--ff-dropout", "0", "--max-train", "100", "--threads", "1",
                 "--no-progress", "--baselines", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == 85 and metrics["batch_size_effective"] == 11  # ceil(85 / 8)
    assert metrics["config"]["batch_size"] == 128
    assert seen == [11]  # what the trainer was given

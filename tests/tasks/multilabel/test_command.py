"""`icnn multilabel` end to end on a small subset: files written, scores above trivial ones."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
import torch

import icnn
from icnn.data import load_multilabel_arff
from icnn.tasks.multilabel import command
from icnn.tasks.multilabel.config import MultilabelConfig
from icnn.tasks.multilabel.experiment import (
    load_data,
    load_feedforward,
    resolve_label_count,
    standardize,
)
from icnn.tasks.multilabel.inference import label_scores
from icnn.tasks.multilabel.metrics import multilabel_scores

KEYS = {"macro_f1", "micro_f1", "example_f1", "hamming", "threshold", "wall_time_s", "seed",
        "config", "baselines", "best_on_validation", "model_beats_baselines_on_validation",
        "best_baseline", "selected", "verdict"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="icnn multilabel")
    command.add_arguments(parser)
    return parser.parse_args(argv)


def best_constant_example_f1(train_labels: torch.Tensor, test_labels: torch.Tensor) -> float:
    """Best example F1 of predicting the same k most frequent labels for everyone (any k)."""
    order = train_labels.mean(0).argsort(descending=True)
    best = 0.0
    for k in range(1, train_labels.shape[1] + 1):
        prediction = torch.zeros_like(test_labels, dtype=torch.bool)
        prediction[:, order[:k]] = True
        best = max(best, multilabel_scores(test_labels, prediction)["example_f1"])
    return best


def test_every_config_field_has_a_flag_with_the_same_default():
    args = vars(parse(["--train", "a.arff", "--test", "b.arff"]))
    fields = {f.name for f in dataclasses.fields(MultilabelConfig)}
    assert set(args) == fields
    defaults = MultilabelConfig()
    for name in fields - {"train", "test"}:
        assert args[name] == getattr(defaults, name), name


def test_bad_choices_are_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match="expected training in"):
        MultilabelConfig(training="hinge")
    with pytest.raises(ValueError, match="expected solver_iters"):
        MultilabelConfig(solver_iters=0)


def test_label_count_comes_from_the_mulan_xml_beside_the_train_file(data_dir):
    assert resolve_label_count(data_dir / "bibtex" / "bibtex-train.arff", None) == 159
    assert resolve_label_count(data_dir / "emotions" / "emotions-train.arff", None) == 6
    assert resolve_label_count("nowhere/x-train.arff", 7) == 7
    with pytest.raises(ValueError, match="pass --labels"):
        resolve_label_count("nowhere/x-train.arff", None)


def test_continuous_features_are_standardised_binary_ones_kept(data_dir):
    emotions = load_multilabel_arff(data_dir / "emotions" / "emotions-train.arff", 6)
    (scaled,) = standardize(emotions)
    assert torch.allclose(scaled.features.mean(0), torch.zeros(72), atol=1e-4)
    assert torch.allclose(scaled.features.std(0), torch.ones(72), atol=1e-3)
    binary = dataclasses.replace(emotions, features=(emotions.features > 0).float())
    assert standardize(binary)[0] is binary


@pytest.mark.parametrize("model, extra", [
    ("ff", []),
    ("picnn", ["--training", "argmin", "--lr", "3e-3"]),
    ("picnn", ["--training", "max-margin", "--lr", "3e-3"]),
])
def test_smoke_run_writes_metrics_and_beats_the_best_constant_predictor(data_dir, tmp_path,
                                                                        model, extra):
    out = tmp_path / "run"
    d = data_dir / "emotions"
    args = parse(["--train", str(d / "emotions-train.arff"), "--test", str(d / "emotions-test.arff"),
                  "--model", model, *extra, "--epochs", "4", "--hidden", "32", "--y-hidden", "16",
                  "--solver-iters", "4", "--batch-size", "32", "--max-train", "300",
                  "--out", str(out), "--no-progress", "--threads", "1"])
    assert command.run(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert KEYS <= set(metrics)
    assert metrics["n_train"] + metrics["n_validation"] == 300 and metrics["n_test"] == 202
    config = command.config_from_args(args)
    train, _, test = load_data(config)
    assert metrics["example_f1"] > best_constant_example_f1(train.labels, test.labels)
    # the baselines of the same run, tuned on validation; a warm start adds its ff
    expected = {"logreg", "chain", "knn"} | ({"ff"} if model == "picnn" else set())
    assert set(metrics["baselines"]) == expected
    for result in metrics["baselines"].values():
        assert result["example_f1"] > best_constant_example_f1(train.labels, test.labels) - 0.05
        assert {"val_score", "threshold", "hyper", "macro_f1"} <= set(result)
    best = max(metrics["baselines"], key=lambda n: metrics["baselines"][n]["val_score"])
    assert metrics["best_baseline"] == best
    assert metrics["model_beats_baselines_on_validation"] == (
        metrics["val_score"] >= metrics["baselines"][best]["val_score"])
    # the checkpoint reproduces the reported test scores
    path = out / "model.safetensors"
    restored = load_feedforward(path) if model == "ff" else icnn.load(path)
    scores = label_scores(restored, test.features, solver=config.inference_solver,
                          iterations=config.solver_iters)
    again = multilabel_scores(test.labels, scores >= metrics["threshold"])
    assert again["example_f1"] == pytest.approx(metrics["example_f1"], abs=1e-9)


def test_max_train_is_a_seeded_random_subset_not_the_first_rows(data_dir):
    """Mulan files are ordered by label: the small-data protocol samples rows at random."""
    d = data_dir / "scene"
    base = {"train": str(d / "scene-train.arff"), "test": str(d / "scene-test.arff"),
            "labels": 6, "max_train": 200}
    train, validation, _ = load_data(MultilabelConfig(seed=0, **base))
    again, _, _ = load_data(MultilabelConfig(seed=0, **base))
    other, _, _ = load_data(MultilabelConfig(seed=1, **base))
    assert train.n_examples + validation.n_examples == 200
    assert torch.equal(train.features, again.features)
    assert not torch.equal(train.features, other.features)
    full = load_multilabel_arff(d / "scene-train.arff", 6)
    first = full.labels[:200].mean(0)
    # the first 200 rows hold a few labels only; the sample follows the whole file's rates
    sample = torch.cat([train.labels, validation.labels]).mean(0)
    assert (sample - full.labels.mean(0)).abs().max() < 0.08
    assert (first - full.labels.mean(0)).abs().max() > 0.2


def _emotions(data_dir, tmp_path, *extra):
    d = data_dir / "emotions"
    return ["multilabel", "--train", str(d / "emotions-train.arff"), "--test",
            str(d / "emotions-test.arff"), "--model", "ff", "--epochs", "1", "--hidden", "16",
            "--out", str(tmp_path / "run"), "--no-progress", "--threads", "1", *extra]


def test_missing_scikit_learn_is_one_line_before_training(data_dir, tmp_path, capsys,
                                                          without_sklearn):
    from icnn.cli import main

    assert main(_emotions(data_dir, tmp_path, "--baselines", "logreg", "knn")) == 2
    error = capsys.readouterr().err.strip()
    assert "expected scikit-learn for the logreg baselines" in error
    assert "pip install 'icnn-torch[data]'" in error and "\n" not in error
    assert not (tmp_path / "run").exists()   # refused before loading data or training


def test_shipped_predictor_and_effective_max_train_are_explicit(data_dir, tmp_path, capsys):
    from icnn.cli import main

    assert main(_emotions(data_dir, tmp_path, "--baselines", "knn", "--max-train", "100000")) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # the request exceeds the 391 rows of emotions-train: the number used is recorded
    assert metrics["config"]["max_train"] == 100000
    # data in the default folder (or $ICNN_DATA_DIR) are recorded without this machine's path
    for key in ("train", "test"):
        recorded = metrics["config"][key]
        assert recorded.startswith(("../shared/data/", "$ICNN_DATA_DIR/")), recorded
        assert recorded.endswith(f"emotions-{key}.arff")
    assert metrics["max_train_effective"] == metrics["n_train"] + metrics["n_validation"] == 391
    assert metrics["scores_of"] == "ff"
    assert metrics["shipped"] == metrics["selected"]["name"] == metrics["best_on_validation"]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"validation selects {'baseline ' if metrics['shipped'] != 'ff' else ''}" \
           f"{metrics['shipped']}" in last

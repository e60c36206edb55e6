"""The multi-label baselines: known answers on tiny synthetic sets, selection on validation only,
the comparison written to metrics.json, and refusals."""

from __future__ import annotations

import pytest
import torch

from icnn.data import MultilabelData
from icnn.tasks.multilabel.baselines import (
    BaselineResult,
    knn_label_scores,
    run_baselines,
)
from icnn.tasks.multilabel.config import MultilabelConfig
from icnn.tasks.multilabel.experiment import compare_on_validation
from icnn.tasks.multilabel.metrics import best_threshold, multilabel_scores


def separable(n: int, seed: int) -> MultilabelData:
    """Label l is 1 exactly when feature l > 0 (margin 0.5); label 3 is always 0."""
    generator = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, (n, 3), generator=generator) * 2 - 1
    features = sign * (0.5 + torch.rand(n, 3, generator=generator))
    noise = torch.randn(n, 2, generator=generator) * 0.1
    labels = torch.cat([(sign > 0).float(), torch.zeros(n, 1)], dim=1)
    return MultilabelData(torch.cat([features, noise], dim=1).float(), labels)


@pytest.mark.parametrize("name", ["logreg", "chain", "knn"])
def test_separable_labels_are_recovered_exactly(name):
    train, validation, test = separable(200, 0), separable(60, 1), separable(80, 2)
    result = run_baselines([name], train, validation, test, "macro_f1", seed=0)[name]
    assert result.val_score == pytest.approx(0.75)  # 3 of 4 labels perfect, the empty one 0
    assert result.test["hamming"] == 0.0
    assert result.test["example_f1"] == pytest.approx(
        float(((test.labels.sum(1) > 0).float()).mean()))
    assert result.test["macro_f1"] == pytest.approx(0.75)


def test_knn_votes_match_a_hand_computation():
    train_x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    train_y = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    query = torch.tensor([[0.4], [5.2]])
    # query 0.4: nearest 0 (0.4), 1 (0.6), 3 (2.6); query 5.2: 7 (1.8), 3 (2.2), 1 (4.2)
    scores = knn_label_scores(train_x, train_y, query, k=3)
    expected = torch.tensor([[2 / 3, 2 / 3], [1 / 3, 2 / 3]])
    assert torch.allclose(scores, expected)
    assert torch.equal(knn_label_scores(train_x, train_y, query, k=1),
                       torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_knn_cosine_ignores_the_norm():
    train_x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    train_y = torch.tensor([[1.0], [0.0]])
    query = torch.tensor([[100.0, 1.0], [0.1, 0.3]])
    assert torch.equal(knn_label_scores(train_x, train_y, query, 1, "cosine"),
                       torch.tensor([[1.0], [0.0]]))


def test_knn_refuses_bad_inputs():
    x, y = torch.zeros(4, 2), torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"expected k in \[1, 4\], got 5"):
        knn_label_scores(x, y, x, 5)
    with pytest.raises(ValueError, match="expected distance in"):
        knn_label_scores(x, y, x, 1, "manhattan")
    with pytest.raises(ValueError, match=r"query \(M, 2\)"):
        knn_label_scores(x, y, torch.zeros(2, 3), 1)
    with pytest.raises(ValueError, match="expected 2-D"):
        knn_label_scores(x, y, torch.zeros(2), 1)


def test_hyper_parameters_are_chosen_on_validation_and_test_is_scored_once_with_them():
    train, validation, test = separable(200, 0), separable(60, 1), separable(80, 2)
    # a noisy validation split (labels flipped at random) makes the candidates differ
    flip = torch.rand(validation.labels.shape, generator=torch.Generator().manual_seed(3)) < 0.2
    noisy = MultilabelData(validation.features, (validation.labels != flip.float()).float())
    result = run_baselines(["knn"], train, noisy, test, "example_f1", seed=0)["knn"]
    best = max(result.grid, key=lambda row: row["val_score"])  # first of ties, as the grid
    assert result.hyper == {"k": best["k"], "distance": best["distance"]}
    assert result.val_score == best["val_score"] and result.threshold == best["threshold"]
    scores = knn_label_scores(train.features, train.labels, test.features, **result.hyper)
    assert result.test == multilabel_scores(test.labels, scores >= result.threshold)
    # the validation score of the choice is recomputed from validation alone
    val_scores = knn_label_scores(train.features, train.labels, noisy.features, **result.hyper)
    assert best_threshold(val_scores, noisy.labels, "example_f1").score == result.val_score


def test_a_label_constant_in_training_scores_its_constant():
    train, validation = separable(100, 0), separable(30, 1)
    ones = MultilabelData(train.features, torch.cat([train.labels[:, :3], torch.ones(100, 1)], 1))
    val = MultilabelData(validation.features,
                         torch.cat([validation.labels[:, :3], torch.ones(30, 1)], 1))
    result = run_baselines(["logreg"], ones, val, val, "macro_f1", seed=0)["logreg"]
    assert result.test["macro_f1"] == pytest.approx(1.0)


def test_unknown_baselines_are_refused():
    data = separable(20, 0)
    with pytest.raises(ValueError, match="expected baselines from"):
        run_baselines(["svm"], data, data, data, "macro_f1", seed=0)
    with pytest.raises(ValueError, match="expected distinct baselines"):
        MultilabelConfig(baselines=("knn", "svm"))
    with pytest.raises(ValueError, match="expected distinct baselines"):
        MultilabelConfig(baselines=("knn", "knn"))


def _result(name: str, val: float, test_f1: float) -> BaselineResult:
    test = {"macro_f1": test_f1, "micro_f1": test_f1, "example_f1": test_f1, "hamming": 0.1}
    return BaselineResult(name, {}, 0.5, val, test)


def test_a_model_worse_than_a_baseline_on_validation_says_so_and_selects_the_baseline():
    baselines = {"knn": _result("knn", 0.60, 0.55), "logreg": _result("logreg", 0.70, 0.66)}
    model_test = {"macro_f1": 0.9, "micro_f1": 0.9, "example_f1": 0.9, "hamming": 0.0}
    lost = compare_on_validation("picnn", 0.65, model_test, baselines, "macro_f1")
    assert lost["model_beats_baselines_on_validation"] is False
    assert lost["best_on_validation"] == "logreg" and lost["best_baseline"] == "logreg"
    assert lost["selected"]["macro_f1"] == 0.66 and "worse than baseline logreg" in lost["verdict"]
    won = compare_on_validation("picnn", 0.70, model_test, baselines, "macro_f1")
    assert won["model_beats_baselines_on_validation"] is True  # ties go to the model
    assert won["selected"] == {"name": "picnn", "val_score": 0.70, **model_test}
    # Hamming loss: lower is better
    hamming = compare_on_validation("picnn", 0.65, model_test, baselines, "hamming")
    assert hamming["best_baseline"] == "knn" and not hamming["model_beats_baselines_on_validation"]
    assert compare_on_validation("picnn", 0.55, model_test, baselines,
                                 "hamming")["model_beats_baselines_on_validation"]
    none = compare_on_validation("ff", 0.5, model_test, {}, "macro_f1")
    assert none["best_baseline"] is None and none["model_beats_baselines_on_validation"]


def test_cli_refuses_an_unknown_baseline_in_one_line(capsys):
    from icnn.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["multilabel", "--train", "a.arff", "--test", "b.arff", "--baselines", "svm"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--baselines: invalid choice: 'svm'" in error

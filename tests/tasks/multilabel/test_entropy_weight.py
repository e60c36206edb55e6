"""The entropy weight: ``argmin f - w H`` by the energy ``f / w``, the warm start kept exact, and
the weight folded into a plain PICNN after training."""

from __future__ import annotations

import pytest
import torch

import icnn
from icnn.tasks.multilabel.config import MultilabelConfig
from icnn.tasks.multilabel.entropy_weight import EntropyWeighted, fold_entropy_weight
from icnn.tasks.multilabel.experiment import load_data, save_model
from icnn.tasks.multilabel.inference import label_scores
from icnn.tasks.multilabel.metrics import best_threshold
from icnn.tasks.multilabel.training import fit
from icnn.tasks.multilabel.warm_start import picnn_from_feedforward

from .test_warm_start import trained_looking_baseline


@pytest.mark.parametrize("weight", [0.25, 4.0])
def test_warm_start_with_an_entropy_weight_still_predicts_the_baseline(weight):
    ff, x = trained_looking_baseline()
    picnn = picnn_from_feedforward(ff, y_hidden=16, z_scale=0.0, linear_scale=weight)
    scores = label_scores(EntropyWeighted(picnn, weight), x, iterations=3)
    with torch.no_grad():
        assert torch.allclose(scores, torch.sigmoid(ff(x)), atol=1e-6)
    # without the weight the same energy is a sharper (w > 1) or flatter sigmoid
    plain = label_scores(picnn, x, iterations=3)
    with torch.no_grad():
        assert torch.allclose(plain, torch.sigmoid(weight * ff(x)), atol=1e-6)


def test_the_weight_minimises_f_minus_w_entropy():
    """The closed form: for f = -a^T y the minimiser of f - w H is sigmoid(a / w)."""
    ff, x = trained_looking_baseline(1)
    picnn = picnn_from_feedforward(ff, y_hidden=8, z_scale=0.0)  # f = -phi^T y
    for weight in (0.5, 2.0):
        scores = label_scores(EntropyWeighted(picnn, weight), x, iterations=3)
        with torch.no_grad():
            assert torch.allclose(scores, torch.sigmoid(ff(x) / weight), atol=1e-6)


def test_folding_divides_the_energy_and_keeps_the_argmin():
    ff, x = trained_looking_baseline(2)
    picnn = picnn_from_feedforward(ff, y_hidden=16, z_scale=0.5, linear_scale=3.0)
    y = torch.rand(x.shape[0], 12, generator=torch.Generator().manual_seed(0))
    weighted = EntropyWeighted(picnn, 3.0)
    with torch.no_grad():
        expected = weighted(x, y).clone()
    solved = label_scores(weighted, x, iterations=5)
    folded = fold_entropy_weight(picnn, 3.0)
    with torch.no_grad():
        assert torch.allclose(folded(x, y), expected, atol=1e-5)
    assert torch.allclose(label_scores(folded, x, iterations=5), solved, atol=1e-5)
    assert weighted.energy_traits().strong_convexity == 0.0 and weighted.energy_traits().convex


def test_bad_weights_are_refused():
    ff, _ = trained_looking_baseline(3)
    picnn = picnn_from_feedforward(ff, y_hidden=4)
    for bad in (0.0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="expected entropy_weight to be a finite number > 0"):
            EntropyWeighted(picnn, bad)
        with pytest.raises(ValueError, match="expected entropy_weight"):
            MultilabelConfig(entropy_weight=bad)
    with pytest.raises(ValueError, match="expected strong_convexity 0 with an entropy_weight"):
        MultilabelConfig(entropy_weight=2.0, strong_convexity=0.1)
    with pytest.raises(ValueError, match="expected linear_scale > 0"):
        picnn_from_feedforward(ff, y_hidden=4, linear_scale=0.0)


def test_a_weighted_run_starts_at_the_baseline_and_saves_a_plain_picnn(data_dir, tmp_path):
    d = data_dir / "emotions"
    common = {"train": str(d / "emotions-train.arff"), "test": str(d / "emotions-test.arff"),
              "labels": 6, "hidden": 32, "y_hidden": 8, "batch_size": 32, "max_train": 200,
              "solver_iters": 3, "threads": 1, "progress": False, "seed": 3}
    ff_config = MultilabelConfig(model="ff", epochs=2, **common)
    train, validation, _ = load_data(ff_config)
    ff, ff_history, ff_epoch = fit(ff_config, train, validation)
    path = save_model(ff, tmp_path / "ff.safetensors", {"seed": 3})
    config = MultilabelConfig(model="picnn", epochs=2, lr=1e-2, ff_checkpoint=str(path),
                              z_scale=0.0, entropy_weight=0.3, freeze_x_path=True, **common)
    model, history, best = fit(config, train, validation)
    assert history[0]["val_example_f1"] == pytest.approx(
        ff_history[ff_epoch - 1]["val_example_f1"], abs=1e-9)
    assert history[1]["val_example_f1"] != history[0]["val_example_f1"]  # it trained
    # the returned PICNN (weight folded in) is plain: its f - H argmin scores the best epoch
    saved = icnn.load(save_model(model, tmp_path / "picnn.safetensors", {}))
    choice = best_threshold(label_scores(saved, validation.features, iterations=3),
                            validation.labels, "example_f1")
    assert choice.score == pytest.approx(history[best]["val_example_f1"], abs=1e-9)

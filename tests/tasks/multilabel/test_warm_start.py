"""Proposition 2 as a warm start: the PICNN starts as the baseline, exactly.

At ``z_scale = 0`` the energy is ``-phi(x)^T y`` and bundle entropy returns ``sigmoid(phi(x))``,
the baseline's probabilities; a small ``z_scale`` stays close; the frozen-x-path wrapper gives
the PICNN's values; and on real data the warm-started run's epoch 0 scores what the baseline
scores on the same validation split.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import icnn
from icnn.tasks.multilabel.config import MultilabelConfig
from icnn.tasks.multilabel.experiment import load_data, save_model
from icnn.tasks.multilabel.frozen_context import PrecomputedContext, precompute_context
from icnn.tasks.multilabel.inference import label_scores
from icnn.tasks.multilabel.models import FeedForward
from icnn.tasks.multilabel.training import fit, load_baseline
from icnn.tasks.multilabel.warm_start import folded_output_layer, picnn_from_feedforward


def trained_looking_baseline(seed: int = 0) -> tuple[FeedForward, torch.Tensor]:
    """A small baseline with non-trivial BatchNorm statistics and affine, and inputs ``x``."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ff = FeedForward(30, 12, hidden=40)
    with torch.no_grad():
        ff.net[2].weight.uniform_(0.5, 2.0, generator=generator)
        ff.net[2].bias.normal_(0.0, 0.3, generator=generator)
    x = torch.randn(64, 30, generator=generator)
    ff.train()
    for _ in range(5):  # running statistics away from (0, 1)
        ff(x + 0.5 * torch.randn(x.shape, generator=generator))
    return ff.eval(), x


def test_batchnorm_folds_exactly_into_the_output_layer():
    ff, x = trained_looking_baseline()
    weight, bias = folded_output_layer(ff)
    hidden = torch.relu(ff.net[0](x))
    with torch.no_grad():
        assert torch.allclose(hidden @ weight.T + bias, ff(x), atol=1e-5)


def test_energy_is_minus_logits_dot_y_and_bundle_entropy_returns_the_sigmoid():
    ff, x = trained_looking_baseline()
    picnn = picnn_from_feedforward(ff, y_hidden=16, z_scale=0.0)
    y = torch.rand(x.shape[0], 12)
    with torch.no_grad():
        logits = ff(x)
        assert torch.allclose(picnn(x, y), -(logits * y).sum(-1), atol=1e-4)
    for iterations in (1, 3):
        scores = label_scores(picnn, x, solver="bundle_entropy", iterations=iterations)
        assert torch.allclose(scores, torch.sigmoid(logits), atol=1e-6)


def test_small_z_scale_stays_close_and_convex():
    ff, x = trained_looking_baseline(1)
    picnn = picnn_from_feedforward(ff, y_hidden=16, z_scale=0.01)
    scores = label_scores(picnn, x, solver="bundle_entropy", iterations=5)
    with torch.no_grad():
        gap = (scores - torch.sigmoid(ff(x))).abs().max()
    assert 0 < gap < 0.02
    report = icnn.check_convexity(picnn, x[:16], n_pairs=16,
                                  generator=torch.Generator().manual_seed(0))
    assert report.ok


def test_precomputed_context_gives_the_picnn_values_and_freezes_the_x_path():
    ff, x = trained_looking_baseline(2)
    picnn = picnn_from_feedforward(ff, y_hidden=16, z_scale=0.5)
    wrapper = PrecomputedContext(picnn)
    context = precompute_context(picnn, x)
    y = torch.rand(x.shape[0], 12)
    assert context.shape == (64, 30 + 40)
    assert torch.allclose(wrapper(context, y), picnn(x, y), atol=1e-5)
    assert not any(p.requires_grad for p in picnn.x_layers.parameters())
    solved = label_scores(wrapper, context, iterations=4)
    assert torch.allclose(solved, label_scores(picnn, x, iterations=4), atol=1e-5)


def test_epoch_zero_scores_like_the_baseline_on_real_data(data_dir, tmp_path):
    d = data_dir / "emotions"
    common = {"train": str(d / "emotions-train.arff"), "test": str(d / "emotions-test.arff"),
              "labels": 6, "hidden": 32, "y_hidden": 8, "batch_size": 32, "max_train": 300,
              "solver_iters": 3, "threads": 1, "progress": False, "seed": 3}
    ff_config = MultilabelConfig(model="ff", epochs=3, **common)
    train, validation, _ = load_data(ff_config)
    ff, ff_history, ff_epoch = fit(ff_config, train, validation)
    path = save_model(ff, tmp_path / "ff.safetensors", {"seed": 3})
    config = MultilabelConfig(model="picnn", epochs=1, lr=1e-3, ff_checkpoint=str(path),
                              z_scale=0.0, freeze_x_path=True, **common)
    _, history, _ = fit(config, train, validation)
    assert history[0]["epoch"] == 0 and history[1]["epoch"] == 1
    ff_best = ff_history[ff_epoch - 1]
    assert history[0]["val_example_f1"] == pytest.approx(ff_best["val_example_f1"], abs=1e-9)
    assert history[0]["val_threshold"] == ff_best["val_threshold"]
    with pytest.raises(ValueError, match="seed 4"):
        load_baseline(dataclasses.replace(config, seed=4), 72, 6)
    with pytest.raises(ValueError, match="'hidden': 64"):
        load_baseline(dataclasses.replace(config, hidden=64), 72, 6)


def test_soft_example_f1_is_the_example_f1_on_hard_labels():
    from icnn.tasks.multilabel.metrics import multilabel_scores
    from icnn.tasks.multilabel.training import soft_example_f1

    generator = torch.Generator().manual_seed(5)
    y_true = (torch.rand(40, 9, generator=generator) < 0.3).float()
    y_pred = (torch.rand(40, 9, generator=generator) < 0.3).float()
    y_true[:, 0] = 1.0  # no example with an empty truth (the soft form gives 0 there too)
    expected = multilabel_scores(y_true, y_pred)["example_f1"]
    assert float(soft_example_f1(y_pred, y_true)) == pytest.approx(expected, abs=1e-6)


def test_convex_path_groups_split_the_parameters_once():
    from icnn.tasks.multilabel.training import convex_path_groups

    ff, _ = trained_looking_baseline(3)
    picnn = picnn_from_feedforward(ff, y_hidden=8)
    rest, convex = convex_path_groups(picnn, 1e-3)
    assert convex["lr"] == 1e-3 and "lr" not in rest
    ids = [id(p) for group in (rest, convex) for p in group["params"]]
    assert sorted(ids) == sorted(id(p) for p in picnn.parameters())
    assert any(p is picnn.x_layers[0].weight for p in rest["params"])

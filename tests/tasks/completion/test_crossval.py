"""Folds grouped by person and the cross-validated choice of the baselines, against a hand
computation (numpy normal equations fold by fold) on a tiny image set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from icnn.tasks.completion.baselines import (
    BaselineResult,
    RegressorConfig,
    cross_fitted,
    predict_anchor,
    refit,
    ridge_anchor,
)
from icnn.tasks.completion.crossval import cross_validate, fit_baselines_cv
from icnn.tasks.completion.data import (
    concatenate,
    hold_out,
    make_completion_data,
    mirrored,
    paper_mse,
    subset,
)
from icnn.tasks.completion.folds import (
    clustered_mean,
    default_group_size,
    group_folds,
    held_out_size,
)


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    images = 0.2 + 0.6 * torch.rand(14, 4, 6, generator=generator)
    return make_completion_data(images, n_train=8)


def test_group_folds_never_split_a_person():
    blocks = group_folds(35, 3, group_size=10)   # 4 people, the last with 5 images
    assert [b.tolist() for b in blocks] == [list(range(20)), list(range(20, 30)),
                                            list(range(30, 35))]
    blocks = group_folds(350, 5, group_size=10)
    assert [len(b) for b in blocks] == [70] * 5
    assert all(int(b[0]) % 10 == 0 for b in blocks)
    torch.testing.assert_close(torch.cat(blocks), torch.arange(350))
    # groups of one: plain contiguous blocks (what a .npy stack gets)
    assert [len(b) for b in group_folds(16, 5)] == [4, 3, 3, 3, 3]
    with pytest.raises(ValueError, match=r"expected folds in \[2, 4\]"):
        group_folds(35, 5, group_size=10)
    with pytest.raises(ValueError, match="expected a group size >= 1"):
        group_folds(10, 2, group_size=0)
    with pytest.raises(ValueError, match="expected an int folds"):
        group_folds(10, 2.0)


def test_held_out_size_is_whole_people_and_the_group_default():
    assert held_out_size(80, 0.2, 10) == 20       # small faces: 1.6 people -> 2
    assert held_out_size(350, 0.2, 10) == 70      # Olivetti: 7 people
    assert held_out_size(80, 0.01, 10) == 10      # at least one person
    assert held_out_size(35, 0.25, 10) == 5       # one group: the last, smaller one
    assert held_out_size(16, 0.25, 1) == 4
    assert default_group_size("faces/olivettifaces.mat", "paper") == 10
    assert default_group_size("faces.npy", "small-faces") == 10
    assert default_group_size("faces.npy", "paper") == 1


def _ridge_numpy(x, y, alpha):
    xc, yc = x - x.mean(0), y - y.mean(0)
    weight = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return weight, y.mean(0) - x.mean(0) @ weight


@pytest.mark.parametrize("flip", [False, True])
def test_cross_validated_ridge_matches_a_hand_computation(data, flip):
    train = data.train
    blocks = group_folds(len(train), 3, group_size=2)   # people {0,1}, {2}, {3}
    alphas = (1e-3, 0.1, 10.0)
    candidates = [({"alpha": a}, lambda s, a=a: ridge_anchor(s, a)) for a in alphas]
    best, grid, prediction = cross_validate(candidates, train, blocks, flip=flip)
    x = train.x.flatten(1).double().numpy()
    y = train.y.flatten(1).double().numpy()
    xm = mirrored(train).x.flatten(1).double().numpy()
    ym = mirrored(train).y.flatten(1).double().numpy()
    expected_mse, expected_prediction = [], []
    for alpha in alphas:
        out = np.empty_like(y)
        for block in ([0, 1, 2, 3], [4, 5], [6, 7]):
            rest = [i for i in range(8) if i not in block]
            fit_x, fit_y = x[rest], y[rest]
            if flip:
                fit_x, fit_y = np.concatenate([fit_x, xm[rest]]), np.concatenate([fit_y, ym[rest]])
            weight, bias = _ridge_numpy(fit_x, fit_y, alpha)
            out[block] = np.clip(x[block] @ weight + bias, 0, 1)
        expected_mse.append(float(np.mean((255 * (out - y)) ** 2)))
        expected_prediction.append(out)
    np.testing.assert_allclose([g["cv_mse"] for g in grid], expected_mse, rtol=1e-4)
    assert best == int(np.argmin(expected_mse))
    assert grid[best]["alpha"] == alphas[best]
    np.testing.assert_allclose(prediction.flatten(1).double().numpy(), expected_prediction[best],
                               atol=1e-5)


def test_fit_baselines_cv_refits_on_everything_and_scores_the_part_on_validation(data):
    everything = data.train
    part = hold_out(data, 2)
    blocks = group_folds(len(everything), 4, group_size=2)
    results = fit_baselines_cv(everything, part.train, part.validation, data.test,
                               ("ridge", "kernel_ridge"), blocks, flip=True)
    assert set(results) == {"mean_image", "ridge", "kernel_ridge", "blend"}
    ridge = results["ridge"]
    assert ridge.cv_mse == min(g["cv_mse"] for g in ridge.grid) == ridge.selection_mse
    assert len(ridge.grid) == 7 and len(results["kernel_ridge"].grid) == 35
    # the reported ridge is fit on every training image and its mirrors
    full = ridge_anchor(concatenate(everything, mirrored(everything)), ridge.params["alpha"])
    torch.testing.assert_close(ridge.anchor.weight, full.weight)
    assert ridge.test_mse == pytest.approx(paper_mse(predict_anchor(full, data.test), data.test))
    # its validation MSE: the same alpha fit on the training part only
    fit_part = ridge_anchor(concatenate(part.train, mirrored(part.train)), ridge.params["alpha"])
    assert ridge.val_mse == pytest.approx(
        paper_mse(predict_anchor(fit_part, part.validation), part.validation), rel=1e-6)
    # the blend's cross-validation MSE is the one of the mean of the two out-of-fold predictions
    kernel = results["kernel_ridge"]
    oof = [cross_fitted(r, everything, flip=True, folds=4, group_size=2)[:len(everything)]
           for r in (ridge, kernel)]
    assert results["blend"].cv_mse == pytest.approx(paper_mse((oof[0] + oof[1]) / 2, everything),
                                                    rel=1e-5)
    # the mean image: mean of the other folds' images, no mirrors
    mean = results["mean_image"]
    expected = torch.cat([everything.y[torch.cat([b for b in blocks if b is not block])]
                          .mean(0, keepdim=True).expand(len(block), *everything.y.shape[1:])
                          for block in blocks])
    assert mean.cv_mse == pytest.approx(paper_mse(expected, everything), rel=1e-6)
    with pytest.raises(ValueError, match="expected a regressor configuration"):
        fit_baselines_cv(everything, part.train, part.validation, data.test, ("cnn",), blocks)
    with pytest.raises(ValueError, match="expected at least two blocks partitioning"):
        fit_baselines_cv(everything, part.train, part.validation, data.test, ("ridge",),
                         blocks[:2])
    assert isinstance(RegressorConfig(), RegressorConfig)


def test_cross_fitted_with_people_leaves_the_whole_person_out(data):
    result = BaselineResult("ridge", ridge_anchor(data.train, 0.1), {"alpha": 0.1}, None, 0.0,
                            0.0)
    values = cross_fitted(result, data.train, flip=False, folds=2, group_size=3)
    # groups {0,1,2}, {3,4,5}, {6,7}: folds [0..5] and [6, 7]
    first, rest = torch.arange(6), torch.arange(6, 8)
    expected = predict_anchor(refit(result, subset(data.train, rest)), subset(data.train, first))
    torch.testing.assert_close(values[first], expected)


def test_clustered_mean_uses_the_spread_of_the_people():
    # images 60..79 of the stack: people 6 and 7 (groups of ten)
    gain = torch.cat([torch.full((10,), 30.0), torch.full((10,), 10.0)])
    gain[0] = 40.0
    mean, stderr, per_person = clustered_mean(gain, 60, 10)
    assert mean == pytest.approx(float(gain.mean()))
    torch.testing.assert_close(per_person, torch.tensor([31.0, 10.0]))
    assert stderr == pytest.approx(float(torch.tensor([31.0, 10.0]).std()) / 2 ** 0.5)
    # per image (groups of one) the standard error is far smaller: images are not independent
    assert clustered_mean(gain, 60, 1)[1] == pytest.approx(float(gain.std()) / 20 ** 0.5)
    assert clustered_mean(gain, 60, 1)[1] < stderr / 3
    # a hold-out that starts inside a person: 65..84 -> people 6 (5 images), 7, 8 (5 images)
    assert len(clustered_mean(gain, 65, 10)[2]) == 3
    assert clustered_mean(gain[:10], 60, 10)[1] == math.inf
    with pytest.raises(ValueError, match="expected a non-empty 1-D tensor"):
        clustered_mean(torch.zeros(0), 0, 10)

"""Completion baselines against closed forms: ridge (normal equations), RBF kernel ridge, the
out-of-fold anchor values, selection on validation, the protocols and the scaled geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from icnn.tasks.completion.baselines import (
    ConvRegressor,
    RegressorConfig,
    conv_regressor_at,
    cross_fitted,
    fit_baselines,
    fit_kernel_ridge,
    fit_ridge,
    kernel_anchor,
    load_anchor,
    predict_anchor,
    refit,
    ridge_anchor,
    save_anchor,
)
from icnn.tasks.completion.data import (
    concatenate,
    make_completion_data,
    mirrored,
    paper_mse,
    subset,
)
from icnn.tasks.completion.protocols import apply_protocol, scale_geometry


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(0)
    images = 0.2 + 0.6 * torch.rand(30, 4, 6, generator=generator)
    return make_completion_data(images, n_train=20)


def test_ridge_matches_the_normal_equations(data):
    fit_on = data.train
    alpha = 0.3
    anchor = ridge_anchor(fit_on, alpha)
    x = fit_on.x.flatten(1).double().numpy()
    y = fit_on.y.flatten(1).double().numpy()
    xc, yc = x - x.mean(0), y - y.mean(0)
    weight = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    bias = y.mean(0) - x.mean(0) @ weight
    np.testing.assert_allclose(anchor.weight.double().numpy(), weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(anchor.bias.double().numpy(), bias, rtol=1e-4, atol=1e-5)
    prediction = predict_anchor(anchor, data.test).double().numpy().reshape(len(data.test), -1)
    expected = np.clip(data.test.x.flatten(1).double().numpy() @ weight + bias, 0, 1)
    np.testing.assert_allclose(prediction, expected, atol=1e-5)


def test_kernel_ridge_matches_its_closed_form(data):
    fit_on = data.train
    alpha, gamma = 0.1, 0.5
    anchor = kernel_anchor(fit_on, alpha, gamma)
    x = fit_on.x.flatten(1).double()
    y = fit_on.y.flatten(1).double()
    kernel = torch.exp(-gamma * torch.cdist(x, x).square())
    dual = torch.linalg.solve(kernel + alpha * torch.eye(len(x), dtype=x.dtype), y - y.mean(0))
    new = data.test.x.flatten(1).double()
    expected = (torch.exp(-gamma * torch.cdist(new, x).square()) @ dual + y.mean(0)).clamp(0, 1)
    prediction = predict_anchor(anchor, data.test).double().flatten(1)
    torch.testing.assert_close(prediction, expected, atol=1e-5, rtol=1e-5)


def test_ridge_and_kernel_ridge_choose_the_best_validation_candidate(data):
    validation, test = subset(data.test, torch.arange(5)), subset(data.test, torch.arange(5, 10))
    for result in (fit_ridge(data.train, validation, test, alphas=(1e-3, 1.0, 1e3)),
                   fit_kernel_ridge(data.train, validation, test, alphas=(1e-2, 1.0),
                                    gamma_factors=(0.5, 2.0))):
        scores = [g["val_mse"] for g in result.grid]
        assert result.val_mse == min(scores)
        assert len(scores) == (3 if result.name == "ridge" else 4)
        assert math.isclose(result.test_mse, paper_mse(predict_anchor(result.anchor, test), test))
        assert math.isclose(result.val_mse,
                            paper_mse(predict_anchor(result.anchor, validation), validation))


def test_cross_fitted_values_come_from_the_other_blocks(data):
    result = fit_ridge(data.train, data.test, data.test, alphas=(0.1,), flip=False)
    values = cross_fitted(result, data.train, flip=False, folds=4)
    assert values.shape == data.train.y.shape
    block = torch.arange(5, 10)   # the second of four contiguous blocks of 20
    rest = torch.cat([torch.arange(5), torch.arange(10, 20)])
    expected = predict_anchor(refit(result, subset(data.train, rest)), subset(data.train, block))
    torch.testing.assert_close(values[block], expected)
    # out of fold is worse than in sample (the in-sample fit sees the answer)
    in_sample = predict_anchor(result.anchor, data.train)
    assert paper_mse(values, data.train) > paper_mse(in_sample, data.train) + 1.0
    with_mirrors = cross_fitted(result, data.train, flip=True, folds=4)
    assert with_mirrors.shape == (40, *data.train.y.shape[1:])
    with pytest.raises(ValueError, match="expected folds in"):
        cross_fitted(result, data.train, folds=1)


def test_small_faces_protocol_and_scaled_geometry():
    images = torch.rand(400, 64, 64)
    small, n_train = apply_protocol(images, "small-faces", None)
    assert small.shape == (130, 24, 24) and n_train == 80
    torch.testing.assert_close(small[0, 0, 0], images[0, :3, :3].mean(), atol=1e-3, rtol=0)
    assert apply_protocol(images, "paper", None)[1] == 350
    with pytest.raises(ValueError, match="expected no --train"):
        apply_protocol(images, "small-faces", 100)
    with pytest.raises(ValueError, match="expected the 400 Olivetti images"):
        apply_protocol(images[:100], "small-faces", None)
    with pytest.raises(ValueError, match="expected a protocol"):
        apply_protocol(images, "tiny", None)
    assert scale_geometry((8, 4, 3), (4, 2, 1), (64, 32)) == ((8, 4, 3), (4, 2, 1))
    assert scale_geometry((8, 4, 3), (4, 2, 1), (24, 12)) == ((3, 2, 2), (2, 1, 1))


def test_blend_is_the_mean_of_ridge_and_kernel_ridge_and_refits_both(data):
    validation, test = subset(data.test, torch.arange(5)), subset(data.test, torch.arange(5, 10))
    results = fit_baselines(data.train, validation, test, ("ridge", "kernel_ridge"),
                            RegressorConfig())
    assert set(results) == {"mean_image", "ridge", "kernel_ridge", "blend"}
    expected = (predict_anchor(results["ridge"].anchor, test)
                + predict_anchor(results["kernel_ridge"].anchor, test)) / 2
    torch.testing.assert_close(predict_anchor(results["blend"].anchor, test), expected)
    blend = results["blend"]
    assert blend.params == {"ridge": results["ridge"].params,
                            "kernel_ridge": results["kernel_ridge"].params}
    refit_all = refit(blend, concatenate(data.train, mirrored(data.train)))
    torch.testing.assert_close(predict_anchor(refit_all, test), expected, atol=1e-5, rtol=1e-5)
    assert cross_fitted(blend, data.train, folds=4).shape == (40, *data.train.y.shape[1:])
    with pytest.raises(ValueError, match="expected baselines among"):
        fit_baselines(data.train, validation, test, ("lasso",), RegressorConfig())


def test_missing_scikit_learn_names_the_distribution(without_sklearn):
    from icnn.tasks.completion import baselines

    with pytest.raises(ValueError, match=r"pip install 'icnn-torch\[data\]'"):
        baselines._sklearn()


def test_the_cnn_baseline_round_trips_through_save_and_load_anchor(tmp_path):
    images = 0.2 + 0.6 * torch.rand(14, 8, 8, generator=torch.Generator().manual_seed(3))
    data = make_completion_data(images, n_train=10)
    config = RegressorConfig(channels=(4, 4), kernel_sizes=(3, 3), strides=(2, 1), dense=(8,),
                             epochs=2, batch_size=5)
    result = conv_regressor_at(data.train, data.test, config, 2)
    path = tmp_path / "cnn.safetensors"
    save_anchor(result.anchor, "cnn", result.params, path)
    loaded = load_anchor(path)
    assert isinstance(loaded, ConvRegressor) and not loaded.training
    assert torch.equal(predict_anchor(loaded, data.test), predict_anchor(result.anchor, data.test))
    assert paper_mse(predict_anchor(loaded, data.test), data.test) == result.test_mse
    with pytest.raises(ValueError, match="expected a ConvRegressor for the cnn baseline"):
        save_anchor(ridge_anchor(data.train, 1.0), "cnn", {}, tmp_path / "bad.safetensors")

"""The anchored completion energy: honest traits, convexity, start at the anchor, and the run's
fallback to the anchor when validation says the energy does not beat it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icnn.cli import main
from icnn.nn.conv import ConvPICNN
from icnn.tasks.completion.anchor import AnchoredEnergy
from icnn.tasks.completion.baselines import MeanAnchor
from icnn.tasks.completion.energy import CompletionEnergy

TINY_NET = ["--channels", "4,4", "--kernel-sizes", "3,3", "--strides", "2,1", "--dense", "8",
            "--no-scale-geometry"]


def _energy(weight: float = 3.0) -> AnchoredEnergy:
    torch.manual_seed(0)
    inner = CompletionEnergy(ConvPICNN((1, 6, 4), (1, 6, 4), channels=(4, 4), kernel_sizes=(3, 3),
                                       strides=(2, 1), dense=(8,)), scale=5.0)
    return AnchoredEnergy(inner, MeanAnchor(torch.full((1, 1, 6, 4), 0.4)), weight)


def test_traits_are_the_picnn_plus_a_strongly_convex_quadratic():
    energy = _energy(3.0)
    traits = energy.energy_traits()
    inner = energy.inner.energy_traits()
    assert traits.convex and inner.convex
    assert traits.strong_convexity == pytest.approx(inner.strong_convexity + 3.0)
    assert traits.curvature == "smooth" and traits.kinks  # the ReLU PICNN's kinks remain
    assert energy.context_shape == (energy.inner.context_shape[0] + 24,)


def test_energy_is_w_strongly_convex_along_random_segments_and_starts_at_the_anchor():
    energy = _energy(3.0)
    x = torch.rand(16, 1, 6, 4)
    features = energy.features(x)
    torch.testing.assert_close(energy.start(features), torch.full((16, 1, 6, 4), 0.4))
    a, b = torch.rand(16, 1, 6, 4), torch.rand(16, 1, 6, 4)
    with torch.no_grad():
        middle = energy.energy(features, (a + b) / 2)
        chord = (energy.energy(features, a) + energy.energy(features, b)) / 2
        gap = 3.0 / 8 * (a - b).square().flatten(1).sum(1)   # (mu/2) t (1-t) ||a-b||^2
        assert bool((middle <= chord - gap + 1e-4).all())
        # the anchor term vanishes at g: E(g) is the PICNN's energy alone
        g = energy.start(features)
        inner = energy.inner.energy(features[:, :energy.n_inner], g)
        torch.testing.assert_close(energy.energy(features, g), inner)
    values = torch.rand(16, 1, 6, 4)
    torch.testing.assert_close(energy.start(energy.features(x, values)), values)
    with pytest.raises(ValueError, match="expected anchor values of shape"):
        energy.features(x, values[:, :, :3])


def test_bad_anchor_weight_and_shape_are_refused():
    energy = _energy()
    with pytest.raises(ValueError, match="anchor weight"):
        AnchoredEnergy(energy.inner, energy.anchor, 0.0)
    with pytest.raises(ValueError, match="expected an anchor predicting y of shape"):
        AnchoredEnergy(energy.inner, MeanAnchor(torch.zeros(1, 1, 3, 4)), 1.0)


@pytest.fixture
def symmetric_faces(tmp_path):
    """Left-right symmetric 8x8 images: the left half is exactly the mirrored right half, so
    ridge regression predicts it almost perfectly and no energy can beat it on validation."""
    rng = np.random.default_rng(1)
    half = rng.uniform(0.1, 0.9, size=(100, 8, 4))
    path = tmp_path / "symmetric.npy"
    np.save(path, np.concatenate([half, half[:, :, ::-1]], axis=2).astype(np.float32))
    return path


def test_anchored_run_falls_back_to_its_anchor_and_says_so(symmetric_faces, tmp_path):
    out = tmp_path / "run"
    code = main(["completion", "--images", str(symmetric_faces), "--train", "90", "--out",
                 str(out), "--epochs", "1", "--batch-size", "16", "--baselines", "ridge",
                 "--validation-fraction", "0.1", "--show", "2", "--no-progress", *TINY_NET])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    record = metrics["methods"]["anchored"]
    assert record["anchor"] == "ridge"
    assert record["anchor_val_mse"] < 1.0   # ridge is nearly exact here
    # the verdict compares the energy with every baseline measured; the best on validation ships
    assert record["fallback"] is True and record["shipped"] == record["selected"] == "ridge"
    assert record["best_on_validation"] == "ridge"
    assert set(record["comparisons"]) == {"mean_image", "ridge"}
    assert record["comparisons"]["ridge"]["beaten"] is False
    assert (out / "anchored" / "shipped.safetensors").is_file()
    assert record["energy_val_mse"] >= record["anchor_val_mse"]
    assert record["val_gain"] <= 2.0 * record["val_gain_stderr"]
    assert metrics["test_mse"]["anchored"] == record["anchor_test_mse"]
    assert metrics["test_mse"]["anchored"] == metrics["baselines"]["ridge"]
    assert (out / "anchored" / "model.safetensors").is_file()

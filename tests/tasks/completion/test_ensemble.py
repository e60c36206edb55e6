"""The completion ensemble: the mean of its members' energies, convex, solved as one problem."""

from __future__ import annotations

import pytest
import torch

import icnn
from icnn.nn.conv import ConvPICNN
from icnn.tasks.completion.energy import CompletionEnergy
from icnn.tasks.completion.ensemble import CompletionEnsemble

D = torch.float64
X_SHAPE, Y_SHAPE = (1, 8, 4), (1, 8, 4)


def member(seed: int, scale: float) -> CompletionEnergy:
    torch.manual_seed(seed)
    net = ConvPICNN(X_SHAPE, Y_SHAPE, channels=(3, 3), kernel_sizes=(3, 3), strides=(2, 1),
                    dense=(4,), dtype=D)
    return CompletionEnergy(net, scale)


def test_energy_is_the_mean_of_the_members_energies():
    """Against a reference that packs nothing: ``mean_k s_k f_k(x, y)`` from each member's
    ConvPICNN on the raw images (``tests/nn/test_conv.py`` checks that one against eq. (3)), with
    the scales as given; ``condition``'s ``index`` must pick the rows of every member's features."""
    scales = (2.0, 5.0, 1.0)
    members = [member(seed, scale) for seed, scale in enumerate(scales)]
    ensemble = CompletionEnsemble(members)

    def reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(s * m.model(x, y) for s, m in zip(scales, members, strict=True)) / len(members)

    x, y = torch.rand(4, *X_SHAPE, dtype=D), torch.rand(4, *Y_SHAPE, dtype=D)
    features = ensemble.features(x)
    assert features.shape == (4, *ensemble.context_shape)
    expected = reference(x, y)
    torch.testing.assert_close(ensemble(features, y), expected)
    energy = ensemble.condition(features)
    torch.testing.assert_close(energy(y), expected)
    for index in (torch.tensor([2, 0]), torch.tensor([3, 3, 1])):
        y_picked = torch.rand(len(index), *Y_SHAPE, dtype=D)
        torch.testing.assert_close(energy(y_picked, index), reference(x[index], y_picked))


def test_ensemble_is_convex_and_its_argmin_is_optimal():
    ensemble = CompletionEnsemble([member(0, 3.0), member(1, 3.0)])
    x = torch.rand(3, *X_SHAPE, dtype=D)
    features = ensemble.features(x).detach()
    assert ensemble.is_convex
    pairs = ensemble.features(torch.rand(64, *X_SHAPE, dtype=D)).detach()
    assert icnn.check_convexity(ensemble, pairs, n_pairs=64).ok
    result = icnn.argmin(ensemble, features, domain=icnn.Box(0.0, 1.0), method="pgd",
                         max_iter=500, tol=1e-9)
    with torch.no_grad():
        best = ensemble(features, result.y)
        for _ in range(20):
            other = (result.y + 0.05 * torch.randn_like(result.y)).clamp(0.0, 1.0)
            assert bool((ensemble(features, other) >= best - 1e-9).all())


def test_members_must_share_the_y_shape():
    torch.manual_seed(0)
    other = CompletionEnergy(ConvPICNN((1, 8, 8), (1, 8, 8), channels=(3,), kernel_sizes=(3,),
                                       strides=(2,), dense=(), dtype=D), 1.0)
    with pytest.raises(ValueError, match="one y shape"):
        CompletionEnsemble([member(0, 1.0), other])
    with pytest.raises(ValueError, match="at least one"):
        CompletionEnsemble([])

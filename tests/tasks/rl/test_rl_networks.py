"""MLP helper and target-network updates: θ' ← τ θ + (1 − τ) θ' exactly."""

import pytest
import torch
from torch import nn

from icnn.tasks.rl.networks import frozen_copy, hard_update_, mlp, soft_update_


def pair(seed_target=0, seed_source=1):
    torch.manual_seed(seed_target)
    target = mlp(3, (5, 4), 2)
    torch.manual_seed(seed_source)
    source = mlp(3, (5, 4), 2, final_init_scale=None)
    return target, source


def test_mlp_maps_batch_by_in_dim_to_batch_by_out_dim():
    net = mlp(3, (8, 8), 2, output_activation=nn.Tanh)
    assert net(torch.randn(5, 3)).shape == (5, 2)
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [8, 8, 2]


def test_mlp_last_layer_starts_small():
    last = mlp(3, (8,), 2, final_init_scale=3e-3)[-1]
    assert last.weight.abs().max() <= 3e-3 and last.bias.abs().max() <= 3e-3


def test_soft_update_is_polyak_averaging():
    target, source = pair()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    soft_update_(target, source, tau=0.1)
    for key, value in target.state_dict().items():
        expected = 0.1 * source.state_dict()[key] + 0.9 * before[key]
        assert torch.allclose(value, expected, atol=1e-7), key


def test_soft_update_with_tau_one_copies_and_with_tau_zero_keeps():
    target, source = pair()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    soft_update_(target, source, tau=0.0)
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())
    soft_update_(target, source, tau=1.0)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_repeated_soft_updates_converge_to_the_source():
    target, source = pair()
    gap = (target[0].weight - source[0].weight).abs().max().item()
    for _ in range(10):
        soft_update_(target, source, tau=0.5)
    assert (target[0].weight - source[0].weight).abs().max().item() == pytest.approx(
        gap * 0.5**10, rel=1e-4
    )


def test_hard_update_copies_everything():
    target, source = pair()
    hard_update_(target, source)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_updates_reject_bad_tau_and_mismatched_networks():
    target, source = pair()
    with pytest.raises(ValueError, match="tau in"):
        soft_update_(target, source, tau=1.5)
    with pytest.raises(ValueError, match="same structure"):
        soft_update_(mlp(3, (5,), 2), source, tau=0.1)


def test_frozen_copy_is_independent_and_needs_no_grad():
    source = mlp(3, (4,), 1)
    target = frozen_copy(source)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        source[0].weight.add_(1.0)
    assert not torch.equal(target[0].weight, source[0].weight)

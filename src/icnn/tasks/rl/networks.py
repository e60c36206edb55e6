"""Small network helpers shared by the agents: MLPs and target-network updates."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    *,
    activation: type[nn.Module] = nn.ReLU,
    output_activation: type[nn.Module] | None = None,
    final_init_scale: float | None = 3e-3,
) -> nn.Sequential:
    """A fully connected network ``in_dim → hidden[0] → … → out_dim``.

    Shape: input ``(batch, in_dim)`` → output ``(batch, out_dim)``.
    ``final_init_scale`` draws the last layer from U(−scale, scale), as DDPG does
    (Lillicrap et al. 2016, 3e-3), so initial outputs are near zero; ``None`` keeps PyTorch's init.
    """
    if in_dim < 1 or out_dim < 1 or any(width < 1 for width in hidden):
        raise ValueError(
            f"expected positive sizes, got in_dim={in_dim}, hidden={tuple(hidden)}, out_dim={out_dim}"
        )
    layers: list[nn.Module] = []
    width = in_dim
    for next_width in hidden:
        layers += [nn.Linear(width, next_width), activation()]
        width = next_width
    last = nn.Linear(width, out_dim)
    if final_init_scale is not None:
        nn.init.uniform_(last.weight, -final_init_scale, final_init_scale)
        nn.init.uniform_(last.bias, -final_init_scale, final_init_scale)
    layers.append(last)
    if output_activation is not None:
        layers.append(output_activation())
    return nn.Sequential(*layers)


def _paired_tensors(target: nn.Module, source: nn.Module):
    target_state, source_state = target.state_dict(), source.state_dict()
    if target_state.keys() != source_state.keys():
        raise ValueError(
            "expected target and source with the same structure, got differing keys: "
            f"{sorted(target_state.keys() ^ source_state.keys())}"
        )
    return target_state, source_state


@torch.no_grad()
def soft_update_(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging in place: ``θ' ← τ θ + (1 − τ) θ'`` (Algorithm 3, step 4).

    Floating-point parameters and buffers are averaged; integer buffers are copied.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"expected tau in [0, 1], got {tau}")
    target_state, source_state = _paired_tensors(target, source)
    for name, target_tensor in target_state.items():
        if target_tensor.is_floating_point():
            target_tensor.lerp_(source_state[name], tau)
        else:
            target_tensor.copy_(source_state[name])


@torch.no_grad()
def hard_update_(target: nn.Module, source: nn.Module) -> None:
    """Copy every parameter and buffer of ``source`` into ``target`` (``θ' ← θ``)."""
    target_state, source_state = _paired_tensors(target, source)
    for name, target_tensor in target_state.items():
        target_tensor.copy_(source_state[name])


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with gradients off, to serve as its target network."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target

"""Replay buffer of transitions ``(s, a, r, s', terminated)`` with seeded uniform sampling."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A minibatch of transitions, every field a tensor on the buffer's device.

    Shape:
        obs: (batch, obs_dim); action: (batch, act_dim), in the agent's [-1, 1] scale;
        reward: (batch,); next_obs: (batch, obs_dim);
        terminated: (batch,), 1.0 where s' is terminal, so targets read
        ``r + gamma * (1 - terminated) * V(s')``.
    """

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """A ring buffer of preallocated tensors; sampling is uniform, with replacement.

    Each entry is one whole transition, so ``next_obs`` and ``terminated`` belong to the same
    step as ``obs`` and ``action``. Only ``terminated`` (a true terminal state) stops the
    bootstrap; a time-limit ``truncated`` does not, since ``s'`` is still a valid state.
    The reference code (from SimonRamstedt/ddpg) stored a flag per step and read the *next*
    entry's flag, an off-by-one that never samples terminal transitions; storing the
    transition whole avoids it.

    Args:
        capacity: maximum number of transitions; older ones are overwritten first.
        obs_dim: observation size. act_dim: action size.
        device: where the storage (and so every batch) lives.
        seed: seeds the private ``torch.Generator`` that draws the sample indices.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        *,
        device: str | torch.device = "cpu",
        seed: int | None = None,
    ) -> None:
        for name, value in (("capacity", capacity), ("obs_dim", obs_dim), ("act_dim", act_dim)):
            if int(value) != value or value < 1:
                raise ValueError(f"expected {name} to be a positive integer, got {value!r}")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.obs = torch.zeros(capacity, obs_dim, device=self.device)
        self.action = torch.zeros(capacity, act_dim, device=self.device)
        self.reward = torch.zeros(capacity, device=self.device)
        self.next_obs = torch.zeros(capacity, obs_dim, device=self.device)
        self.terminated = torch.zeros(capacity, device=self.device)
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
        self.position = 0  # index the next transition is written to
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: torch.Tensor | np.ndarray,
        action: torch.Tensor | np.ndarray,
        reward: float,
        next_obs: torch.Tensor | np.ndarray,
        terminated: bool,
    ) -> None:
        """Store one transition: ``obs, next_obs: (obs_dim,)``, ``action: (act_dim,)``."""
        i = self.position
        self.obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.action[i] = torch.as_tensor(action, dtype=torch.float32)
        self.reward[i] = float(reward)
        self.next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.terminated[i] = float(bool(terminated))
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """Draw ``batch_size`` transitions uniformly (with replacement) from those stored."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        if batch_size < 1:
            raise ValueError(f"expected batch_size >= 1, got {batch_size}")
        index = torch.randint(0, self.size, (batch_size,), generator=self.generator)
        index = index.to(self.device)
        return Batch(
            obs=self.obs[index],
            action=self.action[index],
            reward=self.reward[index],
            next_obs=self.next_obs[index],
            terminated=self.terminated[index],
        )

"""RL test fixtures: single-threaded runs (small nets) and random replay batches."""

from collections.abc import Callable

import pytest
import torch

from icnn.tasks.rl.buffer import Batch


@pytest.fixture(autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def random_batch() -> Callable[..., Batch]:
    """A factory of seeded random transitions, actions in [-1, 1]."""

    def make(obs_dim: int = 3, act_dim: int = 2, size: int = 64, seed: int = 0,
             terminal_fraction: float = 0.1) -> Batch:
        generator = torch.Generator().manual_seed(seed)
        return Batch(
            obs=torch.randn(size, obs_dim, generator=generator),
            action=torch.rand(size, act_dim, generator=generator) * 2 - 1,
            reward=torch.randn(size, generator=generator),
            next_obs=torch.randn(size, obs_dim, generator=generator),
            terminated=(torch.rand(size, generator=generator) < terminal_fraction).float(),
        )

    return make

"""ReplayBuffer: whole transitions in a ring, seeded uniform sampling, terminal flags kept in place."""

import pytest
import torch

from icnn.tasks.rl.buffer import ReplayBuffer


def fill(buffer: ReplayBuffer, count: int, terminal_at: int | None = None) -> None:
    """Transition i has obs = i, action = -i/100, reward = 10 i, next_obs = i + 1."""
    for i in range(count):
        buffer.add(
            torch.full((buffer.obs.shape[1],), float(i)),
            torch.full((buffer.action.shape[1],), -i / 100),
            10.0 * i,
            torch.full((buffer.obs.shape[1],), float(i + 1)),
            terminated=(i == terminal_at),
        )


def test_sample_has_the_documented_shapes():
    buffer = ReplayBuffer(100, obs_dim=3, act_dim=2, seed=0)
    fill(buffer, 10)
    batch = buffer.sample(7)
    assert batch.obs.shape == (7, 3) and batch.next_obs.shape == (7, 3)
    assert batch.action.shape == (7, 2)
    assert batch.reward.shape == (7,) and batch.terminated.shape == (7,)
    assert batch.obs.dtype == torch.float32


def test_each_sampled_row_is_one_whole_transition():
    buffer = ReplayBuffer(100, obs_dim=2, act_dim=1, seed=0)
    fill(buffer, 20)
    batch = buffer.sample(64)
    step = batch.obs[:, 0]
    assert torch.equal(batch.next_obs[:, 0], step + 1)
    assert torch.allclose(batch.action[:, 0], -step / 100)
    assert torch.equal(batch.reward, 10 * step)


def test_ring_overwrites_the_oldest_transitions():
    buffer = ReplayBuffer(3, obs_dim=1, act_dim=1, seed=0)
    fill(buffer, 5)
    assert len(buffer) == 3
    assert buffer.obs[:, 0].tolist() == [3.0, 4.0, 2.0]  # 0 and 1 were overwritten
    assert set(buffer.sample(200).obs[:, 0].tolist()) == {2.0, 3.0, 4.0}


def test_terminated_flag_stays_with_its_own_transition():
    # The reference buffer read the next entry's flag and never sampled terminal transitions.
    buffer = ReplayBuffer(10, obs_dim=1, act_dim=1, seed=0)
    fill(buffer, 5, terminal_at=2)
    batch = buffer.sample(500)
    terminal_rows = batch.terminated == 1.0
    assert terminal_rows.any(), "terminal transitions must be sampled"
    assert set(batch.obs[terminal_rows, 0].tolist()) == {2.0}
    assert set(batch.obs[~terminal_rows, 0].tolist()) == {0.0, 1.0, 3.0, 4.0}


def test_sampling_is_uniform_over_stored_transitions():
    buffer = ReplayBuffer(10, obs_dim=1, act_dim=1, seed=1)
    fill(buffer, 4)
    counts = torch.bincount(buffer.sample(40_000).obs[:, 0].long(), minlength=4)
    assert torch.allclose(counts / 40_000, torch.full((4,), 0.25), atol=0.01)


def test_same_seed_draws_the_same_batches():
    first, second, other = (ReplayBuffer(50, 1, 1, seed=s) for s in (7, 7, 8))
    for buffer in (first, second, other):
        fill(buffer, 50)
    assert torch.equal(first.sample(32).obs, second.sample(32).obs)
    assert not torch.equal(first.sample(32).obs, other.sample(32).obs)


def test_sampling_an_empty_buffer_is_an_error():
    with pytest.raises(ValueError, match="empty replay buffer"):
        ReplayBuffer(10, 1, 1).sample(4)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, 1, 1)

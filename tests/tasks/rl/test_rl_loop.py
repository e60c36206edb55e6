"""The shared training loop: action scaling, the paper's metric, outputs, seeding."""

import csv
import json

import numpy as np
import pytest
import torch

from icnn.tasks.rl.agent import load_agent, make_agent
from icnn.tasks.rl.loop import (
    RunConfig,
    eval_env_seed,
    evaluate,
    rolling_mean,
    to_env_action,
    to_unit_action,
    train,
)

METRIC_KEYS = {
    "max_test_return", "final_test_return", "last_test_return", "env_steps_per_second",
    "learning_steps_per_second", "test_points", "train_episodes", "run_config", "agent_config",
}


def tiny_run(tmp_path, agent="ddpg", seed=0, name=None, **overrides) -> RunConfig:
    settings = dict(
        env="Pendulum-v1", agent=agent, steps=300, seed=seed, out=str(tmp_path / (name or agent)),
        warmup=100, batch_size=32, test_every=100, progress=False,
        agent_options={"hidden": (16, 16)},
    )
    settings.update(overrides)
    return RunConfig(**settings)


def read_curve(path):
    with open(path, newline="") as handle:
        return [(int(row["step"]), float(row["test_return"])) for row in csv.DictReader(handle)]


def test_unit_actions_map_onto_the_env_bounds_and_back():
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
    mapped = to_env_action(torch.tensor([-1.0, 1.0]), low, high)
    assert mapped.tolist() == [-2.0, 1.0]
    assert to_env_action(torch.tensor([0.0, 0.0]), low, high).tolist() == [0.0, 0.5]
    unit = torch.tensor([0.3, -0.7])
    assert torch.allclose(to_unit_action(to_env_action(unit, low, high), low, high), unit)


def test_rolling_mean_is_the_paper_ten_point_window():
    assert rolling_mean(list(range(1, 13))) == pytest.approx([5.5, 6.5, 7.5])
    assert rolling_mean([1.0, 2.0, 6.0]) == [3.0]  # fewer points than the window: one mean


@pytest.mark.parametrize("agent", ["ddpg", "naf", "icnn"])
def test_smoke_run_writes_metrics_curve_and_checkpoint(tmp_path, agent):
    result = train(tiny_run(tmp_path, agent, steps=200))
    out = tmp_path / agent
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= metrics.keys()
    curve = read_curve(out / "curve.csv")
    assert [step for step, _ in curve] == [100, 200]
    returns = [value for _, value in curve]
    assert metrics["max_test_return"] == pytest.approx(np.mean(returns))  # < 10 points: one mean
    assert metrics["last_test_return"] == pytest.approx(returns[-1])
    assert all(-2000 < value <= 0 for value in returns)  # Pendulum returns over 200 steps
    assert metrics["train_episodes"] == 1 and metrics["env_steps_per_second"] > 0
    assert metrics["agent"] == agent and metrics["last_losses"]  # it learned for 100 steps
    restored = load_agent(out / "agent.safetensors")
    obs = torch.randn(3)
    assert torch.equal(restored.act(obs, explore=False), result.agent.act(obs, explore=False))


@pytest.mark.parametrize("agent", ["ddpg", "icnn"])
def test_same_seed_repeats_the_run_and_another_seed_does_not(tmp_path, agent):
    short = dict(steps=100, warmup=50, test_every=100)  # one test episode, 50 learning steps
    first = train(tiny_run(tmp_path, agent, seed=3, name="a", **short))
    again = train(tiny_run(tmp_path, agent, seed=3, name="b", **short))
    other = train(tiny_run(tmp_path, agent, seed=4, name="c", **short))
    assert first.curve == again.curve
    assert first.metrics["last_losses"] == again.metrics["last_losses"]
    assert first.curve != other.curve


def one_episode(agent, env, low, high) -> float:
    obs, _ = env.reset()
    total, done = 0.0, False
    while not done:
        action = agent.act(torch.as_tensor(obs, dtype=torch.float32), explore=False)
        obs, reward, terminated, truncated, _ = env.step(to_env_action(action, low, high))
        total, done = total + float(reward), terminated or truncated
    return total


@pytest.mark.parametrize("agent_name", ["ddpg", "naf", "icnn"])
def test_lockstep_evaluation_is_the_mean_of_the_episodes_run_one_by_one(agent_name):
    # InvertedPendulum episodes end at different steps, so the batch shrinks as they terminate.
    import gymnasium as gym

    torch.manual_seed(0)
    agent = make_agent(agent_name, 4, 1, {"hidden": (8,)})
    low, high = np.array([-0.1]), np.array([0.1])  # weak pushes: the pole falls at varied times

    def seeded_envs():
        envs = [gym.make("InvertedPendulum-v5") for _ in range(4)]
        for episode, env in enumerate(envs):
            env.reset(seed=eval_env_seed(7, episode))  # evaluate's resets continue this stream
        return envs

    lockstep = evaluate(agent, seeded_envs(), low, high)
    separate = [one_episode(agent, env, low, high) for env in seeded_envs()]
    assert len(set(separate)) > 1  # the episodes really differ in length
    assert lockstep == pytest.approx(np.mean(separate))


def test_test_episodes_average_over_distinct_seeded_envs(tmp_path):
    one = train(tiny_run(tmp_path, name="one", steps=100, warmup=100, test_every=100))
    three = train(
        tiny_run(tmp_path, name="three", steps=100, warmup=100, test_every=100, test_episodes=3)
    )
    assert one.metrics["train_episodes"] == three.metrics["train_episodes"]
    assert one.curve != three.curve  # more episodes, other starting states
    assert len({eval_env_seed(0, episode) for episode in range(3)} | {0}) == 4


def test_time_limit_truncation_is_not_stored_as_terminal(tmp_path):
    # Pendulum never terminates; it is only truncated, here every 50 steps.
    result = train(tiny_run(tmp_path, max_episode_steps=50, steps=200, test_every=200))
    assert result.metrics["train_episodes"] == 4
    assert result.buffer.terminated.sum().item() == 0.0


def test_true_terminations_are_stored_as_terminal(tmp_path):
    # InvertedPendulum terminates when the pole falls; random actions make it fall within ~50 steps.
    result = train(
        tiny_run(tmp_path, env="InvertedPendulum-v5", steps=150, warmup=150, test_every=150)
    )
    assert result.metrics["train_episodes"] >= 2
    assert result.buffer.terminated.sum().item() == result.metrics["train_episodes"]


def test_test_every_defaults_to_a_hundred_test_points():
    assert RunConfig(steps=100_000).resolved_test_every() == 1000
    assert RunConfig(steps=10_000).resolved_test_every() == 100


def test_discrete_action_envs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="expected a 1-D Box action space for CartPole-v1"):
        train(tiny_run(tmp_path, env="CartPole-v1"))


def test_bad_run_settings_are_rejected_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="expected steps >= 1, got 0"):
        train(tiny_run(tmp_path, steps=0))

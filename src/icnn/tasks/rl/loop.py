"""The training loop every agent shares: act, store, learn, test, log (paper §6.4, Algorithm 3).

One run: ``train(RunConfig(env="Pendulum-v1", agent="ddpg", steps=20_000, out="runs/x"))``.
It writes into ``out``:

- ``metrics.json``: ``max_test_return`` (the paper's metric: max of the 10-point rolling mean
  of the test returns), ``final_test_return`` (last value of that rolling mean),
  ``env_steps_per_second`` and the configs;
- ``curve.csv``: ``step,test_return``, one row per test point;
- ``agent.safetensors``: every network of the agent (see :func:`icnn.tasks.rl.agent.load_agent`).

A test point is the mean return of ``test_episodes`` greedy episodes, one on each of its own
seeded test env (:func:`eval_env_seed`; the same for every agent of a seed), run in lockstep
with one batched action call per step (:func:`evaluate`).

Environments are created with ``gymnasium.make`` and used as gymnasium defines them: any
``Box`` action space with finite bounds works. Agents act in ``[-1, 1]^act_dim``; actions are
mapped affinely to ``[low, high]`` here. A time-limit truncation ends the episode but does not
stop the bootstrap; only ``terminated`` does.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from icnn.checkpoint import atomic_write
from icnn.learn.seeding import seed_everything
from icnn.tasks.rl.agent import Agent, make_agent, save_agent
from icnn.tasks.rl.buffer import ReplayBuffer

ROLLING_WINDOW = 10  # the paper smooths test curves with a 10-point moving average


@dataclass
class RunConfig:
    """One training run; every field is a flag of ``icnn rl`` (``batch_size`` ↔ ``--batch-size``).

    Defaults follow the reference code (``RL/src/agent.py``, ``main.py``). These settings are
    shared by all agents, so agents run under one config compare fairly.
    """

    env: str = "Pendulum-v1"  # gymnasium id; any env with a bounded Box action space
    agent: str = "ddpg"  # name in icnn.tasks.rl.agent.AGENTS
    steps: int = 100_000  # environment steps of training
    seed: int = 0  # seeds python, numpy, torch, the envs, the buffer and the noise
    out: str | None = None  # output directory; None: runs/rl/<env>/<agent>/seed<seed>
    warmup: int = 1000  # steps of uniform random actions before learning starts
    batch_size: int = 256  # minibatch size of each update
    buffer_size: int = 500_000  # replay capacity (capped at `steps`)
    updates_per_step: int = 1  # gradient updates per environment step after warm-up
    test_every: int | None = None  # steps between test points; None: steps // 100
    test_episodes: int = 1  # greedy episodes per test point (the reference code: 1)
    max_episode_steps: int | None = None  # training episode limit; None: the env's own
    reward_scale: float = 1.0  # rewards are scaled in the buffer only; test returns are raw
    threads: int = 1  # torch intra-op threads (small nets run fastest on one)
    device: str = "cpu"  # where networks and the buffer live
    progress: bool = True  # show a tqdm progress bar
    agent_options: dict[str, Any] = field(default_factory=dict)  # overrides of the agent config

    def resolved_out(self) -> Path:
        """The output directory: ``out``, or ``runs/rl/<env>/<agent>/seed<seed>`` when unset."""
        if self.out is not None:
            return Path(self.out)
        return Path("runs") / "rl" / self.env / self.agent / f"seed{self.seed}"

    def resolved_test_every(self) -> int:
        """The test interval: ``test_every``, or ``steps // 100`` (at least 1) when unset."""
        return self.test_every if self.test_every is not None else max(1, self.steps // 100)

    def validate(self) -> None:
        """Raise a ValueError naming the first field out of range."""
        positive = ("steps", "batch_size", "buffer_size", "test_episodes", "threads")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"expected {name} >= 1, got {getattr(self, name)}")
        if self.warmup < 0 or self.updates_per_step < 0:
            raise ValueError(
                f"expected warmup >= 0 and updates_per_step >= 0, got {self.warmup}, "
                f"{self.updates_per_step}"
            )
        if self.test_every is not None and self.test_every < 1:
            raise ValueError(f"expected test_every >= 1 or None, got {self.test_every}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"expected max_episode_steps >= 1 or None, got {self.max_episode_steps}")
        if not (math.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise ValueError(f"expected a finite reward_scale > 0, got {self.reward_scale}")
        check_device(self.device)


def check_device(device: str) -> torch.device:
    """``device`` as a torch device that exists here; a ValueError saying what is available."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"expected a torch device such as 'cpu' or 'cuda:0', got {device!r}"
                         ) from error
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (parsed.index or 0) >= count:
            raise ValueError(f"expected a CUDA device this machine has ({count} found), got "
                             f"{device!r}")
    elif parsed.type != "cpu":
        raise ValueError(f"expected device 'cpu' or 'cuda[:k]', got {device!r}")
    return parsed


def make_env(env_id: str, **kwargs: Any):
    """``gym.make(env_id)``; an id gymnasium does not know is a ValueError (a user error)."""
    import gymnasium as gym

    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as error:
        raise ValueError(f"expected a gymnasium environment id such as 'Pendulum-v1', got "
                         f"{env_id!r}: {error}") from error


@dataclass
class RunResult:
    """What :func:`train` measured; ``metrics`` is also written to ``metrics.json``."""

    out: Path
    curve: list[tuple[int, float]]  # (step, mean test return)
    metrics: dict[str, Any]
    agent: Agent
    buffer: ReplayBuffer


def rolling_mean(values: list[float], window: int = ROLLING_WINDOW) -> list[float]:
    """Trailing means over full windows of ``window`` points (one mean of all if fewer)."""
    if not values:
        return []
    if len(values) < window:
        return [float(np.mean(values))]
    kernel = np.ones(window) / window
    return np.convolve(np.asarray(values, dtype=float), kernel, mode="valid").tolist()


def check_spaces(env) -> tuple[int, int, np.ndarray, np.ndarray]:
    """``(obs_dim, act_dim, low, high)`` of a flat Box env; ValueError for anything else."""
    from gymnasium import spaces

    name = env.spec.id if env.spec is not None else type(env).__name__
    if not isinstance(env.action_space, spaces.Box) or len(env.action_space.shape) != 1:
        raise ValueError(f"expected a 1-D Box action space for {name}, got {env.action_space}")
    if not isinstance(env.observation_space, spaces.Box) or len(env.observation_space.shape) != 1:
        raise ValueError(
            f"expected a 1-D Box observation space for {name}, got {env.observation_space}"
        )
    low = env.action_space.low.astype(np.float64)
    high = env.action_space.high.astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"expected finite action bounds for {name}, got low={low}, high={high}")
    return env.observation_space.shape[0], env.action_space.shape[0], low, high


def to_env_action(action: torch.Tensor, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map ``action`` in ``[-1, 1]^act_dim`` affinely onto ``[low, high]``."""
    unit = np.clip(action.numpy().astype(np.float64), -1.0, 1.0)
    return (low + 0.5 * (unit + 1.0) * (high - low)).astype(np.float32)


def to_unit_action(env_action: np.ndarray, low: np.ndarray, high: np.ndarray) -> torch.Tensor:
    """Inverse of :func:`to_env_action`: ``[low, high]`` → ``[-1, 1]``."""
    unit = 2.0 * (np.asarray(env_action, dtype=np.float64) - low) / (high - low) - 1.0
    return torch.as_tensor(np.clip(unit, -1.0, 1.0), dtype=torch.float32)


def obs_tensor(obs: np.ndarray) -> torch.Tensor:
    """An observation as a float32 tensor ``(*obs_shape)``."""
    return torch.as_tensor(obs, dtype=torch.float32)


def evaluate(agent: Agent, envs: list, low: np.ndarray, high: np.ndarray) -> float:
    """Mean undiscounted return of one greedy episode (no exploration noise) in each of ``envs``.

    The episodes run in lockstep: at every step the states of the episodes still running form
    one batch ``(n_running, obs_dim)`` and the agent acts on all of them in one call (for
    ICNN-Q, one batched argmin), so ``n`` test episodes cost about one episode's acting calls.
    Each env is reset without a seed, continuing the stream seeded when it was made.
    """
    observations = [env.reset()[0] for env in envs]
    returns = np.zeros(len(envs))
    running = list(range(len(envs)))
    while running:
        states = torch.as_tensor(np.stack([observations[i] for i in running]), dtype=torch.float32)
        actions = agent.act(states, explore=False)
        still_running = []
        for row, i in enumerate(running):
            obs, reward, terminated, truncated, _ = envs[i].step(
                to_env_action(actions[row], low, high)
            )
            observations[i] = obs
            returns[i] += float(reward)
            if not (terminated or truncated):
                still_running.append(i)
        running = still_running
    return float(returns.mean())


def eval_env_seed(seed: int, episode: int) -> int:
    """Seed of the ``episode``-th test env of a run seeded ``seed`` (episode 0: ``seed + 1``).

    The test envs' streams are shared by every agent of a seed, so agents meet the same test
    episodes; they stay apart from the training env's stream (``seed``) and from each other.
    """
    return seed + 1 + 1_000_003 * episode


def train(config: RunConfig) -> RunResult:
    """Train ``config.agent`` on ``config.env`` and write metrics, curve and checkpoint."""
    from tqdm.auto import tqdm

    config.validate()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        seed_everything(config.seed)
        env = make_env(config.env, max_episode_steps=config.max_episode_steps)
        test_envs = [make_env(config.env) for _ in range(config.test_episodes)]
        obs_dim, act_dim, low, high = check_spaces(env)
        agent = make_agent(
            config.agent, obs_dim, act_dim, config.agent_options, seed=config.seed,
            device=config.device,
        )
        buffer = ReplayBuffer(
            min(config.buffer_size, config.steps), obs_dim, act_dim,
            device=config.device, seed=config.seed,
        )
        env.action_space.seed(config.seed)
        obs, _ = env.reset(seed=config.seed)
        for episode, test_env in enumerate(test_envs):  # later resets continue these streams
            test_env.reset(seed=eval_env_seed(config.seed, episode))
        agent.reset_noise()

        test_every = config.resolved_test_every()
        curve: list[tuple[int, float]] = []
        train_returns: deque[float] = deque(maxlen=10)
        episodes, episode_return = 0, 0.0
        losses: dict[str, float] = {}
        test_seconds = warmup_seconds = 0.0
        bar = tqdm(
            total=config.steps, disable=not config.progress, unit="step", dynamic_ncols=True,
            desc=f"{config.agent} {config.env}",
        )
        start = time.perf_counter()
        for step in range(1, config.steps + 1):
            # act: uniform random during warm-up, then the agent's exploring policy
            state = obs_tensor(obs)
            if step <= config.warmup:
                action = to_unit_action(env.action_space.sample(), low, high)
            else:
                action = agent.act(state, explore=True)
            obs, reward, terminated, truncated, _ = env.step(to_env_action(action, low, high))
            buffer.add(state, action, config.reward_scale * float(reward), obs, terminated)
            episode_return += float(reward)

            if terminated or truncated:
                episodes += 1
                train_returns.append(episode_return)
                obs, _ = env.reset()
                agent.reset_noise()
                episode_return = 0.0
                bar.set_postfix(
                    episodes=episodes, last=f"{train_returns[-1]:.1f}",
                    avg10=f"{np.mean(train_returns):.1f}",
                    test=f"{curve[-1][1]:.1f}" if curve else "-", refresh=False,
                )

            # learn: after warm-up, a fixed number of updates per environment step
            if step > config.warmup and len(buffer) >= config.batch_size:
                for _ in range(config.updates_per_step):
                    losses = agent.update(buffer.sample(config.batch_size))

            # test: greedy episodes on separate envs every `test_every` steps and at the end
            if step % test_every == 0 or step == config.steps:
                test_start = time.perf_counter()
                curve.append((step, evaluate(agent, test_envs, low, high)))
                test_seconds += time.perf_counter() - test_start
            if step == config.warmup:
                warmup_seconds = time.perf_counter() - start
            bar.update(1)
        wall_seconds = time.perf_counter() - start
        bar.close()
        env.close()
        for test_env in test_envs:
            test_env.close()
    finally:
        torch.set_num_threads(previous_threads)

    test_returns = [value for _, value in curve]
    smoothed = rolling_mean(test_returns)
    metrics = {
        "env": config.env,
        "agent": config.agent,
        "seed": config.seed,
        "steps": config.steps,
        "max_test_return": max(smoothed),
        "final_test_return": smoothed[-1],
        "last_test_return": test_returns[-1],
        "rolling_window": ROLLING_WINDOW,
        "test_points": len(curve),
        "train_episodes": episodes,
        "train_return_avg10": float(np.mean(train_returns)) if train_returns else None,
        "last_losses": losses,
        "wall_seconds": wall_seconds,
        "test_seconds": test_seconds,
        "env_steps_per_second": config.steps / wall_seconds,  # everything: warm-up, learning, tests
        "learning_steps_per_second": (  # after warm-up only: the rate a long run sees
            (config.steps - config.warmup) / (wall_seconds - warmup_seconds)
            if config.steps > config.warmup
            else None
        ),
        "run_config": dataclasses.asdict(config),
        "agent_config": dataclasses.asdict(agent.config),
    }
    out = write_outputs(config.resolved_out(), curve, metrics, agent)
    return RunResult(out=out, curve=curve, metrics=metrics, agent=agent, buffer=buffer)


def write_outputs(out: Path, curve: list[tuple[int, float]], metrics: dict, agent: Agent) -> Path:
    """Write ``curve.csv``, ``agent.safetensors``, then ``metrics.json`` (the completion mark)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curve.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "test_return"])
        writer.writerows([step, repr(value)] for step, value in curve)
    save_agent(
        agent, out / "agent.safetensors",
        metadata={"env": metrics["env"], "seed": metrics["seed"], "steps": metrics["steps"]},
    )
    text = json.dumps(metrics, indent=2) + "\n"
    # atomic: a metrics.json on disk is always complete
    atomic_write(out / "metrics.json", lambda tmp: Path(tmp).write_text(text))
    return out

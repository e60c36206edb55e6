"""``icnn rl video``: one greedy episode of a trained agent, rendered to an animated GIF.

    icnn rl video runs/reacher/icnn/seed0 --out reacher.gif

reads ``agent.safetensors`` (the environment id is in its header), runs one greedy episode (no
exploration noise) with ``render_mode="rgb_array"`` and writes the frames with Pillow, the same
kind of picture as the reference repository's ``RL/misc/*.gif``. MuJoCo environments render
headless through EGL (``MUJOCO_GL=egl``, set unless the caller chose a backend); classic-control
ones need pygame (``gymnasium[classic-control]``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from icnn.checkpoint import atomic_write
from icnn.tasks.rl.agent import Agent, load_agent, read_agent_metadata
from icnn.tasks.rl.loop import check_spaces, eval_env_seed, to_env_action


class RenderError(ValueError):
    """The environment could not render a frame (no rendering backend).

    A ValueError: the setup, not the code, is at fault, so ``icnn rl video`` reports it in one
    line (see :func:`icnn.cli.main`).
    """


@dataclass
class Episode:
    """A rendered episode: ``frames`` (each ``(height, width, 3)`` uint8), its return, length."""

    frames: list[np.ndarray]
    episode_return: float
    steps: int


def checkpoint_path(path: str | os.PathLike) -> Path:
    """``path`` itself if it is a file, else ``path/agent.safetensors`` (a run folder)."""
    path = Path(path)
    checkpoint = path / "agent.safetensors" if path.is_dir() else path
    if not checkpoint.is_file():
        raise ValueError(f"expected a run folder with agent.safetensors or a checkpoint file, got {path}")
    return checkpoint


def record_episode(
    agent: Agent, env_id: str, *, seed: int = 0, max_steps: int | None = None, frame_every: int = 1
) -> Episode:
    """Run one greedy episode of ``agent`` on ``env_id`` and keep every ``frame_every``-th frame.

    The env is reset with the seed of the run's first test episode (:func:`eval_env_seed`), so
    ``seed`` picks the same start state as that run's test points.
    """
    import gymnasium as gym

    if frame_every < 1:
        raise ValueError(f"expected frame_every >= 1, got {frame_every}")
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless MuJoCo; pygame needs no display either
    env = gym.make(env_id, render_mode="rgb_array", max_episode_steps=max_steps)
    try:
        obs_dim, act_dim, low, high = check_spaces(env)
        if (obs_dim, act_dim) != (agent.obs_dim, agent.act_dim):
            raise ValueError(
                f"expected {env_id} to have (obs_dim, act_dim) = ({agent.obs_dim}, "
                f"{agent.act_dim}) like the agent, got ({obs_dim}, {act_dim})"
            )
        obs, _ = env.reset(seed=eval_env_seed(seed, 0))
        frames, episode_return, steps, done = [_frame(env, env_id)], 0.0, 0, False
        while not done:
            action = agent.act(torch.as_tensor(obs, dtype=torch.float32), explore=False)
            obs, reward, terminated, truncated, _ = env.step(to_env_action(action, low, high))
            episode_return += float(reward)
            steps += 1
            done = terminated or truncated
            if steps % frame_every == 0 or done:
                frames.append(_frame(env, env_id))
        return Episode(frames, episode_return, steps)
    finally:
        env.close()


def _frame(env, env_id: str) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as error:  # the rendering backends raise many kinds of errors
        raise RenderError(
            f"could not render {env_id} ({type(error).__name__}: {error}); MuJoCo envs need "
            "MUJOCO_GL=egl or osmesa, classic-control envs need pygame"
        ) from error
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"expected rgb_array frames of shape (height, width, 3) uint8 from {env_id}, "
            f"got {frame.shape} {frame.dtype}"
        )
    return frame


def write_gif(frames: list[np.ndarray], path: str | os.PathLike, *, fps: float = 30.0) -> Path:
    """Write ``frames`` as a looping GIF at ``fps`` frames per second, atomically."""
    from PIL import Image

    if not frames:
        raise ValueError("expected at least one frame, got none")
    if fps <= 0:
        raise ValueError(f"expected fps > 0, got {fps}")
    images = [Image.fromarray(frame) for frame in frames]
    return atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:],
        duration=max(1, round(1000 / fps)), loop=0,
    ))


def record_video(
    run: str | os.PathLike, out: str | os.PathLike, *, seed: int = 0, max_steps: int | None = None,
    frame_every: int = 1, fps: float = 30.0, env_id: str | None = None,
) -> tuple[Path, Episode]:
    """Load the agent of ``run`` (folder or checkpoint), record one greedy episode, write a GIF.

    ``env_id`` defaults to the environment named in the checkpoint's header.
    """
    checkpoint = checkpoint_path(run)
    env_id = env_id or read_agent_metadata(checkpoint).get("env")
    if not env_id:
        raise ValueError(f"{checkpoint} names no environment; pass --env")
    agent = load_agent(checkpoint)
    episode = record_episode(agent, env_id, seed=seed, max_steps=max_steps, frame_every=frame_every)
    return write_gif(episode.frames, out, fps=fps), episode

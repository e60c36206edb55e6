"""`icnn rl video`: a greedy episode of a saved agent, rendered to a GIF."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

from icnn.tasks.rl import command
from icnn.tasks.rl.agent import make_agent, save_agent
from icnn.tasks.rl.loop import eval_env_seed, to_env_action
from icnn.tasks.rl.video import RenderError, record_video, write_gif

ENV_ID = "icnn-test/Slide-v0"
STEPS = 20


class Slide(gym.Env):
    """x' = x + 0.1 a, reward −x²; renders x and the step count as pixels (every frame differs)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None, broken=False):
        self.render_mode, self.broken = render_mode, broken
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-1, 1)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x += 0.1 * float(action[0])
        self.t += 1
        return np.array([self.x], np.float32), -self.x**2, False, False, {}

    def render(self):
        if self.broken:
            raise OSError("no display")
        frame = np.zeros((8, 32, 3), np.uint8)
        frame[0, self.t % 32] = 255
        frame[4, int(np.clip(16 + 8 * self.x, 0, 31)), 1] = 255
        return frame


gym.register(ENV_ID, entry_point=Slide, max_episode_steps=STEPS)
gym.register("icnn-test/BrokenSlide-v0", entry_point=Slide, kwargs={"broken": True},
             max_episode_steps=STEPS)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    agent = make_agent("icnn", 1, 1, {"hidden": (8,)})
    save_agent(agent, tmp_path / "run" / "agent.safetensors", metadata={"env": ENV_ID, "seed": 0})
    return tmp_path / "run", agent


def greedy_return(agent, seed):
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=eval_env_seed(seed, 0))
    total, done, low, high = 0.0, False, np.array([-2.0]), np.array([2.0])
    while not done:
        action = agent.act(torch.as_tensor(obs), explore=False)
        obs, reward, terminated, truncated, _ = env.step(to_env_action(action, low, high))
        total, done = total + reward, terminated or truncated
    return total


def test_video_is_the_greedy_episode_of_the_saved_agent(checkpoint, tmp_path):
    run, agent = checkpoint
    out, episode = record_video(run, tmp_path / "slide.gif", seed=3, fps=10)
    assert episode.steps == STEPS and len(episode.frames) == STEPS + 1  # the reset frame too
    assert episode.episode_return == pytest.approx(greedy_return(agent, 3), rel=1e-6)
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == STEPS + 1 and gif.size == (32, 8)
        assert gif.info["duration"] == 100
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_frame_every_keeps_every_kth_frame_and_the_last(checkpoint, tmp_path):
    _, episode = record_video(checkpoint[0], tmp_path / "a.gif", frame_every=6)
    assert len(episode.frames) == 1 + len(range(6, STEPS + 1, 6)) + 1  # reset, 6/12/18, last (20)


def test_bad_inputs_say_what_was_expected(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="agent.safetensors or a checkpoint file"):
        record_video(tmp_path / "missing", tmp_path / "x.gif")
    with pytest.raises(ValueError, match=r"\(obs_dim, act_dim\) = \(1, 1\).*got \(3, 1\)"):
        record_video(checkpoint[0], tmp_path / "x.gif", env_id="Pendulum-v1")
    with pytest.raises(RenderError, match="could not render icnn-test/BrokenSlide-v0"):
        record_video(checkpoint[0], tmp_path / "x.gif", env_id="icnn-test/BrokenSlide-v0")
    with pytest.raises(ValueError, match="fps > 0"):
        write_gif([np.zeros((2, 2, 3), np.uint8)], tmp_path / "x.gif", fps=0)
    assert not (tmp_path / "x.gif").exists()


def test_video_through_the_command(checkpoint, tmp_path, capsys):
    parser = command.argparse.ArgumentParser(prog="icnn rl")
    command.add_arguments(parser)
    gif = tmp_path / "cmd.gif"
    assert command.run(parser.parse_args(["video", str(checkpoint[0]), "--out", str(gif)])) == 0
    assert f"over {STEPS} steps, {STEPS + 1} frames; wrote {gif}" in capsys.readouterr().out
    from icnn import cli

    broken = ["rl", "video", str(checkpoint[0]), "--out", str(gif), "--env",
              "icnn-test/BrokenSlide-v0"]
    assert cli.main(broken) == 2  # the one error contract of icnn.cli.main
    err = capsys.readouterr().err
    assert err.startswith("icnn rl: error: could not render") and len(err.splitlines()) == 1

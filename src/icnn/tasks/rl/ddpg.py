"""DDPG (Lillicrap et al. 2016): a deterministic actor μ(s) trained to climb a critic Q(s, a).

The paper's first baseline (§6.4, Simon Ramstedt's implementation). Read top to bottom:
config, networks, agent (act, update).

    critic:  minimise ( Q(s, a) − [ r + γ (1 − terminated) Q'(s', μ'(s')) ] )²
    actor:   maximise Q(s, μ(s))
    targets: θ' ← τ θ + (1 − τ) θ'

Actions live in [-1, 1] (tanh output); the training loop maps them to the environment's bounds.
The critic takes ``[s, a]`` at its input (as in TD3 and CleanRL) rather than inserting the
action at the second layer as in the original DDPG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from icnn.tasks.rl.agent import greedy_batch
from icnn.tasks.rl.buffer import Batch
from icnn.tasks.rl.networks import frozen_copy, mlp, soft_update_
from icnn.tasks.rl.noise import make_noise


@dataclass
class DDPGConfig:
    """DDPG hyper-parameters; defaults are the reference code's (``RL/src/agent.py``).

    Run-level settings shared by every agent (batch size, warm-up, replay size, updates per
    step) live in :class:`icnn.tasks.rl.loop.RunConfig`.
    """

    hidden: tuple[int, ...] = (200, 200)  # hidden widths of both actor and critic
    gamma: float = 0.99  # discount
    tau: float = 0.01  # target-network averaging rate
    actor_lr: float = 1e-4  # Adam step of the actor
    critic_lr: float = 1e-3  # Adam step of the critic
    critic_l2: float = 1e-4  # L2 penalty on the critic weights (Adam weight_decay)
    noise: str = "ou"  # exploration noise: "ou" (Ornstein–Uhlenbeck) or "gaussian"
    noise_theta: float = 0.15  # OU mean reversion
    noise_sigma: float = 0.1  # OU / Gaussian scale, in the [-1, 1] action scale


class Actor(nn.Module):
    """Deterministic policy ``μ(s) = tanh(MLP(s))``. Shape: ``(batch, obs_dim)`` → ``(batch, act_dim)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, act_dim, output_activation=nn.Tanh)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions ``(batch, act_dim)`` in ``[-1, 1]`` for observations ``(batch, obs_dim)``."""
        return self.net(obs)


class Critic(nn.Module):
    """Action value ``Q(s, a) = MLP([s, a])``.

    Shape: ``(batch, obs_dim), (batch, act_dim)`` → ``(batch,)``.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, hidden, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``Q(s, a)``, ``(batch,)``."""
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class DDPG:
    """The DDPG agent; satisfies :class:`icnn.tasks.rl.agent.Agent`.

    Args:
        obs_dim: observation size. act_dim: action size.
        config: hyper-parameters (defaults if ``None``).
        seed: seeds the exploration noise (network init uses torch's global generator).
        device: where the networks live.
    """

    name: ClassVar[str] = "ddpg"
    Config: ClassVar[type] = DDPGConfig

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: DDPGConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config = config or DDPGConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(device)

        self.actor = Actor(obs_dim, act_dim, config.hidden).to(self.device)
        self.critic = Critic(obs_dim, act_dim, config.hidden).to(self.device)
        self.actor_target = frozen_copy(self.actor)
        self.critic_target = frozen_copy(self.critic)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(
            self.critic.parameters(), lr=config.critic_lr, weight_decay=config.critic_l2
        )
        self.noise = make_noise(
            config.noise, act_dim, theta=config.noise_theta, sigma=config.noise_sigma, seed=seed
        )

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """``obs: (obs_dim,)`` → action ``(act_dim,)`` in [-1, 1]: μ(s), plus noise if exploring.

        Greedy actions also take a batch: ``(n, obs_dim)`` → ``(n, act_dim)``.
        """
        batch, single = greedy_batch(obs, self.obs_dim, explore)
        action = self.actor(batch.to(self.device, torch.float32)).cpu()
        action = action.squeeze(0) if single else action
        if explore:
            action = action + self.noise.sample()
        return action.clamp(-1.0, 1.0)

    def reset_noise(self) -> None:
        """Reset the exploration noise (at the start of an episode)."""
        self.noise.reset()

    def update(self, batch: Batch) -> dict[str, float]:
        """One critic step, one actor step, then both target updates."""
        config = self.config
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs, self.actor_target(batch.next_obs))
            target = batch.reward + config.gamma * (1.0 - batch.terminated) * next_q

        q = self.critic(batch.obs, batch.action)
        critic_loss = F.mse_loss(q, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        actor_loss = -self.critic(batch.obs, self.actor(batch.obs)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        soft_update_(self.actor_target, self.actor, config.tau)
        soft_update_(self.critic_target, self.critic, config.tau)
        return {
            "critic_loss": critic_loss.item(),
            "actor_loss": actor_loss.item(),
            "q": q.mean().item(),
        }

    def networks(self) -> dict[str, nn.Module]:
        """The agent's networks by name (what a checkpoint stores)."""
        return {
            "actor": self.actor,
            "critic": self.critic,
            "actor_target": self.actor_target,
            "critic_target": self.critic_target,
        }

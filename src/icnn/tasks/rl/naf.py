"""NAF (Gu et al. 2016): Q-learning with a Q function quadratic, and so easy to maximise, in the action.

The paper's second baseline and the ICNN agent's nearest relative (§6.4): NAF's advantage is a
concave quadratic in ``a``; the ICNN's −Q may be any convex function of ``a``.

    Q(s, a) = V(s) + A(s, a),   A(s, a) = −½ (a − μ(s))ᵀ P(s) (a − μ(s)),   P = L Lᵀ,

with ``L(s)`` lower triangular with a positive (exponentiated) diagonal, so ``P`` is positive
definite and ``argmax_a Q(s, a) = μ(s)``, ``max_a Q(s, a) = V(s)``. Training:

    minimise ( Q(s, a) − [ r + γ (1 − terminated) V'(s') ] )²,   θ' ← τ θ + (1 − τ) θ'.
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
class NAFConfig:
    """NAF hyper-parameters; defaults are the reference code's (``RL/src/agent.py``).

    Run-level settings shared by every agent (batch size, warm-up, replay size, updates per
    step) live in :class:`icnn.tasks.rl.loop.RunConfig`.
    """

    hidden: tuple[int, ...] = (200, 200)  # widths of the shared trunk on s
    gamma: float = 0.99  # discount
    tau: float = 0.01  # target-network averaging rate
    lr: float = 1e-3  # Adam step
    l2: float = 1e-4  # L2 penalty on the weights (Adam weight_decay)
    noise: str = "ou"  # exploration noise: "ou" (Ornstein–Uhlenbeck) or "gaussian"
    noise_theta: float = 0.15  # OU mean reversion
    noise_sigma: float = 0.1  # OU / Gaussian scale, in the [-1, 1] action scale


def quadratic_advantage(action: torch.Tensor, mu: torch.Tensor, tril: torch.Tensor) -> torch.Tensor:
    """``A = −½ (a − μ)ᵀ L Lᵀ (a − μ) = −½ ‖Lᵀ (a − μ)‖²``.

    Shape: ``action, mu: (batch, act_dim)``, ``tril: (batch, act_dim, act_dim)`` → ``(batch,)``.
    """
    offset = (action - mu).unsqueeze(-1)  # (batch, act_dim, 1)
    projected = tril.transpose(-1, -2) @ offset  # Lᵀ (a − μ)
    return -0.5 * projected.squeeze(-1).pow(2).sum(-1)


class NAFNetwork(nn.Module):
    """A trunk on ``s`` with three heads: ``V(s)``, ``μ(s) ∈ [-1, 1]`` (tanh) and ``L(s)``.

    Shape: ``obs: (batch, obs_dim)`` → ``value (batch,)``, ``mu (batch, act_dim)``,
    ``tril (batch, act_dim, act_dim)`` (lower triangular, positive diagonal).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("expected at least one hidden layer for the NAF trunk, got hidden=()")
        self.act_dim = act_dim
        self.trunk = mlp(
            obs_dim, hidden[:-1], hidden[-1], output_activation=nn.ReLU, final_init_scale=None
        )
        self.value_head = mlp(hidden[-1], (), 1)
        self.mu_head = mlp(hidden[-1], (), act_dim, output_activation=nn.Tanh)
        self.tril_head = mlp(hidden[-1], (), act_dim * (act_dim + 1) // 2)
        rows, cols = torch.tril_indices(act_dim, act_dim)
        self.register_buffer("tril_rows", rows, persistent=False)
        self.register_buffer("tril_cols", cols, persistent=False)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(V(s), mu(s), L(s))``: ``(batch,)``, ``(batch, act_dim)`` and ``(batch, act_dim, act_dim)``."""
        features = self.trunk(obs)
        value = self.value_head(features).squeeze(-1)
        mu = self.mu_head(features)
        entries = self.tril_head(features)
        raw = entries.new_zeros(obs.shape[0], self.act_dim, self.act_dim)
        raw[:, self.tril_rows, self.tril_cols] = entries
        # strictly lower part as is; diagonal through exp so P = L Lᵀ is positive definite
        tril = raw.tril(-1) + torch.diag_embed(raw.diagonal(dim1=-2, dim2=-1).exp())
        return value, mu, tril

    def q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``Q(s, a) = V(s) + A(s, a)``. Shape: ``(batch, obs_dim), (batch, act_dim)`` → ``(batch,)``."""
        value, mu, tril = self(obs)
        return value + quadratic_advantage(action, mu, tril)


class NAF:
    """The NAF agent; satisfies :class:`icnn.tasks.rl.agent.Agent`.

    Args:
        obs_dim: observation size. act_dim: action size.
        config: hyper-parameters (defaults if ``None``).
        seed: seeds the exploration noise (network init uses torch's global generator).
        device: where the networks live.
    """

    name: ClassVar[str] = "naf"
    Config: ClassVar[type] = NAFConfig

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: NAFConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config = config or NAFConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(device)

        self.q_network = NAFNetwork(obs_dim, act_dim, config.hidden).to(self.device)
        self.q_target = frozen_copy(self.q_network)
        self.optimizer = torch.optim.Adam(
            self.q_network.parameters(), lr=config.lr, weight_decay=config.l2
        )
        self.noise = make_noise(
            config.noise, act_dim, theta=config.noise_theta, sigma=config.noise_sigma, seed=seed
        )

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """``obs: (obs_dim,)`` → ``(act_dim,)`` in [-1, 1]: μ(s) = argmax Q, plus noise if exploring.

        Greedy actions also take a batch: ``(n, obs_dim)`` → ``(n, act_dim)``.
        """
        batch, single = greedy_batch(obs, self.obs_dim, explore)
        _, mu, _ = self.q_network(batch.to(self.device, torch.float32))
        action = mu.cpu().squeeze(0) if single else mu.cpu()
        if explore:
            action = action + self.noise.sample()
        return action.clamp(-1.0, 1.0)

    def reset_noise(self) -> None:
        """Reset the exploration noise (at the start of an episode)."""
        self.noise.reset()

    def update(self, batch: Batch) -> dict[str, float]:
        """One Q-learning step toward ``r + γ (1 − terminated) V'(s')``, then the target update."""
        config = self.config
        with torch.no_grad():
            next_value, _, _ = self.q_target(batch.next_obs)  # V'(s') = max_a Q'(s', a)
            target = batch.reward + config.gamma * (1.0 - batch.terminated) * next_value

        q = self.q_network.q(batch.obs, batch.action)
        loss = F.mse_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

        soft_update_(self.q_target, self.q_network, config.tau)
        return {"q_loss": loss.item(), "q": q.mean().item()}

    def networks(self) -> dict[str, nn.Module]:
        """The agent's networks by name (what a checkpoint stores)."""
        return {"q_network": self.q_network, "q_target": self.q_target}

"""Exploration noise added to actions in the [-1, 1] scale: Ornstein–Uhlenbeck and Gaussian."""

from __future__ import annotations

import math

import torch


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise (DDPG, Lillicrap et al. 2016; used by every agent of the paper).

    ``x ← x + θ (μ − x) dt + σ √dt ε``, ``ε ~ N(0, I)``, started at ``μ`` on :meth:`reset`.
    With ``dt = 1`` (the reference code) the process is AR(1) with lag-1 correlation ``1 − θ``
    and stationary variance ``σ² / (2θ − θ²)``.

    Args:
        size: action dimension; :meth:`sample` returns ``(size,)``.
        theta: mean reversion θ (paper code default 0.15). sigma: scale σ (default 0.1).
        mu: long-run mean. dt: time step.
        seed: seeds the private ``torch.Generator``.
    """

    def __init__(
        self,
        size: int,
        theta: float = 0.15,
        sigma: float = 0.1,
        mu: float = 0.0,
        dt: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"expected size >= 1, got {size}")
        if theta < 0 or sigma < 0 or dt <= 0:
            raise ValueError(
                f"expected theta >= 0, sigma >= 0 and dt > 0, got theta={theta}, sigma={sigma}, dt={dt}"
            )
        self.size, self.theta, self.sigma, self.mu, self.dt = size, theta, sigma, mu, dt
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
        self.state = torch.full((size,), float(mu))

    def reset(self) -> None:
        """Restart the process at ``mu`` (call at the start of each episode)."""
        self.state = torch.full((self.size,), float(self.mu))

    def sample(self) -> torch.Tensor:
        """Advance one step and return the new state, ``(size,)``."""
        shock = torch.randn(self.size, generator=self.generator)
        drift = self.theta * (self.mu - self.state) * self.dt
        self.state = self.state + drift + self.sigma * math.sqrt(self.dt) * shock
        return self.state.clone()

    def __repr__(self) -> str:
        return f"OrnsteinUhlenbeckNoise(size={self.size}, theta={self.theta}, sigma={self.sigma})"


class GaussianNoise:
    """Independent noise ``σ ε``, ``ε ~ N(0, I)`` at every step (as in TD3 and CleanRL's DDPG).

    Args:
        size: action dimension; :meth:`sample` returns ``(size,)``.
        sigma: standard deviation. seed: seeds the private ``torch.Generator``.
    """

    def __init__(self, size: int, sigma: float = 0.1, seed: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"expected size >= 1, got {size}")
        if sigma < 0:
            raise ValueError(f"expected sigma >= 0, got {sigma}")
        self.size, self.sigma = size, sigma
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def reset(self) -> None:
        """Nothing to reset: the noise has no memory."""

    def sample(self) -> torch.Tensor:
        """Return one draw, ``(size,)``."""
        return self.sigma * torch.randn(self.size, generator=self.generator)

    def __repr__(self) -> str:
        return f"GaussianNoise(size={self.size}, sigma={self.sigma})"


def make_noise(kind: str, size: int, *, theta: float, sigma: float, seed: int | None):
    """Build the exploration noise named ``kind`` (``"ou"`` or ``"gaussian"``)."""
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(size, theta=theta, sigma=sigma, seed=seed)
    if kind == "gaussian":
        return GaussianNoise(size, sigma=sigma, seed=seed)
    raise ValueError(f"expected noise 'ou' or 'gaussian', got {kind!r}")

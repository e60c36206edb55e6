"""Exploration noise: the Ornstein–Uhlenbeck process has the AR(1) statistics it promises."""

import pytest
import torch

from icnn.tasks.rl.noise import GaussianNoise, OrnsteinUhlenbeckNoise, make_noise


def ou_path(theta=0.15, sigma=0.1, size=4, steps=20_000, seed=0) -> torch.Tensor:
    noise = OrnsteinUhlenbeckNoise(size, theta=theta, sigma=sigma, seed=seed)
    return torch.stack([noise.sample() for _ in range(steps)])  # (steps, size)


def test_ou_stationary_variance_is_sigma_squared_over_two_theta_minus_theta_squared():
    path = ou_path()[1000:]  # drop the transient from x0 = mu
    expected = 0.1**2 / (2 * 0.15 - 0.15**2)  # 0.0360
    assert path.var().item() == pytest.approx(expected, rel=0.1)
    assert path.mean().item() == pytest.approx(0.0, abs=0.02)


def test_ou_lag_one_correlation_is_one_minus_theta():
    path = ou_path()[1000:]
    centred = path - path.mean(0)
    correlation = (centred[1:] * centred[:-1]).mean() / centred.var()
    assert correlation.item() == pytest.approx(0.85, abs=0.03)


def test_ou_reset_restarts_at_mu():
    noise = OrnsteinUhlenbeckNoise(2, theta=0.15, sigma=0.0, mu=0.5, seed=0)
    noise.state = torch.tensor([2.0, -1.0])
    noise.reset()
    assert torch.equal(noise.sample(), torch.tensor([0.5, 0.5]))  # sigma 0: stays at mu


def test_ou_without_shocks_decays_geometrically_to_mu():
    noise = OrnsteinUhlenbeckNoise(1, theta=0.15, sigma=0.0, seed=0)
    noise.state = torch.tensor([1.0])
    values = [noise.sample().item() for _ in range(3)]
    assert values == pytest.approx([0.85, 0.85**2, 0.85**3])


def test_same_seed_gives_the_same_noise():
    assert torch.equal(ou_path(steps=50, seed=3), ou_path(steps=50, seed=3))
    assert not torch.equal(ou_path(steps=50, seed=3), ou_path(steps=50, seed=4))


def test_gaussian_noise_has_standard_deviation_sigma():
    noise = GaussianNoise(3, sigma=0.2, seed=0)
    draws = torch.stack([noise.sample() for _ in range(10_000)])
    assert draws.std().item() == pytest.approx(0.2, rel=0.03)
    assert draws.mean().item() == pytest.approx(0.0, abs=0.01)


def test_make_noise_rejects_unknown_kinds():
    assert isinstance(make_noise("ou", 2, theta=0.15, sigma=0.1, seed=0), OrnsteinUhlenbeckNoise)
    with pytest.raises(ValueError, match="'ou' or 'gaussian'"):
        make_noise("pink", 2, theta=0.15, sigma=0.1, seed=0)

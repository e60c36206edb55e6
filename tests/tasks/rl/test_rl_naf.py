"""NAF: Q = V + A with A = −½ (a − μ)ᵀ P (a − μ), P = L Lᵀ positive definite, max at a = μ."""

import pytest
import torch

from icnn.tasks.rl.buffer import Batch
from icnn.tasks.rl.naf import NAF, NAFConfig, NAFNetwork, quadratic_advantage


@pytest.fixture
def network():
    torch.manual_seed(0)
    return NAFNetwork(obs_dim=4, act_dim=3, hidden=(16, 16))


def test_heads_have_the_documented_shapes(network):
    value, mu, tril = network(torch.randn(5, 4))
    assert value.shape == (5,) and mu.shape == (5, 3) and tril.shape == (5, 3, 3)
    assert mu.abs().max() <= 1.0


def test_l_is_lower_triangular_with_positive_diagonal_so_p_is_positive_definite(network):
    _, _, tril = network(torch.randn(64, 4) * 3)
    assert torch.equal(tril, tril.tril())
    assert (tril.diagonal(dim1=-2, dim2=-1) > 0).all()
    precision = tril @ tril.transpose(-1, -2)
    assert (torch.linalg.eigvalsh(precision.double()) > 0).all()


def test_advantage_equals_the_explicit_quadratic_form():
    torch.manual_seed(1)
    action, mu = torch.randn(6, 3), torch.randn(6, 3)
    tril = torch.randn(6, 3, 3).tril()
    offset = action - mu
    precision = tril @ tril.transpose(-1, -2)
    explicit = -0.5 * torch.einsum("bi,bij,bj->b", offset, precision, offset)
    assert torch.allclose(quadratic_advantage(action, mu, tril), explicit, atol=1e-5)


def test_advantage_is_zero_at_mu_and_negative_elsewhere(network):
    obs = torch.randn(32, 4)
    value, mu, tril = network(obs)
    assert torch.equal(quadratic_advantage(mu, mu, tril), torch.zeros(32))
    away = mu + 0.1 * torch.randn(32, 3)
    assert (quadratic_advantage(away, mu, tril) < 0).all()
    assert torch.allclose(network.q(obs, mu), value)


def test_greedy_action_is_the_argmax_of_q_on_a_dense_grid():
    torch.manual_seed(2)
    network = NAFNetwork(obs_dim=2, act_dim=1, hidden=(8,))
    obs = torch.randn(1, 2)
    grid = torch.linspace(-1, 1, 2001).unsqueeze(1)
    q_values = network.q(obs.expand(len(grid), 2), grid)
    _, mu, _ = network(obs)
    assert grid[q_values.argmax()].item() == pytest.approx(mu.item(), abs=1e-3)


def test_agent_acts_inside_bounds_and_greedily_returns_mu():
    torch.manual_seed(0)
    agent = NAF(4, 2, NAFConfig(hidden=(16,), noise_sigma=5.0), seed=0)
    obs = torch.randn(4)
    noisy = agent.act(obs, explore=True)
    assert noisy.shape == (2,) and noisy.abs().max() <= 1.0
    _, mu, _ = agent.q_network(obs.unsqueeze(0))
    assert torch.equal(agent.act(obs, explore=False), mu.squeeze(0))


def test_update_fits_q_and_moves_the_target_by_tau():
    torch.manual_seed(0)
    agent = NAF(3, 1, NAFConfig(hidden=(32,), gamma=0.0, tau=0.05, lr=1e-2, l2=0.0))
    batch = Batch(
        obs=torch.randn(32, 3), action=torch.rand(32, 1) * 2 - 1, reward=torch.randn(32),
        next_obs=torch.randn(32, 3), terminated=torch.zeros(32),
    )
    first = agent.update(batch)["q_loss"]
    target_before = [p.clone() for p in agent.q_target.parameters()]
    logs = agent.update(batch)
    for old, new, online in zip(
        target_before, agent.q_target.parameters(), agent.q_network.parameters(), strict=True
    ):
        assert torch.allclose(new, 0.95 * old + 0.05 * online, atol=1e-6)
    for _ in range(60):
        logs = agent.update(batch)
    assert logs["q_loss"] < 0.5 * first  # gamma 0: Q regresses onto the rewards

"""The NAF-style quadratic head keeps ICNN-Q's energy convex in the action."""

import pytest
import torch
import torch.nn.functional as F

import icnn
from icnn.tasks.rl.agent import load_agent, make_agent, save_agent
from icnn.tasks.rl.quadratic_head import QuadraticHeadEnergy

GRID = torch.linspace(-1, 1, 4001).unsqueeze(1)


def head_energy(seed: int = 0) -> QuadraticHeadEnergy:
    torch.manual_seed(seed)
    energy = QuadraticHeadEnergy(icnn.PICNN(3, 2, hidden=(8, 8)), 3, 2, (16,)).double()
    with torch.no_grad():  # a head far from its initialisation: large curvatures and centres
        for parameter in energy.head.parameters():
            parameter.add_(torch.randn_like(parameter))
    return energy


def test_the_head_adds_its_quadratic_and_keeps_the_energy_convex():
    energy = head_energy()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.rand(5, 2, dtype=torch.float64) * 2 - 1
    curvature, centre = energy.curvature_and_centre(x)
    assert (curvature >= 0).all() and (centre.abs() <= 1).all()
    expected = energy.energy(x, y) + 0.5 * (curvature * (y - centre).square()).sum(-1)
    torch.testing.assert_close(energy(x, y), expected)
    assert icnn.check_convexity(energy, n_pairs=256).ok
    # Jensen along random segments, by hand
    y1, y2 = torch.rand(64, 2, dtype=torch.float64) * 4 - 2, torch.rand(64, 2, dtype=torch.float64) * 4 - 2
    xs = torch.randn(64, 3, dtype=torch.float64)
    t = torch.rand(64, 1, dtype=torch.float64)
    mid = energy(xs, t * y1 + (1 - t) * y2)
    assert (mid <= t[:, 0] * energy(xs, y1) + (1 - t[:, 0]) * energy(xs, y2) + 1e-10).all()


def head_energy_by_hand(energy: QuadraticHeadEnergy, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """An independent reference: the PICNN through its affine layers (per-example matrices, not
    the gated forward), ReLU written out, plus the head's quadratic from its raw outputs."""
    z = None
    layers = energy.energy.affine_layers(x)
    for i, layer in enumerate(layers):
        pre = torch.einsum("bod,bd->bo", layer.y_weight, y) + layer.bias
        if layer.z_weight is not None:
            pre = pre + torch.einsum("boi,bi->bo", layer.z_weight, z)
        z = pre if i == len(layers) - 1 else F.relu(pre)
    raw_curvature, raw_centre = energy.head(x).chunk(2, dim=-1)
    return z[:, 0] + 0.5 * (F.softplus(raw_curvature) * (y - raw_centre.tanh()).square()).sum(-1)


def test_conditioned_energy_matches_an_independent_reference_on_all_and_picked_rows():
    energy = head_energy(1)
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    conditioned = energy.condition(x)
    expected = head_energy_by_hand(energy, x, y)
    torch.testing.assert_close(conditioned(y), expected)
    torch.testing.assert_close(energy(x, y), expected)
    for index in (torch.tensor([4, 1]), torch.tensor([5, 5, 0])):  # picks rows of x, repeats too
        y_picked = torch.randn(len(index), 2, dtype=torch.float64)
        torch.testing.assert_close(conditioned(y_picked, index),
                                   head_energy_by_hand(energy, x[index], y_picked))


def test_icnn_q_with_a_head_acts_by_the_grid_argmin_and_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    agent = make_agent("icnn", 3, 1, {"hidden": (16, 16), "quadratic_head": (16,), "entropy": 0.0,
                                      "act_iters": 100, "solver_tol": 1e-8})
    assert isinstance(agent.energy, QuadraticHeadEnergy)
    with torch.no_grad():
        for parameter in agent.energy.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    agent.energy.project_()  # W^(z) back to >= 0 (projection is the default constraint)
    assert icnn.check_convexity(agent.energy, n_pairs=128).ok
    obs = torch.randn(10, 3, generator=torch.Generator().manual_seed(3))
    actions = agent.act(obs, explore=False)
    with torch.no_grad():
        energies = torch.stack([agent.energy(row.expand(len(GRID), -1), GRID) for row in obs])
    assert torch.allclose(actions[:, 0], GRID[energies.argmin(dim=1), 0], atol=2e-3)
    path = tmp_path / "agent.safetensors"
    save_agent(agent, path)
    loaded = load_agent(path)
    assert loaded.config.quadratic_head == (16,)
    assert torch.equal(loaded.act(obs, explore=False), actions)


def test_the_head_is_an_agent_option_from_the_command_line():
    from icnn.tasks.rl.agent import make_config
    from icnn.tasks.rl.icnn_q import ICNNQConfig

    assert make_config(ICNNQConfig, {"quadratic_head": "64,32"}).quadratic_head == (64, 32)
    with pytest.raises(ValueError):
        make_config(ICNNQConfig, {"quadratic_head": "wide"})

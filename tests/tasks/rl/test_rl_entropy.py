"""The reference code's action objective E − w·H((a+1)/2): barrier values, convexity, the argmin."""

import math

import numpy as np
import pytest
import torch

import icnn
from icnn.solvers.entropy import negative_entropy
from icnn.tasks.rl.agent import load_agent, save_agent
from icnn.tasks.rl.entropy import EDGE, EntropyRegularizedEnergy, action_negative_entropy
from icnn.tasks.rl.icnn_q import ICNNQ, ICNNQConfig

GRID = torch.linspace(-1, 1, 4001, dtype=torch.float64).unsqueeze(1)  # (4001, 1) 1-D actions


def small_agent(**overrides) -> ICNNQ:
    torch.manual_seed(0)
    settings = dict(hidden=(16, 16), entropy=0.5)
    settings.update(overrides)
    return ICNNQ(obs_dim=3, act_dim=1, config=ICNNQConfig(**settings), seed=0)


def test_negative_entropy_is_minus_log_2_per_coordinate_at_the_centre_and_0_at_the_corners():
    centre, corner = torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[-1.0, 1.0, 1.0]])
    assert action_negative_entropy(centre).item() == pytest.approx(-3 * math.log(2), rel=1e-12)
    assert action_negative_entropy(corner).item() == pytest.approx(0.0, abs=1e-4)
    p = 0.8  # an interior point against the closed form
    value = action_negative_entropy(torch.tensor([[2 * p - 1]], dtype=torch.float64)).item()
    assert value == pytest.approx(p * math.log(p) + (1 - p) * math.log(1 - p), rel=1e-12)


def test_negative_entropy_is_finite_convex_and_at_least_1_strongly_convex_on_the_whole_box():
    a = torch.linspace(-1, 1, 20001, dtype=torch.float64).unsqueeze(1)
    values = action_negative_entropy(a)
    assert torch.isfinite(values).all()
    step = a[1, 0] - a[0, 0]
    second = (values[2:] - 2 * values[1:-1] + values[:-2]) / step**2
    inside = (a[1:-1, 0].abs() < 1 - 4 * EDGE - 2 * step)
    assert (second[inside] >= 1.0 - 1e-6).all()  # Hessian >= 1 in a (4 in p, times 1/4)
    assert (second >= -1e-6).all()  # convex up to the faces, where the tangent takes over


def test_the_barrier_has_finite_gradients_at_the_faces_and_gradchecks_inside():
    face = torch.tensor([[-1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(action_negative_entropy(face).sum(), face)
    assert torch.isfinite(grad).all() and grad[0, 0] < 0 < grad[0, 1]
    inside = (torch.rand(4, 2, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(action_negative_entropy, (inside,))


def test_the_barrier_is_the_shared_negative_entropy_inside_the_box():
    # the RL barrier is the shared interior formula to the bit (so the RL results stand) and the
    # shared entropy to a few ulps
    from icnn.solvers.entropy import interior_entropy_terms

    inside = torch.linspace(-1 + 2 * EDGE, 1 - 2 * EDGE, 30000, dtype=torch.float64).view(-1, 3)
    for action in (inside, inside.float()):
        p = (action + 1) / 2
        assert torch.equal(action_negative_entropy(action), interior_entropy_terms(p).sum(-1))
        eps = torch.finfo(action.dtype).eps
        torch.testing.assert_close(action_negative_entropy(action), negative_entropy(p),
                                   rtol=0, atol=16 * eps)
    p = (inside + 1) / 2  # and both against the closed form, computed independently in numpy
    closed = (p.numpy() * np.log(p.numpy()) + (1 - p.numpy()) * np.log(1 - p.numpy())).sum(-1)
    np.testing.assert_allclose(action_negative_entropy(inside).numpy(), closed, rtol=1e-12,
                               atol=1e-15)


def test_outside_the_box_the_barrier_is_the_tangent_where_the_shared_entropy_is_infinite():
    face = 1 - 2 * EDGE
    slope = math.log(1 - EDGE) - math.log(EDGE)  # d/dp at p = 1 - EDGE, times dp/da = 1/2
    beyond = torch.tensor([[face + 0.5]], dtype=torch.float64)
    at_face = action_negative_entropy(torch.tensor([[face]], dtype=torch.float64))
    assert action_negative_entropy(beyond).item() == pytest.approx(
        at_face.item() + slope * 0.25, rel=1e-9)
    assert negative_entropy((beyond + 1) / 2).item() == math.inf


def test_regularized_energy_adds_the_barrier_and_its_weight_to_the_strong_convexity():
    energy = icnn.PICNN(3, 2, hidden=(8,), strong_convexity=0.1)
    wrapped = EntropyRegularizedEnergy(energy, 2.0)
    x, y = torch.randn(5, 3), torch.rand(5, 2) * 2 - 1
    assert torch.allclose(wrapped(x, y), energy(x, y) + 2.0 * action_negative_entropy(y))
    assert wrapped.energy_traits().strong_convexity == pytest.approx(2.1)
    assert icnn.check_convexity(wrapped, n_pairs=64).ok
    with pytest.raises(ValueError, match="entropy weight > 0, got 0"):
        EntropyRegularizedEnergy(energy, 0.0)
    with pytest.raises(ValueError, match="expected entropy >= 0"):
        ICNNQConfig(entropy=-1.0)


def regularized_energy_by_hand(wrapped: EntropyRegularizedEnergy, x: torch.Tensor,
                               y: torch.Tensor) -> torch.Tensor:
    """An independent reference for interior actions: the PICNN through its affine layers
    (per-example matrices, ReLU written out), ``(mu/2)||y||^2``, and the closed form
    ``w * sum p log p + (1 - p) log(1 - p)`` with ``p = (y + 1)/2``."""
    z = None
    layers = wrapped.energy.affine_layers(x)
    for i, layer in enumerate(layers):
        pre = torch.einsum("bod,bd->bo", layer.y_weight, y) + layer.bias
        if layer.z_weight is not None:
            pre = pre + torch.einsum("boi,bi->bo", layer.z_weight, z)
        z = pre if i == len(layers) - 1 else torch.relu(pre)
    mu = wrapped.energy.config["strong_convexity"]
    p = (y + 1) / 2
    entropy = (p * p.log() + (1 - p) * (1 - p).log()).sum(-1)
    return z[:, 0] + 0.5 * mu * y.square().sum(-1) + wrapped.weight * entropy


def test_conditioned_regularized_energy_matches_an_independent_reference_on_all_and_picked_rows():
    torch.manual_seed(0)
    energy = icnn.PICNN(3, 2, hidden=(8, 8), strong_convexity=0.1).double()
    wrapped = EntropyRegularizedEnergy(energy, 2.0)
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.rand(5, 2, dtype=torch.float64) * 1.8 - 0.9  # inside, where the closed form holds
    conditioned = wrapped.condition(x)
    expected = regularized_energy_by_hand(wrapped, x, y)
    torch.testing.assert_close(conditioned(y, None), expected)
    torch.testing.assert_close(wrapped(x, y), expected)
    for index in (torch.tensor([3, 0]), torch.tensor([4, 4, 1])):  # picks rows of x, repeats too
        y_picked = torch.rand(len(index), 2, dtype=torch.float64) * 1.8 - 0.9
        torch.testing.assert_close(conditioned(y_picked, index),
                                   regularized_energy_by_hand(wrapped, x[index], y_picked))


def test_greedy_action_is_the_grid_argmin_of_the_regularized_objective():
    agent = small_agent(act_iters=100, solver_tol=1e-8)
    agent.energy.double(), agent.energy_target.double()
    obs = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    result = agent.greedy_action(obs)
    with torch.no_grad():
        objective = torch.stack([agent.objective(row.expand(len(GRID), -1), GRID) for row in obs])
        plain = torch.stack([agent.energy(row.expand(len(GRID), -1), GRID) for row in obs])
    assert torch.allclose(result.y[:, 0], GRID[objective.argmin(dim=1), 0], atol=1e-3)
    assert torch.allclose(result.value, objective.min(dim=1).values, atol=1e-7)
    # the barrier pulls inward: never farther from the centre than the plain argmin
    assert (result.y[:, 0].abs() <= GRID[plain.argmin(dim=1), 0].abs() + 1e-3).all()


def test_target_bootstraps_from_q_at_the_regularized_action_without_the_barrier(random_batch):
    agent = small_agent(gamma=0.9, lr=0.0, l2=0.0, target_iters=100, solver_tol=1e-8)
    batch = random_batch(act_dim=1, size=16, terminal_fraction=0.0)
    with torch.no_grad():
        chosen = agent.greedy_action(batch.next_obs, target=True, max_iter=100).y
        expected = batch.reward + 0.9 * -agent.energy_target(batch.next_obs, chosen)
        expected_loss = (agent.q(batch.obs, batch.action) - expected).square().mean()
    assert agent.update(batch)["q_loss"] == pytest.approx(expected_loss.item(), rel=1e-4)


def test_entropy_in_q_fits_the_regularized_value_on_both_sides(random_batch):
    agent = small_agent(
        gamma=0.9, lr=0.0, l2=0.0, target_iters=100, solver_tol=1e-8, entropy_in_q=True
    )
    batch = random_batch(act_dim=1, size=16, terminal_fraction=0.25)
    with torch.no_grad():
        chosen = agent.greedy_action(batch.next_obs, target=True, max_iter=100).y
        soft_next = -agent.objective_target(batch.next_obs, chosen)  # Q'(s', a') + w·H(a')
        target = batch.reward + 0.9 * (1.0 - batch.terminated) * soft_next
        soft_q = agent.q(batch.obs, batch.action) - 0.5 * action_negative_entropy(batch.action)
        expected_loss = (soft_q - target).square().mean()
    assert agent.update(batch)["q_loss"] == pytest.approx(expected_loss.item(), rel=1e-4)


def test_entropy_in_q_needs_a_barrier_and_the_plain_target():
    with pytest.raises(ValueError, match="needs entropy > 0 and double_q=False; got entropy=0"):
        ICNNQConfig(entropy=0.0, entropy_in_q=True)
    with pytest.raises(ValueError, match="double_q=True"):
        ICNNQConfig(entropy=1.0, double_q=True, entropy_in_q=True)


def test_a_saved_agent_with_entropy_acts_the_same_after_loading(tmp_path):
    agent = small_agent()
    with torch.no_grad():
        for parameter in agent.energy.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    agent.energy.project_()  # back to W^(z) >= 0 (the default constraint is the projection)
    path = tmp_path / "agent.safetensors"
    save_agent(agent, path)
    loaded = load_agent(path)
    obs = torch.randn(6, 3)
    assert torch.equal(agent.act(obs, explore=False), loaded.act(obs, explore=False))

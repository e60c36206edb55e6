"""ICNN-Q: −Q is a PICNN convex in the action; the greedy action is its argmin over [-1, 1]."""

import pytest
import torch

import icnn
from icnn.tasks.rl.icnn_q import ICNNQ, ICNNQConfig

GRID = torch.linspace(-1, 1, 4001).unsqueeze(1)  # (4001, 1): a dense grid of 1-D actions


def small_agent(**overrides) -> ICNNQ:
    torch.manual_seed(0)
    settings = dict(hidden=(16, 16), entropy=0.0)  # the plain argmin of E (barrier: test_rl_entropy)
    settings.update(overrides)
    return ICNNQ(obs_dim=3, act_dim=1, config=ICNNQConfig(**settings), seed=0)


def grid_max_q(agent: ICNNQ, obs: torch.Tensor, network: torch.nn.Module) -> torch.Tensor:
    """``max_a Q(s, a)`` over GRID for each row of ``obs: (batch, obs_dim)`` → ``(batch,)``."""
    with torch.no_grad():
        energies = torch.stack([network(row.expand(len(GRID), -1), GRID) for row in obs])
    return -energies.min(dim=1).values


def train_on_a_bowl(agent: ICNNQ, steps: int = 150) -> None:
    """Fit Q(s, a) = −(a − tanh(s_0) / 2)² so that the argmin moves inside the box with the state."""
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(agent.energy.parameters(), lr=1e-2)
    for _ in range(steps):
        obs = torch.randn(128, 3, generator=generator)
        action = torch.rand(128, 1, generator=generator) * 2 - 1
        target = -(action[:, 0] - 0.5 * torch.tanh(obs[:, 0])).square()
        loss = (agent.q(obs, action) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_energy_is_a_picnn_convex_in_the_action_and_q_is_its_negative():
    agent = small_agent()
    assert isinstance(agent.energy, icnn.PICNN)
    assert agent.energy.convex_input_shape == (1,) and agent.energy.context_shape == (3,)
    obs, action = torch.randn(5, 3), torch.rand(5, 1) * 2 - 1
    assert torch.equal(agent.q(obs, action), -agent.energy(obs, action))
    assert icnn.check_convexity(agent.energy, n_pairs=64).ok


def test_greedy_action_is_the_argmin_over_a_dense_grid():
    agent = small_agent(act_iters=50)
    train_on_a_bowl(agent)
    obs = torch.randn(12, 3, generator=torch.Generator().manual_seed(2))
    actions = torch.stack([agent.act(row, explore=False) for row in obs])  # (12, 1)
    with torch.no_grad():
        energies = torch.stack([agent.energy(row.expand(len(GRID), -1), GRID) for row in obs])
    best_on_grid = GRID[energies.argmin(dim=1), 0]
    interior = (best_on_grid.abs() < 0.9).sum().item()
    assert interior >= 6, "the fitted bowl must put many minimisers inside the box"
    assert torch.allclose(actions[:, 0], best_on_grid, atol=2e-3)
    assert (agent.q(obs, actions) >= -energies.min(dim=1).values - 1e-4).all()


def test_default_budget_reaches_the_grid_optimum_value():
    agent = small_agent()  # act_iters=5: the fixed small budget used in training
    train_on_a_bowl(agent)
    obs = torch.randn(64, 3, generator=torch.Generator().manual_seed(3))
    solution = agent.greedy_action(obs)
    assert solution.y.abs().max() <= 1.0
    best = -grid_max_q(agent, obs, agent.energy)  # min_a E on the grid
    scale = best.abs().clamp_min(1.0)
    assert ((solution.value - best) / scale).max() < 1e-3


def test_exploring_actions_stay_in_the_box_even_with_large_noise():
    agent = small_agent(noise_sigma=10.0)
    actions = torch.stack([agent.act(torch.randn(3), explore=True) for _ in range(40)])
    assert actions.shape == (40, 1) and actions.abs().max() <= 1.0
    assert (actions.abs() == 1.0).any()  # the noise really was added, then clipped


def test_greedy_action_depends_only_on_the_state():
    agent = small_agent()
    obs = torch.randn(3)
    first = agent.act(obs, explore=False)
    for _ in range(5):  # exploring steps move the warm start; greedy actions must not move
        agent.act(torch.randn(3), explore=True)
    assert torch.equal(agent.act(obs, explore=False), first)


def test_reset_noise_clears_the_warm_start():
    agent = small_agent()
    agent.act(torch.randn(3), explore=True)
    assert agent.previous_action is not None
    agent.reset_noise()
    assert agent.previous_action is None


def test_target_bootstraps_from_the_target_networks_maximum_over_actions(random_batch):
    agent = small_agent(gamma=0.9, lr=0.0, l2=0.0, target_iters=50)
    with torch.no_grad():  # make the target net differ from the online one
        for parameter in agent.energy_target.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    batch = random_batch(act_dim=1, size=32, terminal_fraction=0.2)
    expected_target = batch.reward + 0.9 * (1 - batch.terminated) * grid_max_q(
        agent, batch.next_obs, agent.energy_target
    )
    with torch.no_grad():
        expected_loss = (agent.q(batch.obs, batch.action) - expected_target).square().mean()
    assert agent.update(batch)["q_loss"] == pytest.approx(expected_loss.item(), rel=1e-3)


def test_terminal_transitions_do_not_bootstrap(random_batch):
    agent = small_agent(gamma=0.99)
    with torch.no_grad():  # the target's Q is about −1000 everywhere: only non-terminal rows see it
        output_bias = agent.energy_target.u_maps[-1].bias.split(agent.energy.split_sizes[-1])[-1]
        output_bias.add_(1000.0)
    batch = random_batch(act_dim=1, size=32, terminal_fraction=0.2)
    assert agent.update(batch._replace(terminated=torch.ones(32)))["q_loss"] < 100.0
    assert agent.update(batch._replace(terminated=torch.zeros(32)))["q_loss"] > 1e5


def test_td_clip_bounds_the_error_of_each_target(random_batch):
    agent = small_agent(gamma=0.0, lr=0.0, l2=0.0, td_clip=1.0)
    batch = random_batch(act_dim=1, size=32, terminal_fraction=0.2)._replace(reward=torch.full((32,), 100.0))
    assert agent.update(batch)["q_loss"] == pytest.approx(1.0)  # every error clipped to 1


def test_q_regresses_onto_rewards_when_gamma_is_zero_and_targets_move_by_tau(random_batch):
    agent = small_agent(hidden=(32, 32), gamma=0.0, lr=1e-2, l2=0.0, tau=0.05)
    batch = random_batch(act_dim=1, size=32, terminal_fraction=0.2)
    first = agent.update(batch)["q_loss"]
    before = [p.clone() for p in agent.energy_target.parameters()]
    logs = agent.update(batch)
    for old, new, online in zip(
        before, agent.energy_target.parameters(), agent.energy.parameters(), strict=True
    ):
        assert torch.allclose(new, 0.95 * old + 0.05 * online, atol=1e-6)
    for _ in range(60):
        logs = agent.update(batch)
    assert logs["q_loss"] < 0.5 * first


def test_bad_solver_budgets_are_rejected():
    with pytest.raises(ValueError, match="expected act_iters >= 1, got 0"):
        ICNNQConfig(act_iters=0)
    with pytest.raises(ValueError, match="expected td_clip >= 0"):
        ICNNQConfig(td_clip=-1.0)


def test_l2_shrinks_the_constrained_weights_instead_of_pulling_them_to_log_2(random_batch):
    # Adam's own weight_decay on the raw softplus parameter would take every W^(z) entry to
    # log 2 = 0.69 within these steps; the L2 penalty on W keeps them small
    agent = small_agent(gamma=0.0, lr=0.05, l2=1.0, constraint="softplus")
    batch = random_batch(act_dim=1, size=32, terminal_fraction=0.0)
    with torch.no_grad():  # rewards equal to the initial Q: the TD error starts at zero
        batch = batch._replace(reward=agent.q(batch.obs, batch.action))
    before = agent.energy.z_layers[0].weight.detach().clone()
    for _ in range(200):
        agent.update(batch)
    assert agent.energy.z_layers[0].weight.mean() < before.mean()
    for layer in agent.energy.z_layers:
        assert layer.weight.max() < 0.3


@pytest.mark.parametrize("constraint", ["softplus", "exp", "project"])
def test_energy_and_target_stay_convex_after_aggressive_updates(constraint, random_batch):
    agent = small_agent(constraint=constraint, lr=0.5, tau=0.5)
    assert agent.energy.config["constraint"] == constraint
    for _ in range(10):
        agent.update(random_batch(act_dim=1, size=32, terminal_fraction=0.1))
    for network in (agent.energy, agent.energy_target):
        assert icnn.check_convexity(network, n_pairs=64).ok


def test_double_q_values_the_online_networks_argmin_with_the_target_network(random_batch):
    agent = small_agent(gamma=0.9, lr=0.0, l2=0.0, target_iters=50, double_q=True)
    with torch.no_grad():  # make the target net differ from the online one
        for parameter in agent.energy_target.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    batch = random_batch(act_dim=1, size=32, terminal_fraction=0.2)
    with torch.no_grad():
        online = torch.stack([agent.energy(row.expand(len(GRID), -1), GRID) for row in batch.next_obs])
        chosen = GRID[online.argmin(dim=1)]  # (32, 1): the online net's greedy actions
        next_value = -agent.energy_target(batch.next_obs, chosen)
        expected_target = batch.reward + 0.9 * (1 - batch.terminated) * next_value
        expected_loss = (agent.q(batch.obs, batch.action) - expected_target).square().mean()
        # never above the target network's own maximum (Double DQN's point)
        assert (next_value <= grid_max_q(agent, batch.next_obs, agent.energy_target) + 1e-5).all()
    assert agent.update(batch)["q_loss"] == pytest.approx(expected_loss.item(), rel=1e-3)


def test_warm_lipschitz_keeps_the_greedy_action_the_grid_argmin():
    agent = small_agent(act_iters=50, warm_lipschitz=True)
    train_on_a_bowl(agent)
    obs = torch.randn(12, 3, generator=torch.Generator().manual_seed(2))
    assert agent.lipschitz == {False: None, True: None}
    first = agent.act(obs, explore=False)  # batched greedy solve: sets the acting L
    remembered = agent.lipschitz[False]
    assert remembered is not None and remembered > 0 and agent.lipschitz[True] is None
    again = agent.act(obs, explore=False)  # starts from the remembered L
    with torch.no_grad():
        energies = torch.stack([agent.energy(row.expand(len(GRID), -1), GRID) for row in obs])
    best_on_grid = GRID[energies.argmin(dim=1), 0]
    assert torch.allclose(first[:, 0], best_on_grid, atol=2e-3)
    assert torch.allclose(again[:, 0], best_on_grid, atol=2e-3)


def test_warm_lipschitz_needs_the_pgd_solver():
    with pytest.raises(ValueError, match="warm_lipschitz needs solver='pgd', got solver='lbfgs'"):
        ICNNQConfig(warm_lipschitz=True, solver="lbfgs")


def test_reused_solvers_answer_as_fresh_argmin_calls_across_updates(random_batch):
    """The acting and target solves run on reusable icnn.Argmin handles: after every update
    (weights, target weights and their convexity change) they still return, to the bit, what
    a fresh icnn.argmin call returns."""
    agent = ICNNQ(obs_dim=3, act_dim=2, config=ICNNQConfig(hidden=(16, 16)), seed=0)
    batch = random_batch(obs_dim=3, act_dim=2, size=16)
    obs = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        for target, model in ((False, agent.objective), (True, agent.objective_target)):
            got = agent.greedy_action(obs, target=target)
            fresh = icnn.argmin(model, obs, domain=icnn.Box(-1.0, 1.0), method="pgd",
                                tol=agent.config.solver_tol, max_iter=agent.config.act_iters)
            assert torch.equal(got.y, fresh.y) and torch.equal(got.value, fresh.value)
            assert torch.equal(got.converged, fresh.converged)
        agent.update(batch)

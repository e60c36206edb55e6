"""DDPG: bounded actions, critic regression, actor ascent on Q, Polyak targets."""

import torch

from icnn.tasks.rl.ddpg import DDPG, DDPGConfig


def test_actions_stay_in_the_unit_box_even_with_large_noise():
    torch.manual_seed(0)
    agent = DDPG(3, 2, DDPGConfig(hidden=(16,), noise_sigma=10.0), seed=0)
    actions = torch.stack([agent.act(torch.randn(3), explore=True) for _ in range(50)])
    assert actions.shape == (50, 2) and actions.abs().max() <= 1.0
    assert (actions.abs() == 1.0).any()  # the noise really was added, then clipped


def test_greedy_action_is_the_actor_output_and_repeatable():
    torch.manual_seed(0)
    agent = DDPG(3, 2, DDPGConfig(hidden=(16,)))
    obs = torch.randn(3)
    assert torch.equal(agent.act(obs, explore=False), agent.actor(obs.unsqueeze(0)).squeeze(0))
    assert torch.equal(agent.act(obs, explore=False), agent.act(obs, explore=False))


def test_targets_move_by_tau_toward_the_updated_networks(random_batch):
    torch.manual_seed(0)
    agent = DDPG(3, 2, DDPGConfig(hidden=(16, 16), tau=0.01))
    agent.update(random_batch())  # online and target now differ
    before = {
        name: [p.clone() for p in agent.networks()[name].parameters()]
        for name in ("actor_target", "critic_target")
    }
    agent.update(random_batch(seed=1))
    for name, online in (("actor_target", agent.actor), ("critic_target", agent.critic)):
        for old, new, current in zip(
            before[name], agent.networks()[name].parameters(), online.parameters(), strict=True
        ):
            assert torch.allclose(new, 0.99 * old + 0.01 * current, atol=1e-7)


def test_critic_regresses_onto_rewards_when_gamma_is_zero(random_batch):
    torch.manual_seed(0)
    agent = DDPG(3, 2, DDPGConfig(hidden=(32,), gamma=0.0, critic_lr=1e-2, critic_l2=0.0))
    batch = random_batch(size=32)
    first = agent.update(batch)["critic_loss"]
    for _ in range(60):
        logs = agent.update(batch)
    assert logs["critic_loss"] < 0.5 * first


def test_actor_step_increases_q_of_its_own_actions(random_batch):
    torch.manual_seed(0)
    agent = DDPG(3, 2, DDPGConfig(hidden=(32, 32), actor_lr=1e-2, critic_lr=0.0))
    batch = random_batch()
    q_before = agent.critic(batch.obs, agent.actor(batch.obs)).mean().item()
    for _ in range(20):
        agent.update(batch)
    assert agent.critic(batch.obs, agent.actor(batch.obs)).mean().item() > q_before


def test_terminal_transitions_do_not_bootstrap(random_batch):
    torch.manual_seed(0)
    agent = DDPG(3, 1, DDPGConfig(hidden=(8,), gamma=0.99))
    batch = random_batch(act_dim=1)
    with torch.no_grad():  # make the target critic's value huge: only non-terminal rows see it
        agent.critic_target.net[-1].bias.fill_(1000.0)
    terminal = batch._replace(terminated=torch.ones(64))
    assert agent.update(terminal)["critic_loss"] < 100.0
    assert agent.update(batch._replace(terminated=torch.zeros(64)))["critic_loss"] > 1e5

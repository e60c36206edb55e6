"""Agent registry, config overrides from the command line, and safetensors checkpoints."""

import pytest
import torch

from icnn.tasks.rl.agent import (
    AGENTS,
    Agent,
    load_agent,
    make_agent,
    make_config,
    read_agent_metadata,
    save_agent,
)
from icnn.tasks.rl.ddpg import DDPGConfig


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_every_registered_agent_satisfies_the_protocol(name):
    agent = make_agent(name, obs_dim=3, act_dim=2, options={"hidden": (8,)})
    assert isinstance(agent, Agent)
    assert agent.name == name and (agent.obs_dim, agent.act_dim) == (3, 2)


def test_string_options_are_converted_to_field_types():
    config = make_config(DDPGConfig, {"hidden": "64,32", "tau": "0.005", "noise": "gaussian"})
    assert config == DDPGConfig(hidden=(64, 32), tau=0.005, noise="gaussian")


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['taus'\].*tau=0.01"):
        make_config(DDPGConfig, {"taus": "0.1"})


def test_badly_typed_option_says_what_was_expected():
    with pytest.raises(ValueError, match="expected float for gamma, got 'high'"):
        make_config(DDPGConfig, {"gamma": "high"})


def test_unknown_agent_name_is_rejected():
    with pytest.raises(ValueError, match="expected an agent in"):
        make_agent("sac", 3, 2)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_checkpoint_round_trip_restores_the_greedy_policy(name, tmp_path):
    torch.manual_seed(0)
    agent = make_agent(name, 3, 2, {"hidden": "8,8", "gamma": "0.9"})
    path = save_agent(agent, tmp_path / "agent.safetensors", metadata={"env": "Pendulum-v1"})
    torch.manual_seed(1)  # a fresh init would differ; the loaded one must not
    restored = load_agent(path)
    assert restored.config == agent.config
    obs = torch.randn(3)
    assert torch.equal(restored.act(obs, explore=False), agent.act(obs, explore=False))
    for net_name, network in agent.networks().items():
        restored_state = restored.networks()[net_name].state_dict()
        assert all(torch.equal(v, restored_state[k]) for k, v in network.state_dict().items())
    header = read_agent_metadata(path)
    assert header["agent"] == name and header["env"] == "Pendulum-v1"
    assert [p.name for p in tmp_path.iterdir()] == ["agent.safetensors"]  # no temp file left


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_greedy_actions_of_a_batch_are_each_states_own_action(name):
    torch.manual_seed(0)
    agent = make_agent(name, 3, 2, {"hidden": "8,8"})
    states = torch.randn(5, 3)
    batched = agent.act(states, explore=False)
    assert batched.shape == (5, 2) and batched.abs().max() <= 1.0
    one_by_one = torch.stack([agent.act(state, explore=False) for state in states])
    torch.testing.assert_close(batched, one_by_one, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_act_refuses_exploring_batches_and_wrong_shapes(name):
    agent = make_agent(name, 3, 2, {"hidden": "8"})
    with pytest.raises(ValueError, match=r"exploring actions take one state of shape \(3,\)"):
        agent.act(torch.zeros(4, 3), explore=True)
    with pytest.raises(ValueError, match=r"expected obs of shape \(3,\) or \(n, 3\), got \(4,\)"):
        agent.act(torch.zeros(4), explore=False)

"""What every agent provides, the registry of agents, and agent checkpoints (safetensors).

An agent works in the normalised action scale ``[-1, 1]^act_dim``; the training loop maps actions
to the environment's bounds. A new agent is a module with a config dataclass and a class that
satisfies :class:`Agent`, registered in :data:`AGENTS`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from icnn.tasks.rl.buffer import Batch

# agent name -> "module:Class"; the class carries its config dataclass as ``Config``
AGENTS: dict[str, str] = {
    "ddpg": "icnn.tasks.rl.ddpg:DDPG",
    "naf": "icnn.tasks.rl.naf:NAF",
    "icnn": "icnn.tasks.rl.icnn_q:ICNNQ",
}


@runtime_checkable
class Agent(Protocol):
    """The interface the training loop relies on.

    Constructor: ``AgentClass(obs_dim, act_dim, config=None, *, seed=0, device="cpu")``.
    ``AgentClass.Config`` is its hyper-parameter dataclass; ``agent.config`` the instance used.
    """

    name: ClassVar[str]
    config: Any
    obs_dim: int
    act_dim: int

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """Action in ``[-1, 1]``: ``obs: (obs_dim,)`` → ``(act_dim,)``.

        ``explore=True`` adds the exploration noise (one environment stream);
        ``explore=False`` is the greedy (test) policy, which also takes a batch of states,
        ``(n, obs_dim)`` → ``(n, act_dim)``, in one call (see :func:`greedy_batch`).
        """
        ...

    def reset_noise(self) -> None:
        """Restart the exploration noise (called at the start of each training episode)."""
        ...

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on ``batch`` and the target-network update; returns scalar logs."""
        ...

    def networks(self) -> dict[str, nn.Module]:
        """Every module whose state defines the agent (online and target), by name."""
        ...


def greedy_batch(obs: torch.Tensor, obs_dim: int, explore: bool) -> tuple[torch.Tensor, bool]:
    """``obs`` as a batch ``(n, obs_dim)`` and whether it was one state ``(obs_dim,)``.

    Agents call this first in :meth:`Agent.act`. A ValueError names what was expected when the
    shape is wrong, or when a batch asks for exploration (the noise is one stream per env).
    """
    if obs.dim() == 1 and obs.shape[0] == obs_dim:
        return obs.unsqueeze(0), True
    if obs.dim() == 2 and obs.shape[1] == obs_dim:
        if explore:
            raise ValueError(
                f"exploring actions take one state of shape ({obs_dim},); got a batch "
                f"{tuple(obs.shape)} (batches are for the greedy policy, explore=False)"
            )
        return obs, False
    raise ValueError(f"expected obs of shape ({obs_dim},) or (n, {obs_dim}), got {tuple(obs.shape)}")


def agent_class(name: str) -> type:
    """The class registered as ``name`` in :data:`AGENTS` (imported on first use)."""
    if name not in AGENTS:
        raise ValueError(f"expected an agent in {sorted(AGENTS)}, got {name!r}")
    module_name, class_name = AGENTS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _parse_value(text: str, annotation: Any, key: str) -> Any:
    """Convert a command-line string to the type of a config field."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        parts = [part for part in text.replace(" ", "").split(",") if part]
        return tuple(_parse_value(part, item_type, key) for part in parts)
    if annotation is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"expected a boolean for {key} (true/false), got {text!r}")
        return lowered in ("true", "1", "yes")
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ValueError(
                f"expected {annotation.__name__} for {key}, got {text!r}"
            ) from None
    raise ValueError(f"cannot parse {key} of type {annotation!r} from the command line")


def make_config(config_class: type, options: Mapping[str, Any] | None = None) -> Any:
    """Build ``config_class`` with defaults overridden by ``options``.

    String values (from ``--set KEY=VALUE``) are converted to the field's type; tuples are
    comma-separated (``hidden=64,64``). Unknown keys raise a ValueError listing the valid ones.
    """
    options = dict(options or {})
    hints = typing.get_type_hints(config_class)
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - fields)
    if unknown:
        defaults = ", ".join(
            f"{field.name}={field.default!r}" for field in dataclasses.fields(config_class)
        )
        raise ValueError(
            f"unknown option(s) {unknown} for {config_class.__name__}; expected some of: {defaults}"
        )
    values = {
        key: _parse_value(value, hints[key], key) if isinstance(value, str) else value
        for key, value in options.items()
    }
    return config_class(**values)


def make_agent(
    name: str,
    obs_dim: int,
    act_dim: int,
    options: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Agent:
    """Build the agent ``name`` with its config defaults overridden by ``options``."""
    cls = agent_class(name)
    config = make_config(cls.Config, options)
    return cls(obs_dim, act_dim, config, seed=seed, device=device)


def save_agent(agent: Agent, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None):
    """Write every network of ``agent`` to one safetensors file, atomically.

    Tensors are keyed ``"<network>.<state_dict key>"``; the header metadata holds the agent
    name, its config, ``obs_dim`` and ``act_dim`` (enough for :func:`load_agent`), and
    ``metadata`` (JSON-encoded values). Written by :func:`icnn.checkpoint.write_tensors`.
    """
    from icnn.checkpoint import write_tensors

    tensors = {
        f"{net_name}.{key}": tensor
        for net_name, network in agent.networks().items()
        for key, tensor in network.state_dict().items()
    }
    header = {key: json.dumps(value) for key, value in (metadata or {}).items()}
    header.update({
        "agent": agent.name,
        "config": json.dumps(dataclasses.asdict(agent.config)),
        "obs_dim": str(agent.obs_dim),
        "act_dim": str(agent.act_dim),
    })
    return write_tensors(path, tensors, header)


def read_agent_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The header of an agent checkpoint, JSON values decoded (``agent`` stays a string).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: not a well-formed safetensors file, or a value that is not JSON.
    """
    from icnn.checkpoint import CheckpointError, read_safetensors_header

    _, header = read_safetensors_header(path)
    decoded = {}
    for key, value in header.items():
        try:
            decoded[key] = value if key == "agent" else json.loads(value)
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{path}: expected header field {key!r} to be JSON, got "
                                  f"{value[:60]!r}") from error
    return decoded


def load_agent(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Agent:
    """Rebuild the agent saved by :func:`save_agent` (networks restored; optimisers fresh).

    The checks of :func:`icnn.load`: the safetensors header is validated; the agent name must be
    registered; ``obs_dim``/``act_dim`` positive ints; the config only the agent's own fields with
    their types, within the caps; the shapes it implies (computed without storage) must equal
    the stored ones before the agent is built; tensors must be finite; constrained weights
    non-negative (refused by the icnn models' load hook).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: anything in the file that fails those checks.
    """
    from icnn.checkpoint import (
        MAX_INT,
        CheckpointError,
        check_config_values,
        check_device,
        check_types,
        decode_json_object,
        read_checked_tensors,
        read_safetensors_header,
    )

    device = check_device(device)
    stored, header = read_safetensors_header(path)
    missing = [key for key in ("agent", "config", "obs_dim", "act_dim") if key not in header]
    if missing:
        raise CheckpointError(f"{path}: expected an agent checkpoint header with agent, config, "
                              f"obs_dim and act_dim, got no {missing}")
    if header["agent"] not in AGENTS:
        raise CheckpointError(f"{path}: expected an agent in {sorted(AGENTS)}, got "
                              f"{header['agent']!r}")
    cls = agent_class(header["agent"])
    dims = {}
    for key in ("obs_dim", "act_dim"):
        try:
            value = json.loads(header[key])
        except json.JSONDecodeError:
            value = header[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT:
            raise CheckpointError(f"{path}: expected {key} to be a positive int (at most "
                                  f"{MAX_INT}), got {header[key]!r}")
        dims[key] = value
    values = decode_json_object(path, "config", header["config"])
    check_config_values(path, values)
    check_types(path, "config", values, typing.get_type_hints(cls.Config))
    try:
        config = make_config(cls.Config, _tuples(cls.Config, values))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: config does not fit {cls.Config.__name__}: {error}") from error

    def build(on: str | torch.device) -> Agent:
        return cls(dims["obs_dim"], dims["act_dim"], config, device=on)

    tensors = read_checked_tensors(path, stored, lambda: build("meta").networks(),
                                   f"a {header['agent']} agent", device)
    agent = build(device)
    for net_name, network in agent.networks().items():
        prefix = f"{net_name}."
        state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
        try:
            network.load_state_dict(state, strict=True)
        except (RuntimeError, ValueError) as error:
            raise CheckpointError(f"{path}: weights of {net_name!r} do not fit the agent: "
                                  f"{error}") from error
    return agent


def _tuples(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; turn them back for tuple-typed fields."""
    hints = typing.get_type_hints(config_class)
    return {
        key: tuple(value) if typing.get_origin(hints.get(key)) is tuple else value
        for key, value in values.items()
    }

"""Agent checkpoints go through the checks of ``icnn.load``: a malformed, hostile or corrupt file
is a CheckpointError naming what was expected, and shapes are checked before anything is built."""

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from icnn.checkpoint import CheckpointError
from icnn.tasks.rl.agent import load_agent, make_agent, save_agent


def _metadata(path):
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(size))["__metadata__"]


def _saved(tmp_path, name="ddpg", **options):
    torch.manual_seed(0)
    agent = make_agent(name, 3, 2, {"hidden": "8", **options})
    return save_agent(agent, tmp_path / "agent.safetensors", metadata={"env": "Pendulum-v1"})


def _tamper(path, tensors=None, **meta_changes):
    meta = _metadata(path)
    meta.update(meta_changes)
    save_file(tensors if tensors is not None else load_file(str(path)), str(path), metadata=meta)
    return path


def test_garbage_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "agent.safetensors"
    path.write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_agent(path)


def test_header_that_is_a_json_list_is_refused(tmp_path):
    path = tmp_path / "agent.safetensors"
    path.write_bytes(struct.pack("<Q", 6) + b"[1, 2]")
    with pytest.raises(CheckpointError, match="expected header to be a JSON object, got list"):
        load_agent(path)


def test_unknown_agent_is_refused(tmp_path):
    path = _tamper(_saved(tmp_path), agent="os.system")
    with pytest.raises(CheckpointError, match="expected an agent in.*got 'os.system'"):
        load_agent(path)


def test_missing_header_fields_are_named(tmp_path):
    path = _saved(tmp_path)
    meta = _metadata(path)
    del meta["obs_dim"]
    save_file(load_file(str(path)), str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="obs_dim"):
        load_agent(path)


@pytest.mark.parametrize("value", ["-3", "2.5", "true", "\"3\"", "not json"])
def test_bad_obs_dim_is_refused(tmp_path, value):
    path = _tamper(_saved(tmp_path), obs_dim=value)
    with pytest.raises(CheckpointError, match="obs_dim"):
        load_agent(path)


def test_config_with_an_unknown_key_is_refused(tmp_path):
    path = _saved(tmp_path)
    config = json.loads(_metadata(path)["config"])
    _tamper(path, config=json.dumps({**config, "device": "meta"}))
    with pytest.raises(CheckpointError, match="device"):
        load_agent(path)


def test_config_with_wrong_types_is_refused(tmp_path):
    path = _saved(tmp_path)
    config = json.loads(_metadata(path)["config"])
    _tamper(path, config=json.dumps({**config, "hidden": "eight"}))
    with pytest.raises(CheckpointError, match="hidden"):
        load_agent(path)


def test_huge_widths_are_refused_before_building(tmp_path):
    path = _saved(tmp_path)
    config = json.loads(_metadata(path)["config"])
    _tamper(path, config=json.dumps({**config, "hidden": [2**30]}))
    with pytest.raises(CheckpointError, match=r"expected shape \(1073741824, 3\).*got \(8, 3\)"):
        load_agent(path)


def test_nan_weights_are_refused(tmp_path):
    path = _saved(tmp_path)
    tensors = load_file(str(path))
    name = next(iter(tensors))
    tensors[name].view(-1)[0] = float("nan")
    _tamper(path, tensors)
    with pytest.raises(CheckpointError, match="NaN"):
        load_agent(path)


def test_negative_constrained_weights_of_icnn_q_are_refused(tmp_path):
    path = _saved(tmp_path, "icnn", hidden="8,8")
    tensors = load_file(str(path))
    name = next(k for k in tensors if k.startswith("energy.") and "z_layers" in k)
    tensors[name] = -tensors[name].abs() - 1.0
    _tamper(path, tensors)
    with pytest.raises(CheckpointError, match="convex"):
        load_agent(path)


def test_missing_tensor_is_refused(tmp_path):
    path = _saved(tmp_path)
    tensors = load_file(str(path))
    tensors.pop(next(iter(tensors)))
    _tamper(path, tensors)
    with pytest.raises(CheckpointError, match="missing"):
        load_agent(path)

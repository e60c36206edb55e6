"""Checkpoints: atomic, code-free, and refusing anything corrupt or non-convex."""

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

import icnn
from icnn.checkpoint import CheckpointError, load_metadata, read_header


def test_round_trip_rebuilds_the_same_function_and_keeps_metadata(tmp_path):
    model = icnn.PICNN(3, 4, [8, 8], activation={"name": "leaky_relu", "negative_slope": 0.1},
                       strong_convexity=0.2)
    path = icnn.save(model, tmp_path / "m.safetensors", metadata={"epoch": 3})
    loaded = icnn.load(path)
    x, y = torch.randn(5, 3), torch.randn(5, 4)
    torch.testing.assert_close(loaded(x, y), model(x, y))
    assert loaded.config == model.config
    assert load_metadata(path) == {"epoch": 3}


def test_save_leaves_no_temporary_files_behind(tmp_path):
    icnn.save(icnn.FICNN(2, [4]), tmp_path / "m.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    first = icnn.FICNN(2, [4])
    icnn.save(first, path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("icnn.checkpoint.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        icnn.save(icnn.FICNN(2, [4]), path)
    y = torch.randn(3, 2)
    torch.testing.assert_close(icnn.load(path)(y), first(y))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_truncated_file_is_refused(tmp_path):
    path = icnn.save(icnn.FICNN(4, [16]), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        icnn.load(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError):
        icnn.load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        icnn.load(tmp_path / "nope.safetensors")


def _rewrite(path, tensors, meta):
    save_file(tensors, str(path), metadata=meta)


def test_tampered_negative_constrained_weight_is_refused(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8, 8], constraint="project"), tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    meta = _metadata(path)
    tensors["z_layers.0.weight"][0, 0] = -1.0
    _rewrite(path, tensors, meta)
    with pytest.raises(CheckpointError, match="non-convex"):
        icnn.load(path)


def test_nan_weights_are_refused(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8]), tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    tensors["passthrough.bias"][0] = float("nan")
    _rewrite(path, tensors, _metadata(path))
    with pytest.raises(CheckpointError, match="NaN"):
        icnn.load(path)


def test_unknown_model_class_is_refused_without_importing_anything(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8]), tmp_path / "m.safetensors")
    meta = _metadata(path)
    meta["model_class"] = "os.system"
    _rewrite(path, load_file(str(path)), meta)
    with pytest.raises(CheckpointError, match="model class 'os.system'"):
        icnn.load(path)


def test_header_reports_class_config_and_dtype(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8]).double(), tmp_path / "m.safetensors")
    header = read_header(path)
    assert header["model_class"] == "FICNN" and header["dtype"] == "float64"
    assert header["config"]["y_dim"] == 3


def test_state_dict_with_negative_weights_is_refused_by_load_state_dict():
    model = icnn.FICNN(3, [8, 8], constraint="project")
    state = model.state_dict()
    state["z_layers.0.weight"] = -state["z_layers.0.weight"].abs() - 1
    with pytest.raises(ValueError, match="breaks convexity"):
        model.load_state_dict(state)


def _metadata(path):
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(size))["__metadata__"]


def test_conv_models_round_trip_and_stay_convex(tmp_path):
    model = icnn.ConvPICNN(x_shape=(1, 12, 8), y_shape=(1, 12, 8), channels=(4, 4),
                           kernel_sizes=(3, 3), strides=(2, 1), dense=(8,), x_channels=(4, 4),
                           x_dense=(8,))
    loaded = icnn.load(icnn.save(model, tmp_path / "conv.safetensors"))
    x, y = torch.randn(3, 1, 12, 8), torch.randn(3, 1, 12, 8)
    torch.testing.assert_close(loaded(x, y), model(x, y))
    report = icnn.check_convexity(loaded, n_pairs=32, generator=torch.Generator().manual_seed(0))
    assert report.ok, str(report)


def test_nonconvex_ablation_is_refused_unless_asked_for(tmp_path):
    model = icnn.ConvPICNN(x_shape=(1, 8, 8), y_shape=(1, 8, 8), channels=(2,), kernel_sizes=(3,),
                           strides=(1,), dense=(4,), x_channels=(2,), x_dense=(4,), convex=False)
    path = icnn.save(model, tmp_path / "ablation.safetensors")
    with pytest.raises(CheckpointError, match="convex=False"):
        icnn.load(path)
    assert icnn.load(path, allow_nonconvex=True).is_convex is False
    assert not icnn.check_convexity(model, n_pairs=8).structural_ok


def test_checkpoint_gets_ordinary_file_permissions(tmp_path):
    path = icnn.save(icnn.FICNN(2, [4]), tmp_path / "m.safetensors")
    assert path.stat().st_mode & 0o044  # readable by group/others under a usual umask


# --- hostile or malformed headers: always a CheckpointError naming what was expected ---------


def _write_raw(path, header_json: bytes, data: bytes = b""):
    path.write_bytes(struct.pack("<Q", len(header_json)) + header_json + data)
    return path


def test_header_that_is_a_json_list_is_refused(tmp_path):
    path = _write_raw(tmp_path / "m.safetensors", b"[1, 2, 3]")
    with pytest.raises(CheckpointError, match="expected header to be a JSON object, got list"):
        icnn.load(path)


def test_metadata_that_is_not_an_object_is_refused(tmp_path):
    path = _write_raw(tmp_path / "m.safetensors", b'{"__metadata__": [1]}')
    with pytest.raises(CheckpointError, match="__metadata__"):
        icnn.load(path)


def _tamper_config(tmp_path, model, **changes):
    path = icnn.save(model, tmp_path / "m.safetensors")
    meta = _metadata(path)
    config = json.loads(meta["config"])
    config.update(changes)
    meta["config"] = json.dumps(config)
    _rewrite(path, load_file(str(path)), meta)
    return path


@pytest.mark.parametrize("key, value", [("device", "meta"), ("dtype", "float16")])
def test_config_cannot_inject_a_device_or_dtype(tmp_path, key, value):
    path = _tamper_config(tmp_path, icnn.FICNN(3, [8]), **{key: value})
    with pytest.raises(CheckpointError, match=f"config key '{key}'"):
        icnn.load(path)


def test_config_with_an_unknown_key_is_refused(tmp_path):
    path = _tamper_config(tmp_path, icnn.FICNN(3, [8]), layers=4)
    with pytest.raises(CheckpointError, match="unknown config key.*'layers'"):
        icnn.load(path)


@pytest.mark.parametrize("hidden", ["eight", [8.5], [True], [{"a": 1}]])
def test_config_with_wrong_types_is_refused(tmp_path, hidden):
    path = _tamper_config(tmp_path, icnn.FICNN(3, [8]), hidden=hidden)
    with pytest.raises(CheckpointError):
        icnn.load(path)


def test_config_that_is_not_an_object_is_refused(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8]), tmp_path / "m.safetensors")
    meta = _metadata(path)
    meta["config"] = "[3, 8]"
    _rewrite(path, load_file(str(path)), meta)
    with pytest.raises(CheckpointError, match="expected config to be a JSON object, got list"):
        icnn.load(path)


def test_huge_widths_in_a_tiny_file_are_refused_before_any_weight_is_allocated(tmp_path,
                                                                                monkeypatch):
    path = _tamper_config(tmp_path, icnn.FICNN(3, [8]), hidden=[2**30])
    built = []
    monkeypatch.setattr(icnn.FICNN, "reset_parameters",
                        lambda self: built.append(self.passthrough.weight.device.type))
    with pytest.raises(CheckpointError, match="passthrough.weight.*expected.*\\(1073741825, 3\\)"
                                              ".*got \\(9, 3\\)"):
        icnn.load(path)
    assert built == ["meta"]  # only the storage-free shape computation ran


def test_widths_that_differ_from_the_stored_tensors_are_refused_before_building(tmp_path):
    path = _tamper_config(tmp_path, icnn.FICNN(3, [8]), hidden=[6])
    with pytest.raises(CheckpointError, match="shape"):
        icnn.load(path)


def test_too_many_layers_are_refused_by_the_cap(tmp_path):
    path = _tamper_config(tmp_path, icnn.FICNN(3, [8]), hidden=[1] * 100_000)
    with pytest.raises(CheckpointError, match="at most"):
        icnn.load(path)


def test_data_offsets_past_the_end_of_the_file_are_refused(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]},
              "__metadata__": {"icnn_format": "1"}}
    path = _write_raw(tmp_path / "m.safetensors", json.dumps(header).encode(), b"\x00" * 16)
    with pytest.raises(CheckpointError, match="w.*bytes"):
        read_header(path)


def test_shape_that_does_not_match_its_byte_count_is_refused(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]},
              "__metadata__": {"icnn_format": "1"}}
    path = _write_raw(tmp_path / "m.safetensors", json.dumps(header).encode(), b"\x00" * 8)
    with pytest.raises(CheckpointError, match="expected 16 bytes.*got 8"):
        read_header(path)


def test_stored_dtype_other_than_the_header_dtype_is_refused(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8]), tmp_path / "m.safetensors")
    tensors = {k: v.double() for k, v in load_file(str(path)).items()}
    _rewrite(path, tensors, _metadata(path))
    with pytest.raises(CheckpointError, match="float32.*got float64"):
        icnn.load(path)


def test_unknown_header_dtype_is_refused(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8]), tmp_path / "m.safetensors")
    meta = _metadata(path)
    meta["dtype"] = "complex128"
    _rewrite(path, load_file(str(path)), meta)
    with pytest.raises(CheckpointError, match="dtype"):
        icnn.load(path)


def test_map_location_meta_is_refused(tmp_path):
    path = icnn.save(icnn.FICNN(3, [8]), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="map_location"):
        icnn.load(path, map_location="meta")


def test_a_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises((IsADirectoryError, FileNotFoundError)):
        icnn.load(tmp_path)


MODEL_CASES = [
    (icnn.FICNN, {"y_dim": 3, "hidden": [5, 7]}),
    (icnn.FICNN, {"y_dim": 2, "hidden": [], "constraint": "project"}),
    (icnn.PICNN, {"x_dim": 2, "y_dim": 3, "hidden": [5, 7], "x_hidden": [11, 13],
                  "constraint": "exp"}),
    (icnn.ConvFICNN, {"y_shape": [1, 8, 8], "channels": [2, 4], "kernel_sizes": [3, 3],
                      "strides": [1, 2], "dense": [4]}),
    (icnn.ConvPICNN, {"x_shape": [3, 8, 8], "y_shape": [1, 8, 8], "channels": [2, 4],
                      "kernel_sizes": [3, 3], "strides": [1, 2], "dense": [5],
                      "x_channels": [6, 7], "x_dense": [9]}),
]


@pytest.mark.parametrize("cls, config", MODEL_CASES)
def test_expected_shapes_match_the_real_model(cls, config):
    from icnn.checkpoint import expected_shapes

    real = {k: tuple(v.shape) for k, v in cls(**config).state_dict().items()}
    assert expected_shapes(lambda: cls(**config)) == real


def test_feedforward_baseline_goes_through_the_same_checks(tmp_path):
    from icnn.tasks.multilabel.models import FeedForward, load_feedforward, save_feedforward

    torch.manual_seed(0)
    path = save_feedforward(FeedForward(4, 3, hidden=5), tmp_path / "ff.safetensors", {"seed": 1})
    assert load_feedforward(path).config == {"x_dim": 4, "n_labels": 3, "hidden": 5, "dropout": 0.0}
    meta = _metadata(path)
    meta["config"] = json.dumps({"x_dim": 4, "n_labels": 3, "hidden": 2**30, "dropout": 0.0})
    _rewrite(path, load_file(str(path)), meta)
    with pytest.raises(CheckpointError, match=r"expected shape \(1073741824, 4\).*got \(5, 4\)"):
        load_feedforward(path)
    with pytest.raises(CheckpointError, match="expected a FeedForward baseline"):
        load_feedforward(icnn.save(icnn.FICNN(3, [8]), tmp_path / "m.safetensors"))


def test_multilabel_training_does_not_import_the_experiment():
    import subprocess
    import sys

    code = ("import sys, icnn.tasks.multilabel.training; "
            "assert 'icnn.tasks.multilabel.experiment' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_trainer_weights_of_a_plain_module_are_checked_against_it(tmp_path):
    from icnn.learn.state import load_weights_into, save_weights

    source = torch.nn.Linear(3, 2)
    path = save_weights(source, tmp_path / "w.safetensors", metadata={"epoch": 1})
    target = torch.nn.Linear(3, 2)
    load_weights_into(target, path)
    torch.testing.assert_close(target.weight, source.weight)
    with pytest.raises(CheckpointError, match=r"'weight': expected shape \(4, 3\).*got \(2, 3\)"):
        load_weights_into(torch.nn.Linear(3, 4), path)
    tensors = load_file(str(path))
    tensors["bias"][0] = float("inf")
    _rewrite(path, tensors, _metadata(path))
    with pytest.raises(CheckpointError, match="NaN/inf"):
        load_weights_into(target, path)

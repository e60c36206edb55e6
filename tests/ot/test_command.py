"""``icnn ot`` and ``icnn ot map``: the run folder's files, applying a map, one-line errors."""

import json

import numpy as np
import pytest
import torch

from icnn.cli import main
from icnn.ot.checkpoint import load_transport

FAST = ["--epochs", "1", "--samples", "256", "--batch-size", "128", "--hidden", "8,8",
        "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ot") / "run"
    assert main(["ot", "--benchmark", "gaussian:2", "--solver", "w2gn", "--out", str(out), *FAST]) == 0
    return out


def test_run_folder_has_metrics_curve_checkpoint_and_picture(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("l2_uvp_forward", "l2_uvp_inverse", "cos_forward", "w2_squared_estimate",
                "seconds_per_step", "wall_seconds", "seed", "baseline_linear"):
        assert key in metrics
    assert metrics["seed"] == 0 and metrics["dim"] == 2 and metrics["steps"] == 2
    # the Gaussian start on a Gaussian pair is the linear map of the sample moments: a few percent
    assert metrics["l2_uvp_forward"] < 5.0
    header = (run_dir / "curve.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "train_loss", "l2_uvp_forward"} <= set(header)
    assert (run_dir / "transport.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "train" / "checkpoints" / "latest.json").is_file()


def test_ot_map_applies_the_saved_map_and_its_inverse(run_dir, tmp_path):
    points = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", points)
    assert main(["ot", "map", "--checkpoint", str(run_dir / "transport.safetensors"), "--inputs",
                 str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")]) == 0
    model, _, _ = load_transport(run_dir / "transport.safetensors")
    expected = model.forward_map(torch.from_numpy(points)).detach().numpy()
    mapped = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(mapped, expected, rtol=1e-6, atol=1e-6)
    assert main(["ot", "map", "--checkpoint", str(run_dir / "transport.safetensors"), "--inputs",
                 str(tmp_path / "y.npy"), "--inverse", "--out", str(tmp_path / "back.npy")]) == 0
    # W2GN's ∇g inverts ∇f only approximately (the cycle term): close, not equal
    assert np.abs(np.load(tmp_path / "back.npy") - points).max() < 0.5


def _error(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("icnn ot: error: expected")
    return err


def test_bad_inputs_are_one_line_errors(tmp_path, capsys, run_dir):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a2.npy", rng.normal(size=(32, 2)))
    np.save(tmp_path / "b3.npy", rng.normal(size=(32, 3)))
    bad = rng.normal(size=(32, 2))
    bad[5, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "few.npy", rng.normal(size=(3, 2)))
    out = ["--out", str(tmp_path / "o")]
    assert "source D = 2 and target D = 3" in _error(
        ["ot", "--source", str(tmp_path / "a2.npy"), "--target", str(tmp_path / "b3.npy"), *out], capsys)
    assert "NaN or inf in row 5" in _error(
        ["ot", "--source", str(tmp_path / "a2.npy"), "--target", str(tmp_path / "nan.npy"), *out], capsys)
    assert "at least 8" in _error(
        ["ot", "--source", str(tmp_path / "few.npy"), "--target", str(tmp_path / "a2.npy"), *out], capsys)
    assert "mix3tomix10:D" in _error(["ot", "--benchmark", "swiss:2", *out], capsys)
    assert "dimension in (2, 4" in _error(["ot", "--benchmark", "mix3tomix10:5", *out], capsys)
    assert "either --source" in _error(["ot", "--benchmark", "gaussian:2", "--source",
                                        str(tmp_path / "a2.npy"), *out], capsys)
    assert "width D = 2" in _error(["ot", "map", "--checkpoint", str(run_dir / "transport.safetensors"),
                                    "--inputs", str(tmp_path / "b3.npy"), "--out", str(tmp_path / "y.npy")],
                                   capsys)


def test_files_with_contexts_fit_a_conditional_map(tmp_path):
    rng = np.random.default_rng(1)
    context = rng.integers(0, 2, size=(256, 1)).astype(np.float32)
    source = rng.normal(size=(256, 2)).astype(np.float32)
    target = (rng.normal(size=(256, 2)) * 0.5 + 2 * context).astype(np.float32)
    for name, array in (("x", source), ("y", target), ("c", context)):
        np.save(tmp_path / f"{name}.npy", array)
    out = tmp_path / "cond"
    assert main(["ot", "--source", str(tmp_path / "x.npy"), "--target", str(tmp_path / "y.npy"),
                 "--source-context", str(tmp_path / "c.npy"), "--target-context", str(tmp_path / "c.npy"),
                 "--solver", "mm", "--out", str(out), "--start", "identity",
                 *FAST[:2], *FAST[4:]]) == 0  # no --samples with files
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["conditional"] and "l2_uvp_forward" not in metrics  # no true map for files
    model, _, _ = load_transport(out / "transport.safetensors")
    assert model.conditional and model.config.context_dim == 1

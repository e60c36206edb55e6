"""Regressions of the ``icnn ot`` review: resume identity, divergence, contexts, timing, errors."""

import json

import numpy as np
import pytest
import torch

from icnn.cli import main
from icnn.ot.checkpoint import load_transport
from icnn.ot.fit import DivergenceError, OTConfig, fit_transport
from icnn.ot.samples import check_context_overlap

FAST = ["--epochs", "1", "--samples", "128", "--batch-size", "64", "--hidden", "4",
        "--threads", "1"]
FAST_FLAGS = dict(zip(FAST[::2], FAST[1::2], strict=True))


def _ot(*args):
    return main(["ot", *args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ot") / "run"
    assert _ot("--benchmark", "gaussian:2", "--out", str(out), *FAST) == 0
    return out


@pytest.mark.parametrize("change", [
    ["--benchmark", "gaussian:3"], ["--solver", "mm"], ["--samples", "256"], ["--cycle", "2"],
    ["--hidden", "8"], ["--dtype", "float64"], ["--seed", "1"], ["--activation", "softplus"],
])
def test_resume_of_another_run_is_one_line_exit_2(run_dir, change, capsys):
    args = {"--benchmark": "gaussian:2", "--out": str(run_dir), **FAST_FLAGS}
    args.update(dict(zip(change[::2], change[1::2], strict=True)))
    args["--epochs"] = "2"
    before = (run_dir / "curve.csv").read_text()
    capsys.readouterr()
    assert _ot(*[x for kv in args.items() for x in kv], "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected --resume with the settings" in err and "got" in err
    assert change[0].lstrip("-").replace("-", "_").split("_")[0] in err or "sha256" in err
    assert (run_dir / "curve.csv").read_text() == before


def test_resume_of_the_same_run_continues_and_times_training_only(run_dir, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(run_dir, folder)
    fast = {**FAST_FLAGS, "--epochs": "2"}
    assert _ot("--benchmark", "gaussian:2", "--out", str(folder), "--resume",
               *[x for kv in fast.items() for x in kv]) == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    curve = (folder / "curve.csv").read_text().splitlines()
    assert len(curve) == 3  # header + epochs 1, 2
    first = json.loads((run_dir / "metrics.json").read_text())
    # the training time of epoch 1 (recorded by the first run) is kept, evaluation is apart
    assert metrics["train_seconds"] > first["train_seconds"] > 0
    assert metrics["eval_seconds"] > 0 and metrics["resumed"] is True
    assert metrics["seconds_per_step"] == pytest.approx(metrics["train_seconds"] / metrics["steps"])


def test_resume_of_a_folder_without_identity_is_refused(run_dir, tmp_path, capsys):
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(run_dir, folder)
    (folder / "train" / "identity.json").unlink()
    assert _ot("--benchmark", "gaussian:2", "--out", str(folder), "--resume", *FAST) == 2
    assert "identity.json" in capsys.readouterr().err


def test_disjoint_discrete_contexts_are_refused():
    with pytest.raises(ValueError, match="share at least one value"):
        check_context_overlap(torch.zeros(8, 1), torch.ones(8, 1))
    check_context_overlap(torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [2.0]]))


def test_disjoint_continuous_context_ranges_are_refused():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(200, 2, generator=g), torch.rand(200, 2, generator=g)
    check_context_overlap(a, b)
    with pytest.raises(ValueError, match="column 1"):
        check_context_overlap(a, b + torch.tensor([0.0, 5.0]))


def test_fit_refuses_disjoint_contexts():
    x, y = torch.randn(64, 2), torch.randn(64, 2)
    with pytest.raises(ValueError, match="share at least one value"):
        fit_transport(x, y, OTConfig(hidden=(4,), epochs=1, batch_size=32),
                      source_context=torch.zeros(64, 1), target_context=torch.ones(64, 1))


@pytest.mark.parametrize("solver", ["w2gn", "mm", "amortized"])
def test_divergence_is_one_line_exit_2_naming_the_lr(solver, tmp_path, capsys):
    code = _ot("--benchmark", "gaussian:2", "--out", str(tmp_path / solver), "--solver", solver,
               "--lr", "1e3", "--epochs", "3", *FAST[2:])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "diverged" in err and "--lr" in err


def test_divergence_error_is_a_value_error():
    assert issubclass(DivergenceError, ValueError)


def test_out_that_is_a_file_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "f"
    path.write_text("x")
    assert _ot("--benchmark", "gaussian:2", "--out", str(path), *FAST) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected --out" in err


def test_map_out_that_is_a_folder_is_one_line_exit_2(run_dir, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((4, 2), dtype=np.float32))
    assert _ot("map", "--checkpoint", str(run_dir / "transport.safetensors"), "--inputs",
               str(tmp_path / "x.npy"), "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected --out" in err and ".tmp" not in err


def test_inexact_gaussian_start_warns_and_is_recorded(tmp_path):
    with pytest.warns(UserWarning, match="--output-quadratic on"):
        assert _ot("--benchmark", "gaussian:3", "--out", str(tmp_path / "r1"), "--epochs", "1",
                   "--samples", "128", "--batch-size", "64", "--hidden", "4", "--lr", "1e-12",
                   "--output-quadratic", "off") == 0
    metrics = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    assert metrics["start_exact"] is False and metrics["start_error"] > 0.05
    assert "quadratic-rank" in metrics["start_warning"]


def test_full_rank_gaussian_start_is_exact(tmp_path):
    assert _ot("--benchmark", "gaussian:3", "--out", str(tmp_path / "r2"), "--quadratic-rank", "2",
               *FAST) == 0
    metrics = json.loads((tmp_path / "r2" / "metrics.json").read_text())
    assert metrics["start_exact"] is True and metrics["start_error"] < 1e-2  # network share 1e-3
    assert "start_warning" not in metrics


def test_amortized_inverse_with_unconverged_solves_refuses_or_reports(tmp_path, capsys):
    out = tmp_path / "am"
    assert _ot("--benchmark", "gaussian:3", "--solver", "amortized", "--quadratic-rank", "2",
               "--conjugate-max-iter", "2", "--out", str(out), *FAST) == 0
    far = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32) * 1e4
    np.save(tmp_path / "far.npy", far)
    args = ["map", "--checkpoint", str(out / "transport.safetensors"), "--inputs", str(tmp_path / "far.npy"),
            "--inverse", "--out", str(tmp_path / "inv.npy")]
    capsys.readouterr()
    assert _ot(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "of 10 unconverged" in err and "--allow-unconverged" in err
    assert not (tmp_path / "inv.npy").exists()
    assert _ot(*args, "--allow-unconverged") == 0
    captured = capsys.readouterr()
    assert "of 10 conjugate solves did not converge" in captured.err
    assert np.load(tmp_path / "inv.npy").shape == (10, 3)


@pytest.mark.parametrize("name", ["missing.safetensors", "corrupt.safetensors"])
def test_bad_checkpoint_is_one_expected_got_line(name, tmp_path, capsys):
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    np.save(tmp_path / "x.npy", np.zeros((4, 2), dtype=np.float32))
    assert _ot("map", "--checkpoint", str(tmp_path / name), "--inputs", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "y.npy")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected an 'icnn ot' checkpoint" in err and ", got " in err


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_activation_with_kinks_is_refused(activation, tmp_path, capsys):
    assert _ot("--benchmark", "gaussian:2", "--out", str(tmp_path / "a"), "--activation", activation,
               *FAST) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected a smooth activation" in err and activation in err


def test_samples_with_files_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", rng.normal(size=(32, 2)).astype(np.float32))
    assert _ot("--source", str(tmp_path / "a.npy"), "--target", str(tmp_path / "b.npy"), "--samples", "16",
               "--out", str(tmp_path / "r"), "--epochs", "1", "--hidden", "4") == 2
    assert "expected --samples only with --benchmark" in capsys.readouterr().err


def test_pair_seed_fixes_the_pair_across_training_seeds():
    from icnn.ot.problems import make_problem

    _, _, a = make_problem("gaussian:3", 16, 0, pair_seed=7)
    _, _, b = make_problem("gaussian:3", 16, 1, pair_seed=7)
    _, _, c = make_problem("gaussian:3", 16, 1)
    assert torch.equal(a.mapped, b.mapped) and not torch.equal(a.mapped, c.mapped)
    # the default (no pair seed) is the old behaviour: the pair of the training seed
    _, _, d = make_problem("gaussian:3", 16, 7)
    assert torch.equal(a.mapped, d.mapped)


def test_training_seed_equal_to_the_test_points_seed_is_refused():
    from icnn.ot.gaussian_pair import TRUTH_SEED
    from icnn.ot.problems import make_problem

    with pytest.raises(ValueError, match=f"other than {TRUTH_SEED}"):
        make_problem("gaussian:2", 16, TRUTH_SEED)


@pytest.mark.parametrize("solver", ["w2gn", "mm", "amortized"])
def test_default_gaussian_start_is_exact_at_rank_1_and_round_trips(solver, tmp_path):
    out = tmp_path / solver
    assert _ot("--benchmark", "gaussian:4", "--solver", solver, "--out", str(out), *FAST[:2], "--samples",
               "256", *FAST[4:], "--lr", "1e-12") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["quadratic_rank"] == 1 and metrics["start_exact"] is True
    assert metrics["start_error"] < 2e-2 and "start_warning" not in metrics
    # lr 1e-12: the scores are the start's, the Gaussian map of the training moments
    assert metrics["l2_uvp_forward"] < 3.0 and metrics["l2_uvp_inverse"] < 3.0
    model, _, _ = load_transport(out / "transport.safetensors")
    assert model.config.output_quadratic
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    assert _ot("map", "--checkpoint", str(out / "transport.safetensors"), "--inputs", str(tmp_path / "x.npy"),
               "--inverse", "--out", str(tmp_path / "y.npy")) == 0


def test_quadratic_output_traits_gradient_and_conjugate():
    from icnn import conjugate, gradient_map
    from icnn.ot.transport_model import PotentialConfig, QuadraticOutput, TransportModel

    torch.manual_seed(0)
    model = TransportModel(PotentialConfig(dim=3, hidden=(8,), quadratic_rank=1, strong_convexity=0.5,
                                           output_quadratic=True)).double()
    f = model.f
    assert isinstance(f, QuadraticOutput)
    with torch.no_grad():
        f.factor.copy_(torch.randn(3, 3, dtype=torch.float64))
        f.linear.copy_(torch.randn(3, dtype=torch.float64))
    traits = f.energy_traits()
    assert traits.convex and not traits.kinks and traits.strong_convexity >= 0.5
    y = torch.randn(5, 3, dtype=torch.float64)
    z = gradient_map(f)(y)
    result = conjugate(f, z, tol=1e-8, max_iter=500)
    assert bool(result.converged.all())
    torch.testing.assert_close(result.y, y, atol=1e-5, rtol=1e-5)  # ∇f*(∇f(y)) = y

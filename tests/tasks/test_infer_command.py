"""``icnn infer`` with its default arguments: no --lo/--hi means an unbounded domain, which is
solved for a strongly convex model and refused in one line otherwise."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import icnn
from icnn import cli


def _reference_argmin(model, x, y_dim):
    """argmin_y f(x, y) by scipy's BFGS on the float64 model: independent of icnn.argmin."""
    def fun(y):
        y_t = torch.tensor(y, dtype=torch.float64, requires_grad=True)
        value = model(x.unsqueeze(0), y_t.unsqueeze(0)).sum()
        (grad,) = torch.autograd.grad(value, y_t)
        return float(value.detach()), grad.numpy()

    result = minimize(fun, np.zeros(y_dim), jac=True, method="BFGS", options={"gtol": 1e-10})
    assert np.linalg.norm(result.jac) < 1e-7, result  # a stationary point of a convex function
    return result.x, result.fun


def test_default_unbounded_domain_solves_a_strongly_convex_model(tmp_path, capsys):
    torch.manual_seed(0)
    model = icnn.PICNN(2, 3, [8, 8], activation="softplus", strong_convexity=1.0).double()
    checkpoint = icnn.save(model, tmp_path / "m.safetensors")
    contexts = np.random.default_rng(0).standard_normal((4, 2))
    np.save(tmp_path / "x.npy", contexts)
    out = tmp_path / "y.npz"
    assert cli.main(["infer", "--checkpoint", str(checkpoint), "--inputs",
                     str(tmp_path / "x.npy"), "--out", str(out), "--tol", "1e-12"]) == 0
    with np.load(out) as result:
        solutions, values = result["y"], result["value"]
    for i, x in enumerate(torch.as_tensor(contexts)):
        y_ref, value_ref = _reference_argmin(model, x, 3)
        np.testing.assert_allclose(solutions[i], y_ref, atol=1e-5)
        assert values[i] == pytest.approx(value_ref, abs=1e-9)


def test_every_default_for_an_ficnn_without_inputs(tmp_path):
    """Only --checkpoint and --out: zeros as start points (no clamp by absent bounds)."""
    torch.manual_seed(1)
    model = icnn.FICNN(2, [8], activation="softplus", strong_convexity=0.5).double()
    checkpoint = icnn.save(model, tmp_path / "m.safetensors")
    out = tmp_path / "y.npz"
    assert cli.main(["infer", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    with np.load(out) as result:
        solutions, values = result["y"], result["value"]
    assert solutions.shape == (1, 2) and bool(result_converged(out))
    value_ref = minimize(lambda y: float(model(torch.tensor(y).unsqueeze(0))), np.zeros(2),
                         method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14}).fun
    # the method's default tolerance: the value within 1e-4 of the minimum
    assert values[0] == pytest.approx(value_ref, abs=1e-4) and values[0] >= value_ref - 1e-12


def result_converged(path):
    with np.load(path) as result:
        return result["converged"].all()


@pytest.mark.parametrize("bounds", [[], ["--lo", "-1"], ["--hi", "1"]])
def test_unbounded_domain_without_strong_convexity_is_refused_in_one_line(tmp_path, capsys,
                                                                           bounds):
    checkpoint = icnn.save(icnn.FICNN(2, [8]), tmp_path / "m.safetensors")
    code = cli.main(["infer", "--checkpoint", str(checkpoint), "--out",
                     str(tmp_path / "y.npz"), *bounds])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "pass --lo and --hi" in err and "strong_convexity 0" in err
    assert not (tmp_path / "y.npz").exists()


@pytest.mark.parametrize("flags, message", [
    (["--lo", "1", "--hi", "-1"], "expected --lo < --hi, got --lo 1.0 and --hi -1.0"),
    (["--lo", "nan", "--hi", "1"], "expected a finite --lo, got nan"),
    (["--batch", "0"], "expected --batch >= 1, got 0"),
])
def test_bad_bounds_and_batch_are_refused(tmp_path, capsys, flags, message):
    checkpoint = icnn.save(icnn.FICNN(2, [8], strong_convexity=1.0), tmp_path / "m.safetensors")
    assert cli.main(["infer", "--checkpoint", str(checkpoint), "--out",
                     str(tmp_path / "y.npz"), *flags]) == 2
    assert message in capsys.readouterr().err

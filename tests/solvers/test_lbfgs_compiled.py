"""lbfgs with compiled iterations (``icnn.Argmin(..., method="lbfgs", compile=backend)``).

A whole-batch iteration runs as two compiled functions of the same code as eager
(:func:`icnn.solvers.lbfgs._try_step`, :func:`icnn.solvers.lbfgs._advance`); compiled, the
two-loop recursion runs over every memory slot (the empty ones add zeros). Dynamo's "eager"
backend captures the graphs without generating code, so the captured run must agree with the
eager solver on every path: whole-batch and part-of-batch iterations, backtracking, the
certified and the stationarity stopping tests, fixed entries, float64, callbacks. Values are
compared with ``torch.equal`` (a zero's sign is the only freedom the extra empty slots take).
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

import icnn


def _same(a: icnn.ArgminResult, b: icnn.ArgminResult) -> None:
    assert a.iterations == b.iterations
    for name in ("y", "value", "converged", "gap", "lower_bound"):
        left, right = getattr(a, name), getattr(b, name)
        assert (left is None) == (right is None), name
        if left is not None:
            assert torch.equal(left, right), name
    for name in ("evaluations", "stalled"):
        assert torch.equal(a.info[name], b.info[name]), name


def _picnn(activation: str, mu: float, dtype: torch.dtype = torch.float32) -> icnn.PICNN:
    torch.manual_seed(3)
    model = icnn.PICNN(4, 3, hidden=(16, 16), activation=activation, strong_convexity=mu)
    return model.to(dtype).requires_grad_(False)


CASES = {
    # whole batch every iteration (tol 0), the quadratic certificate
    "softplus-mu": dict(activation="softplus", mu=0.1, tol=0.0, max_iter=6),
    # examples stop at different iterations (part-of-batch iterations run eager), the bundle
    # cut and its min-norm aggregate after failed searches
    "relu-tol": dict(activation="relu", mu=0.0, tol=1e-3, max_iter=80),
    "float64": dict(activation="softplus", mu=0.05, tol=1e-8, max_iter=60, dtype=torch.float64),
    # no certificate: the stationarity test
    "unbounded": dict(activation="softplus", mu=0.0, tol=1e-3, max_iter=40, domain=None,
                      allow_unbounded=True),
    "fixed": dict(activation="relu", mu=0.0, tol=1e-4, max_iter=30, fixed=True),
    "memory-2": dict(activation="softplus", mu=0.1, tol=0.0, max_iter=12, memory=2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_captured_iterations_agree_with_eager(case):
    spec = dict(CASES[case])
    model = _picnn(spec.pop("activation"), spec.pop("mu"), spec.pop("dtype", torch.float32))
    dtype = next(model.parameters()).dtype
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    domain = spec.pop("domain", icnn.Box(-1.0, 1.0))
    call = {}
    if spec.pop("fixed", False):
        mask = torch.tensor([True, False, False])
        call["fixed"] = (mask, torch.full((3,), 0.25, dtype=dtype))
    eager = icnn.Argmin(model, domain=domain, method="lbfgs", **spec)
    captured = icnn.Argmin(model, domain=domain, method="lbfgs", compile="eager", **spec)
    reference = eager(x, **call)
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    for _ in range(2):  # the second call runs the graphs captured by the first
        _same(captured(x, **call), reference)
    # the iterations really ran captured, each half one graph (no break inside)
    assert counters["stats"]["unique_graphs"] >= 2
    assert not counters["graph_break"]
    if case == "relu-tol":  # the case is what it says: examples stopped at different iterations
        assert reference.converged.any() and reference.info["evaluations"].unique().numel() > 1


def test_backtracking_iterations_run_eager_and_agree():
    # a ReLU energy from a far start: some first trials fail their Armijo test
    model = _picnn("relu", 0.0)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(6))
    y0 = torch.full((8, 3), 0.9)
    eager = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method="lbfgs", tol=0.0,
                        max_iter=25)(x, y0=y0)
    captured = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method="lbfgs", tol=0.0,
                           max_iter=25, compile="eager")(x, y0=y0)
    _same(captured, eager)
    # more evaluations than iterations: some line search backtracked
    assert (eager.info["evaluations"] > eager.iterations + 1).any()


def test_callbacks_see_the_same_iterations():
    model = _picnn("relu", 0.0)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    seen = {"eager": [], "eager backend": []}
    for key, compile in (("eager", False), ("eager backend", "eager")):
        solver = icnn.Argmin(model, domain=icnn.Box(0.0, 1.0), method="lbfgs", tol=1e-3,
                             max_iter=30, compile=compile,
                             callback=lambda p, key=key: seen[key].append((p.y, p.converged)))
        solver(x)
    assert len(seen["eager"]) == len(seen["eager backend"]) > 1
    for (y_a, c_a), (y_b, c_b) in zip(seen["eager"], seen["eager backend"], strict=True):
        assert torch.equal(y_a, y_b) and torch.equal(c_a, c_b)


def test_repeated_solves_reuse_the_captured_graphs():
    """Every iteration has one shape (all memory slots), so later calls capture nothing."""
    model = _picnn("softplus", 0.1)
    solver = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method="lbfgs", tol=0.0,
                         max_iter=6, compile="eager")
    g = torch.Generator().manual_seed(4)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    solver(torch.randn(2, 4, generator=g))
    solver(torch.randn(2, 4, generator=g))
    captured = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert captured == 2  # _try_step and _advance
    for _ in range(4):
        solver(torch.randn(2, 4, generator=g), y0=torch.rand(2, 3, generator=g))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == captured

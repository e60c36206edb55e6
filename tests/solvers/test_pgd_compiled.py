"""pgd with compiled iterations (``icnn.Argmin(..., method="pgd", compile=backend)``).

The whole-batch iterations run as two compiled functions of the same code as eager
(:func:`icnn.solvers.pgd._try_step`, :func:`icnn.solvers.pgd._advance`). Dynamo's "eager" backend
captures the graphs without generating code (fast in CI), so the captured run must agree with
the eager solver to the bit on every path: whole-batch and part-of-batch iterations, backtracking
retries, the certified and the stationarity stopping tests, fixed entries, float64. The inductor
backend (code generation: minutes here) is checked when ICNN_TEST_INDUCTOR=1.
"""

from __future__ import annotations

import os

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
    assert torch.equal(a.info["evaluations"], b.info["evaluations"])
    assert torch.equal(a.info["lipschitz"], b.info["lipschitz"])


def _picnn(activation: str, mu: float, dtype: torch.dtype = torch.float32) -> icnn.PICNN:
    torch.manual_seed(3)
    model = icnn.PICNN(4, 3, hidden=(16, 16), activation=activation, strong_convexity=mu)
    return model.to(dtype).requires_grad_(False)


CASES = {
    # whole batch every iteration (tol 0), the quadratic certificate
    "softplus-mu": dict(activation="softplus", mu=0.1, tol=0.0, max_iter=6),
    # examples stop at different iterations (part-of-batch iterations run eager), the bundle cut
    "relu-tol": dict(activation="relu", mu=0.0, tol=1e-3, max_iter=80),
    "float64": dict(activation="softplus", mu=0.05, tol=1e-6, max_iter=60, dtype=torch.float64),
    # no certificate: the stationarity test, whose reference is recorded on the first iteration
    "unbounded": dict(activation="softplus", mu=0.0, tol=1e-3, max_iter=40, domain=None,
                      allow_unbounded=True),
    # a tiny first L: sufficient decrease fails and the retries (eager) complete the trial
    "retries": dict(activation="softplus", mu=0.1, tol=0.0, max_iter=5, lipschitz=1e-6),
    "fixed": dict(activation="relu", mu=0.0, tol=1e-4, max_iter=30, fixed=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_captured_iterations_agree_with_eager_to_the_bit(case):
    spec = dict(CASES[case])
    model = _picnn(spec.pop("activation"), spec.pop("mu"), spec.pop("dtype", torch.float32))
    dtype = next(model.parameters()).dtype
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    domain = spec.pop("domain", icnn.Box(-1.0, 1.0))
    call = {}
    if spec.pop("fixed", False):
        mask = torch.tensor([True, False, False])
        call["fixed"] = (mask, torch.full((3,), 0.25, dtype=dtype))
    if "lipschitz" in spec:
        call["lipschitz"] = spec.pop("lipschitz")
    eager = icnn.Argmin(model, domain=domain, method="pgd", **spec)
    captured = icnn.Argmin(model, domain=domain, method="pgd", compile="eager", **spec)
    reference = eager(x, **call)
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    for _ in range(2):  # the second call runs the graphs captured by the first
        _same(captured(x, **call), reference)
    # the iterations really ran captured: both halves, each one graph (no break inside);
    # the stationarity test also captures _advance's first iteration (it records a reference)
    assert counters["stats"]["unique_graphs"] == (3 if case == "unbounded" else 2)
    assert not counters["graph_break"]
    if case == "relu-tol":  # the case is what it says: examples stopped at different iterations
        assert reference.converged.any() and reference.info["evaluations"].unique().numel() > 1
    if case == "retries":
        assert (reference.info["lipschitz"] > 1e-6).all()


def test_callbacks_see_the_same_iterations():
    model = _picnn("relu", 0.0)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    seen = {"eager": [], "eager backend": []}
    for key, compile in (("eager", False), ("eager backend", "eager")):
        solver = icnn.Argmin(model, domain=icnn.Box(0.0, 1.0), method="pgd", tol=1e-3,
                             max_iter=30, compile=compile,
                             callback=lambda p, key=key: seen[key].append((p.y, p.converged)))
        solver(x)
    assert len(seen["eager"]) == len(seen["eager backend"]) > 1
    for (y_a, c_a), (y_b, c_b) in zip(seen["eager"], seen["eager backend"], strict=True):
        assert torch.equal(y_a, y_b) and torch.equal(c_a, c_b)


def test_repeated_solves_reuse_the_captured_graphs():
    """A new problem per call (its tensors, its certificate state) must not trigger a capture."""
    model = _picnn("softplus", 0.1)
    solver = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method="pgd", tol=0.0, max_iter=4,
                         compile="eager")
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


@pytest.mark.skipif(os.environ.get("ICNN_TEST_INDUCTOR") != "1",
                    reason="inductor generates C++ code (minutes on a shared CPU): "
                           "ICNN_TEST_INDUCTOR=1 runs it")
def test_inductor_iterations_agree_to_rounding_and_certify_honestly():
    model = _picnn("softplus", 0.1)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(5))
    domain = icnn.Box(-1.0, 1.0)
    eager = icnn.argmin(model, x, domain=domain, method="pgd", tol=1e-5, max_iter=200)
    fused = icnn.Argmin(model, domain=domain, method="pgd", tol=1e-5, max_iter=200,
                        compile=True)(x)
    torch.testing.assert_close(fused.value, eager.value, rtol=1e-5, atol=1e-5)
    assert fused.converged.all()
    assert (fused.lower_bound <= fused.value).all()
    exact = icnn.argmin(model.double(), x.double(), domain=domain, method="pgd", tol=1e-10,
                        max_iter=2000)
    assert (fused.lower_bound.double() <= exact.value + 1e-6).all()


def test_unknown_or_unsafe_backends_are_refused_at_construction():
    model = _picnn("relu", 0.0)
    with pytest.raises(ValueError, match="torch.compile backend .* got 'inductr'"):
        icnn.Argmin(model, method="pgd", compile="inductr")
    with pytest.raises(ValueError, match="cudagraphs"):
        icnn.Argmin(model, method="pgd", compile="cudagraphs")
    from icnn.tasks.rl.icnn_q import ICNNQConfig

    with pytest.raises(ValueError, match="got 'inductr'"):
        ICNNQConfig(compile="inductr")
    assert ICNNQConfig(compile=True).compile is True  # Argmin's True: inductor

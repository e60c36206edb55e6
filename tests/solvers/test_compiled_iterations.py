"""What pgd and lbfgs share when their whole-batch iterations run compiled (``compile=``).

Dynamo's "eager" backend captures the graphs without generating code; the method-specific
paths are in ``test_pgd_compiled.py`` and ``test_lbfgs_compiled.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

import icnn
from icnn.solvers.handle import FUSED_METHODS


def test_the_fused_methods_are_pgd_and_lbfgs():
    assert FUSED_METHODS == ("pgd", "lbfgs")


# what each method reports beside the common fields
INFO = {"pgd": ("evaluations", "lipschitz"), "lbfgs": ("evaluations", "stalled")}


@pytest.mark.parametrize("method", FUSED_METHODS)
def test_captured_iterations_agree_with_eager_to_the_bit(method, compiled, compiled_case):
    """Whole-batch and part-of-batch iterations, certified and stationarity tests, fixed
    entries, float64: the captured run agrees with eager (a zero's sign aside)."""
    name, spec = compiled_case
    reference, results, counters = compiled.run(method, spec)
    for result in results:
        compiled.same(result, reference, info=INFO[method])
    # the iterations really ran captured: both halves, each one graph (no break inside);
    # pgd's stationarity test also captures _advance's first iteration (it records the
    # reference there; lbfgs records it before the loop)
    assert counters["stats"]["unique_graphs"] == (3 if (method, name) == ("pgd", "unbounded")
                                                  else 2)
    assert not counters["graph_break"]
    if name == "relu-tol":  # the case is what it says: examples stopped at different iterations
        assert reference.converged.any() and reference.info["evaluations"].unique().numel() > 1


@pytest.mark.parametrize("method", FUSED_METHODS)
def test_callbacks_see_the_same_iterations(method, compiled):
    model = compiled.picnn("relu", 0.0)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    seen = {"eager": [], "eager backend": []}
    for key, compile in (("eager", False), ("eager backend", "eager")):
        solver = icnn.Argmin(model, domain=icnn.Box(0.0, 1.0), method=method, tol=1e-3,
                             max_iter=30, compile=compile,
                             callback=lambda p, key=key: seen[key].append((p.y, p.converged)))
        solver(x)
    assert len(seen["eager"]) == len(seen["eager backend"]) > 1
    for (y_a, c_a), (y_b, c_b) in zip(seen["eager"], seen["eager backend"], strict=True):
        assert torch.equal(y_a, y_b) and torch.equal(c_a, c_b)


@pytest.mark.parametrize("method", FUSED_METHODS)
def test_repeated_solves_reuse_the_captured_graphs(method, compiled):
    """A new problem per call (its tensors, its certificate state) must not trigger a capture."""
    model = compiled.picnn("softplus", 0.1)
    solver = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method=method, tol=0.0, max_iter=4,
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

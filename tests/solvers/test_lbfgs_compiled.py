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

import torch
import torch._dynamo

import icnn


def test_a_short_memory_agrees(compiled):
    # memory 2 < iterations: the oldest pairs drop out of the compiled shift too
    spec = dict(activation="softplus", mu=0.1, tol=0.0, max_iter=12, memory=2)
    reference, results, counters = compiled.run("lbfgs", spec)
    for result in results:
        compiled.same(result, reference, info=("evaluations", "stalled"))
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]


def test_backtracking_iterations_run_eager_and_agree(compiled):
    # a ReLU energy from a far start: some first trials fail their Armijo test
    model = compiled.picnn("relu", 0.0)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(6))
    y0 = torch.full((8, 3), 0.9)
    eager = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method="lbfgs", tol=0.0,
                        max_iter=25)(x, y0=y0)
    captured = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method="lbfgs", tol=0.0,
                           max_iter=25, compile="eager")(x, y0=y0)
    compiled.same(captured, eager, info=("evaluations", "stalled"))
    # more evaluations than iterations: some line search backtracked
    assert (eager.info["evaluations"] > eager.iterations + 1).any()

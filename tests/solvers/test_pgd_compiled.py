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


def test_failed_first_steps_are_completed_by_eager_retries(compiled):
    # a tiny first L: sufficient decrease fails and the retries (eager) complete the trial
    spec = dict(activation="softplus", mu=0.1, tol=0.0, max_iter=5, lipschitz=1e-6)
    reference, results, counters = compiled.run("pgd", spec)
    for result in results:
        compiled.same(result, reference, info=("evaluations", "lipschitz"))
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]
    assert (reference.info["lipschitz"] > 1e-6).all()


@pytest.mark.skipif(os.environ.get("ICNN_TEST_INDUCTOR") != "1",
                    reason="inductor generates C++ code (minutes on a shared CPU): "
                           "ICNN_TEST_INDUCTOR=1 runs it")
def test_inductor_iterations_agree_to_rounding_and_certify_honestly(compiled):
    model = compiled.picnn("softplus", 0.1)
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


def test_unknown_or_unsafe_backends_are_refused_at_construction(compiled):
    model = compiled.picnn("relu", 0.0)
    with pytest.raises(ValueError, match="torch.compile backend .* got 'inductr'"):
        icnn.Argmin(model, method="pgd", compile="inductr")
    with pytest.raises(ValueError, match="cudagraphs"):
        icnn.Argmin(model, method="pgd", compile="cudagraphs")
    from icnn.tasks.rl.icnn_q import ICNNQConfig

    with pytest.raises(ValueError, match="got 'inductr'"):
        ICNNQConfig(compile="inductr")
    assert ICNNQConfig(compile=True).compile is True  # Argmin's True: inductor

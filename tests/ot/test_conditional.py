"""Conditional maps: a PICNN potential, one map per context row, for every solver."""

import pytest
import torch

from icnn.ot.fit import OTConfig, fit_transport, inverse_map


@pytest.mark.parametrize("solver", ["mm", "w2gn", "amortized"])
def test_each_solver_fits_a_map_per_context(solver):
    gen = torch.Generator().manual_seed(0)
    context = torch.randint(0, 2, (256, 1), generator=gen).double()
    source = torch.randn(256, 2, generator=gen, dtype=torch.float64)
    target = torch.randn(256, 2, generator=gen, dtype=torch.float64) * 0.5 + 3.0 * context
    config = OTConfig(solver=solver, hidden=(16,), batch_size=64, epochs=8,
                      lr=2e-2, start="identity", eval_points=32, conjugate_tol=1e-3)
    fit = fit_transport(source, target, config, source_context=context, target_context=context)
    assert fit.model.conditional
    points = torch.zeros(4, 2, dtype=torch.float64)
    ctx0, ctx1 = torch.zeros(4, 1, dtype=torch.float64), torch.ones(4, 1, dtype=torch.float64)
    moved0 = fit.model.forward_map(points, ctx0).detach()
    moved1 = fit.model.forward_map(points, ctx1).detach()
    # context 1 sends mass towards (3, 3), context 0 keeps it near the origin: after a few steps
    # the maps already differ in that direction (one unconditional map would give exactly 0)
    assert float((moved1 - moved0).mean()) > 0.25
    back = inverse_map(fit.model, config, moved1, ctx1)
    assert back.shape == (4, 2) and bool(torch.isfinite(back).all())


def test_contexts_must_come_in_pairs():
    x = torch.randn(16, 2)
    with pytest.raises(ValueError, match="for both the source and the target"):
        fit_transport(x, x, OTConfig(epochs=1), source_context=torch.zeros(16, 1))

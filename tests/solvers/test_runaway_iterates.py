"""A run-away iterate of a problem unbounded below is never reported stationary.

On an unbounded domain ``P(y - g) - y`` rounds to 0 in float32 once ``|y| >> |g|``; the
projected-gradient norm of pgd and lbfgs is computed as ``clamp(-g, lo - y, hi - y)`` instead.
"""

import pytest
import torch

import icnn
from icnn.potentials import TiltedEnergy


@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_unbounded_tilt_is_not_converged_in_float32(method):
    torch.manual_seed(0)
    model = icnn.FICNN(2, hidden=(8, 8), activation="softplus")  # no mu: grad f is bounded
    with torch.no_grad():
        reach = icnn.gradient_map(model)(torch.randn(2000, 2) * 100).norm(dim=1).max()
    direction = torch.nn.functional.normalize(torch.randn(6, 2), dim=1)
    z = direction * 5 * reach  # far outside the range of grad f: inf_y f(y) - <y, z> = -inf
    energy = TiltedEnergy(model)
    result = icnn.argmin(energy, energy.pack(z, None), method=method, max_iter=3000, tol=1e-6,
                          allow_unbounded=True)
    assert not result.converged.any()
    assert result.gap is None or torch.isinf(result.gap).all()

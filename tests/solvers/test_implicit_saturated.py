"""Implicit gradients of bundle entropy when a coordinate rounds onto a face of the box.

A softplus PICNN trained on multi-label data (the case in ``data/``, found by the docs gallery)
puts argmin coordinates within float32's resolution of the faces (``1 - u`` rounds to 0). The
entropy's barrier is infinite there: the coordinate must be held (derivative 0, the limit)
rather than sending ``inf * p`` through conjugate gradients, which made every weight gradient NaN.
"""

from pathlib import Path

import torch
from safetensors.torch import load_file

import icnn

CASE = Path(__file__).parent / "data" / "saturated_entropy_case.safetensors"


def _gradients(dtype):
    tensors = load_file(CASE)
    model = icnn.PICNN(x_dim=10, y_dim=8, hidden=[32, 32], activation="softplus")
    model.load_state_dict({k.removeprefix("state."): v for k, v in tensors.items()
                           if k.startswith("state.")})
    model = model.to(dtype)
    x = tensors["x"][:16].to(dtype)
    result = icnn.argmin(model, x, domain=icnn.Box(0.0, 1.0), method="bundle_entropy",
                         differentiable="implicit")
    model.zero_grad()
    result.y.sum().backward()
    return result, {name: p.grad.clone() for name, p in model.named_parameters()}


def test_saturated_float32_gradients_are_finite_and_match_float64():
    result32, grads32 = _gradients(torch.float32)
    u = result32.info["u"]
    assert bool(((u == 1.0) | (u == 0.0)).any()), "the case must put a coordinate on a face"
    _, grads64 = _gradients(torch.float64)
    for name, grad in grads32.items():
        assert torch.isfinite(grad).all(), name
    flat32 = torch.cat([g.double().flatten() for g in grads32.values()])
    flat64 = torch.cat([g.flatten() for g in grads64.values()])
    assert (flat32 - flat64).norm() <= 0.02 * flat64.norm()

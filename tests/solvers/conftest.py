"""Small models with known minimisers, shared by the solver tests (as the `zoo` fixture)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn

import icnn


class Quadratic(nn.Module):
    """``f(y) = 1/2 (y - c)^T A (y - c)``, strongly convex with modulus ``lambda_min(A)``."""

    def __init__(self, a: Tensor, c: Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a)
        self.c = nn.Parameter(c)
        self.convex_input_shape = (c.shape[0],)
        self.context_shape = None
        self.mu = float(torch.linalg.eigvalsh(a).min())

    def energy_traits(self) -> icnn.EnergyTraits:
        return icnn.EnergyTraits(convex=True, strong_convexity=self.mu, curvature="smooth")

    def forward(self, y: Tensor) -> Tensor:
        d = y - self.c
        return 0.5 * ((d @ self.a) * d).sum(-1)


def quadratic(n: int = 4, dtype: torch.dtype = torch.float64) -> Quadratic:
    g = torch.Generator().manual_seed(3)
    m = torch.randn(n, n, generator=g, dtype=dtype)
    return Quadratic(m @ m.T + 0.5 * torch.eye(n, dtype=dtype),
                     torch.randn(n, generator=g, dtype=dtype))


def box_qp_solution(model: Quadratic, lo: float, hi: float, iters: int = 20000) -> Tensor:
    """Reference minimiser over a box by plain projected gradient with step 1/L (slow, exact)."""
    a, c = model.a.detach(), model.c.detach()
    step = 1.0 / float(torch.linalg.eigvalsh(a).max())
    y = torch.zeros_like(c)
    for _ in range(iters):
        y = (y - step * (a @ (y - c))).clamp(lo, hi)
    return y


def relu_ficnn(y_dim: int = 3, dtype: torch.dtype = torch.float64, **kwargs) -> icnn.FICNN:
    torch.manual_seed(1)
    return icnn.FICNN(y_dim, hidden=(12, 12), **kwargs).to(dtype)


def relu_picnn(x_dim: int = 4, y_dim: int = 3, dtype: torch.dtype = torch.float64,
               **kwargs) -> icnn.PICNN:
    torch.manual_seed(2)
    return icnn.PICNN(x_dim, y_dim, hidden=(12, 12), **kwargs).to(dtype)


def relative(value: Tensor, optimum: Tensor) -> Tensor:
    return (value - optimum) / optimum.abs().clamp_min(1.0)


@pytest.fixture
def zoo() -> SimpleNamespace:
    """The helpers above, for tests (importlib import mode forbids importing conftest)."""
    return SimpleNamespace(quadratic=quadratic, box_qp_solution=box_qp_solution,
                           relu_ficnn=relu_ficnn, relu_picnn=relu_picnn, relative=relative)

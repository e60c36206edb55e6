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


def compiled_case_picnn(activation: str, mu: float,
                        dtype: torch.dtype = torch.float32) -> icnn.PICNN:
    """The small PICNN (x 4 -> y 3, hidden 16-16) of the compiled-iteration tests."""
    torch.manual_seed(3)
    model = icnn.PICNN(4, 3, hidden=(16, 16), activation=activation, strong_convexity=mu)
    return model.to(dtype).requires_grad_(False)


def run_compiled_case(method: str, spec: dict) -> tuple[icnn.ArgminResult,
                                                         list[icnn.ArgminResult], dict]:
    """Solve one case eagerly and twice by a handle built with ``compile="eager"``.

    ``spec``: ``activation``, ``mu``, optional ``dtype``, ``domain`` (default Box(-1, 1)),
    ``fixed`` (True: the first coordinate fixed at 0.25), ``lipschitz`` (a per-call option);
    the rest are Argmin settings. Returns the eager result, the two captured results (the
    second runs the graphs captured by the first) and dynamo's counters of those two calls.
    """
    import torch._dynamo

    spec = dict(spec)
    model = compiled_case_picnn(spec.pop("activation"), spec.pop("mu"),
                                spec.pop("dtype", torch.float32))
    dtype = next(model.parameters()).dtype
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    domain = spec.pop("domain", icnn.Box(-1.0, 1.0))
    call = {}
    if spec.pop("fixed", False):
        call["fixed"] = (torch.tensor([True, False, False]), torch.full((3,), 0.25, dtype=dtype))
    if "lipschitz" in spec:
        call["lipschitz"] = spec.pop("lipschitz")
    reference = icnn.Argmin(model, domain=domain, method=method, **spec)(x, **call)
    captured = icnn.Argmin(model, domain=domain, method=method, compile="eager", **spec)
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    results = [captured(x, **call) for _ in range(2)]
    return reference, results, counters


# the cases both fused methods (pgd, lbfgs) are checked on; each test file adds its own
COMPILED_CASES = {
    # whole batch every iteration (tol 0), the quadratic certificate
    "softplus-mu": dict(activation="softplus", mu=0.1, tol=0.0, max_iter=6),
    # examples stop at different iterations (part-of-batch iterations run eager), the bundle cut
    "relu-tol": dict(activation="relu", mu=0.0, tol=1e-3, max_iter=80),
    "float64": dict(activation="softplus", mu=0.05, tol=1e-6, max_iter=60, dtype=torch.float64),
    # no certificate: the stationarity test, whose reference is recorded on the first iteration
    "unbounded": dict(activation="softplus", mu=0.0, tol=1e-3, max_iter=40, domain=None,
                      allow_unbounded=True),
    "fixed": dict(activation="relu", mu=0.0, tol=1e-4, max_iter=30, fixed=True),
}


def assert_same_result(a: icnn.ArgminResult, b: icnn.ArgminResult,
                       info: tuple[str, ...] = ("evaluations",)) -> None:
    """``a`` and ``b`` agree to the bit (``torch.equal``): iterations, y, value, flags,
    certificate and the ``info`` entries named."""
    assert a.iterations == b.iterations
    for name in ("y", "value", "converged", "gap", "lower_bound"):
        left, right = getattr(a, name), getattr(b, name)
        assert (left is None) == (right is None), name
        if left is not None:
            assert torch.equal(left, right), name
    for name in info:
        assert torch.equal(a.info[name], b.info[name]), name


@pytest.fixture(params=sorted(COMPILED_CASES))
def compiled_case(request) -> tuple[str, dict]:
    """``(name, spec)`` of each case of :data:`COMPILED_CASES`."""
    return request.param, COMPILED_CASES[request.param]


@pytest.fixture
def compiled() -> SimpleNamespace:
    """The compiled-iteration helpers above (``picnn``, ``run``, ``cases``, ``same``)."""
    return SimpleNamespace(picnn=compiled_case_picnn, run=run_compiled_case,
                           cases=COMPILED_CASES, same=assert_same_result)

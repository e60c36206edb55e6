"""The two-loop recursion skips the memory slots no pair has reached yet: the same direction
(values equal; an empty slot may turn a -0.0 component into +0.0, which no step sees)."""

import torch

from icnn.solvers.lbfgs import _two_loop


def test_empty_trailing_slots_change_nothing():
    g = torch.Generator().manual_seed(11)
    for dtype in (torch.float32, torch.float64):
        for used in range(0, 5):
            memory, batch, n = 6, 4, 3
            s_mem = torch.zeros(memory, batch, n, dtype=dtype)
            r_mem = torch.zeros(memory, batch, n, dtype=dtype)
            filled = torch.zeros(memory, batch, dtype=torch.bool)
            s_mem[:used] = torch.randn(used, batch, n, generator=g, dtype=dtype)
            r_mem[:used] = s_mem[:used] * torch.rand(used, batch, n, generator=g, dtype=dtype)
            filled[:used] = torch.rand(used, batch, generator=g) > 0.3
            grad = torch.randn(batch, n, generator=g, dtype=dtype)
            full = _two_loop(grad, s_mem, r_mem, filled)
            short = _two_loop(grad, s_mem[:used], r_mem[:used], filled[:used])
            assert torch.equal(full[0], short[0]) and torch.equal(full[1], short[1])


def test_a_warm_start_in_any_memory_layout_gives_the_same_bits():
    """Solvers start from a contiguous copy of y0: a transposed y0 solves exactly as its
    contiguous twin (per-example sums would otherwise follow the layout)."""
    import icnn

    torch.manual_seed(5)
    model = icnn.FICNN(7, hidden=(32, 32), activation="relu", strong_convexity=0.5).double()
    y0 = torch.randn(7, 4, dtype=torch.float64).t()
    for method in ("lbfgs", "pgd"):
        a = icnn.argmin(model, None, y0=y0, domain=icnn.Box(-1.0, 1.0), method=method,
                        tol=1e-12, max_iter=40)
        b = icnn.argmin(model, None, y0=y0.contiguous(), domain=icnn.Box(-1.0, 1.0),
                        method=method, tol=1e-12, max_iter=40)
        assert torch.equal(a.y, b.y) and torch.equal(a.value, b.value)
        assert torch.equal(a.lower_bound, b.lower_bound) and a.iterations == b.iterations

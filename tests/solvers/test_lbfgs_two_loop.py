"""The two-loop recursion skips the memory slots no pair has reached yet, to the bit."""

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

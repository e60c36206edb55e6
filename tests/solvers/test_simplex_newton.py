"""Batched projected Newton over the simplex: row gathering and a known minimiser."""

import torch

from icnn.solvers._simplex_newton import SimplexDual, row_picker, solve_simplex_dual


def test_row_picker_returns_the_tensors_for_every_row_and_gathers_a_subset():
    a, b = torch.arange(12.0).reshape(4, 3), torch.arange(4.0)
    pick = row_picker(a, b)
    whole = pick(torch.arange(4))
    assert whole[0] is a and whole[1] is b
    rows = torch.tensor([1, 3])
    part = pick(rows)
    torch.testing.assert_close(part[0], a[rows])
    torch.testing.assert_close(part[1], b[rows])
    assert pick(rows)[0] is part[0]  # same rows: the gather is reused


def test_solves_a_quadratic_over_the_simplex_to_its_known_minimiser():
    # F(lam) = 1/2 |lam - t|^2: the minimiser is the Euclidean projection of t onto the simplex
    t = torch.tensor([[0.9, 0.6, -0.5], [0.2, 0.1, 0.1]], dtype=torch.float64)
    expected = torch.tensor([[0.65, 0.35, 0.0], [0.4, 0.3, 0.3]], dtype=torch.float64)

    def value(lam, rows):
        return 0.5 * (lam - t[rows][:, None, :]).square().sum(-1)

    def derivatives(lam, rows):
        diff = lam - t[rows]
        hess = torch.eye(3, dtype=lam.dtype).expand(lam.shape[0], 3, 3)
        return 0.5 * diff.square().sum(-1), diff, hess

    lam0 = torch.full((2, 3), 1 / 3, dtype=torch.float64)
    valid = torch.ones(2, 3, dtype=torch.bool)
    lam, done = solve_simplex_dual(SimplexDual(value, derivatives), lam0, valid,
                                   tol=torch.full((2,), 1e-12, dtype=torch.float64),
                                   max_iter=50)
    torch.testing.assert_close(lam, expected, atol=1e-9, rtol=0)
    assert done.all()

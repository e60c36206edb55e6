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


def _counted(value, derivatives):
    calls = {"derivatives": 0}

    def counted(lam, rows):
        calls["derivatives"] += 1
        return derivatives(lam, rows)

    return SimplexDual(value, counted), calls


def test_a_bound_weight_with_a_steep_gradient_does_not_shorten_the_newton_step():
    # F(lam) = w/2 (lam_1 - lam_0)^2 + p lam_2 from lam = (1, 0, 0): lam_2 sits at its bound with
    # a steep scaled gradient (about -99); the Newton step on lam_1 is 0.5 and lands on the
    # minimiser (0.5, 0.5, 0). Measuring the step's length over the bound weight too shrank
    # it 200-fold and took dozens of iterations.
    w, p = 1.0, 100.0
    batch = 3  # identical rows, solved together

    def value(lam, rows):
        return 0.5 * w * (lam[..., 1] - lam[..., 0]).square() + p * lam[..., 2]

    def derivatives(lam, rows):
        d = lam[:, 1] - lam[:, 0]
        grad = torch.stack([-w * d, w * d, torch.full_like(d, p)], dim=-1)
        hess = torch.tensor([[w, -w, 0.0], [-w, w, 0.0], [0.0, 0.0, 0.0]],
                            dtype=lam.dtype).expand(lam.shape[0], 3, 3)
        return value(lam, rows), grad, hess

    dual, calls = _counted(value, derivatives)
    lam0 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64).expand(batch, 3)
    valid = torch.ones(batch, 3, dtype=torch.bool)
    lam, done = solve_simplex_dual(dual, lam0, valid,
                                   tol=torch.full((batch,), 1e-9, dtype=torch.float64),
                                   max_iter=10)
    expected = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64).expand(batch, 3)
    torch.testing.assert_close(lam, expected, atol=1e-9, rtol=0)
    assert done.all()
    # one Newton step, then one evaluation that finds it stationary and stops
    assert calls["derivatives"] == 2


def test_rows_found_stationary_stop_without_a_line_search():
    # starting at the minimiser: one evaluation of the derivatives, no candidate values
    t = torch.tensor([[0.65, 0.35, 0.0]], dtype=torch.float64)
    values = {"calls": 0}

    def value(lam, rows):
        values["calls"] += 1
        return 0.5 * (lam - t[rows][:, None, :]).square().sum(-1)

    def derivatives(lam, rows):
        diff = lam - t[rows]
        return 0.5 * diff.square().sum(-1), diff, torch.eye(3, dtype=lam.dtype).expand(1, 3, 3)

    dual, calls = _counted(value, derivatives)
    lam, done = solve_simplex_dual(dual, t.clone(), torch.ones(1, 3, dtype=torch.bool),
                                   tol=torch.full((1,), 1e-12, dtype=torch.float64))
    torch.testing.assert_close(lam, t)
    assert done.all() and calls["derivatives"] == 1 and values["calls"] == 0

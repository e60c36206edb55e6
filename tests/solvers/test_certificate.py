"""The certified lower bounds and the conditioned energies the iterative methods rely on."""

import itertools

import torch

import icnn
from icnn.solvers import Box, argmin, build_problem
from icnn.solvers.certificate import CutAggregator
from icnn.solvers.conditioning import conditioned_energy


def test_lower_bound_never_exceeds_the_exact_optimum(zoo):
    model, x = zoo.relu_picnn(y_dim=4), torch.randn(8, 4, dtype=torch.float64)
    exact = argmin(model, x, domain=Box(0.0, 1.0), method="exact")
    problem = build_problem(model, x, Box(0.0, 1.0), None, None)
    cuts = CutAggregator(problem.lo, problem.hi)
    for _ in range(30):  # cuts at random points are all valid
        y = torch.rand(8, 4, dtype=torch.float64)
        value, grad = problem.value_and_grad(y)
        bound = cuts.add(y, value, grad)
        assert (bound <= exact.value + 1e-10).all()


def test_strongly_convex_bound_is_tight_at_the_minimiser(zoo):
    model = zoo.quadratic()
    problem = build_problem(model, None, None, None, None, batch=1)
    cuts = CutAggregator(problem.lo, problem.hi, mu=model.mu)
    y = model.c.detach()[None]
    value, grad = problem.value_and_grad(y)
    assert abs(float(cuts.add(y, value, grad))) < 1e-12  # f* = 0 at y = c


def test_converged_results_certify_their_suboptimality(zoo):
    model, x = zoo.relu_picnn(), torch.randn(6, 4, dtype=torch.float64)
    exact = argmin(model, x, domain=Box(0.0, 1.0), method="exact")
    result = argmin(model, x, domain=Box(0.0, 1.0), method="lbfgs", tol=1e-3)
    rel = zoo.relative(result.value, exact.value)
    assert (rel[result.converged] <= 1e-3).all()
    assert torch.allclose(result.gap, result.value - result.lower_bound)


def test_conditioned_energies_match_the_models(zoo):
    torch.manual_seed(0)
    for model, x in ((zoo.relu_picnn(), torch.randn(5, 4, dtype=torch.float64)),
                     (zoo.relu_ficnn(strong_convexity=0.5), None),
                     (icnn.PICNN(4, 3, hidden=(5, 5), activation="softplus",
                                 strong_convexity=0.3).double(),
                      torch.randn(5, 4, dtype=torch.float64))):
        y = torch.rand(5, 3, dtype=torch.float64)
        energy = conditioned_energy(model, x)
        expected = model(y) if x is None else model(x, y)
        torch.testing.assert_close(energy(y, None), expected)
        index = torch.tensor([3, 1])
        sub = model(y[index]) if x is None else model(x[index], y[index])
        torch.testing.assert_close(energy(y[index], index), sub)


def _masked_and_filtered(mu: float, dtype: torch.dtype, host_reads: bool):
    """Two aggregators fed the same cuts: one given every row (some not finite), one only the
    finite rows by index; the first must equal the second (masking = filtering). Without host
    reads (CUDA, compiled solvers) every cut is masked on the device; with them a batch of
    finite cuts skips the masking."""
    g = torch.Generator().manual_seed(7)
    lo, hi = -torch.ones(4, 3, dtype=dtype), torch.ones(4, 3, dtype=dtype)
    masked = CutAggregator(lo, hi, mu=mu, host_reads=host_reads)
    filtered = CutAggregator(lo, hi, mu=mu)
    bad = [torch.tensor([False, True, False, False]), torch.tensor([False, False, False, True]),
           torch.tensor([False, False, False, False]), torch.tensor([True, False, True, False])]
    for step, rows_bad in enumerate(bad * 2):
        y = torch.rand(4, 3, generator=g, dtype=dtype) * 2 - 1
        value = torch.randn(4, generator=g, dtype=dtype)
        grad = torch.randn(4, 3, generator=g, dtype=dtype)
        value = torch.where(rows_bad, torch.nan if step % 2 else torch.inf, value)
        if step == 3:  # a gradient entry not finite, the value finite
            grad[0, 1] = -torch.inf
            value[0] = 1.0
        masked.add(y, value, grad)
        keep = (~rows_bad).nonzero().squeeze(1)
        if keep.numel():
            filtered.add(y[keep], value[keep], grad[keep], keep)
    return masked, filtered


def test_non_finite_cuts_are_masked_exactly_as_if_left_out():
    for mu, dtype, host_reads in itertools.product((0.0, 0.3), (torch.float32, torch.float64),
                                                   (False, True)):
        masked, filtered = _masked_and_filtered(mu, dtype, host_reads)
        assert torch.equal(masked.bound, filtered.bound)
        assert torch.equal(masked.allowance, filtered.allowance)
        assert torch.equal(masked.state, filtered.state)
        assert torch.equal(masked.seen, filtered.seen)
        if mu == 0.0:
            assert torch.equal(masked.cut_grad, filtered.cut_grad)
            assert torch.equal(masked.weights, filtered.weights)
            assert torch.equal(masked.count, filtered.count)


def test_a_first_cut_that_is_not_finite_bounds_nothing():
    """The row's aggregates are still zero: bounding them would certify f >= 0 out of nothing."""
    for mu, host_reads in itertools.product((0.0, 0.5), (False, True)):
        cuts = CutAggregator(-torch.ones(2, 2), torch.ones(2, 2), mu=mu, host_reads=host_reads)
        bound = cuts.add(torch.zeros(2, 2), torch.tensor([torch.nan, 3.0]), torch.ones(2, 2))
        assert bound[0] == -torch.inf and torch.isfinite(bound[1])
        assert not cuts.seen[0] and cuts.seen[1]

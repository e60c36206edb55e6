"""The certified lower bounds and the conditioned energies the iterative methods rely on."""

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

"""icnn.argmin: every method reaches the exact optimum; domains, warm starts, dtypes and the
batch are handled per example; bad inputs fail at the door."""

import pytest
import torch

import icnn
from icnn.solvers import METHODS, ArgminResult, Box, argmin

ITERATIVE = ["lbfgs", "auto"]


@pytest.mark.parametrize("method", ["lbfgs", "auto", "bundle"])
@pytest.mark.parametrize("kind", ["ficnn", "picnn"])
def test_method_reaches_the_exact_optimum_of_a_relu_icnn(method, kind, zoo):
    if kind == "ficnn":
        model, x = zoo.relu_ficnn(y_dim=3), None
        batch = {"y0": torch.rand(3, 3, dtype=torch.float64)}
    else:
        model, x, batch = zoo.relu_picnn(), torch.randn(6, 4, dtype=torch.float64), {}
    exact = argmin(model, x, domain=Box(0.0, 1.0), method="exact", **batch)
    result = argmin(model, x, domain=Box(0.0, 1.0), method=method, tol=1e-6, max_iter=200,
                    **batch)
    assert isinstance(result, ArgminResult)
    rel = zoo.relative(result.value, exact.value)
    # converged examples are certified; quasi-Newton steps may stall at a kink of a ReLU
    # energy (then converged is False) but still end close to the optimum
    assert (rel[result.converged] <= 1e-6 + 1e-12).all()
    assert rel.max() <= (1e-4 if kind == "picnn" else 2e-3)
    # a passed stopping test is a certificate: value - lower bound <= tol * scale
    if result.gap is not None:
        assert (result.lower_bound <= exact.value + 1e-9).all()


def test_pgd_is_honest_on_a_relu_icnn(zoo):
    """Gradient steps can stall at a kink of a piecewise-linear energy (Wolfe's example);
    pgd must then say converged=False, and its lower bound must stay below the optimum."""
    model, x = zoo.relu_picnn(), torch.randn(6, 4, dtype=torch.float64)
    exact = argmin(model, x, domain=Box(0.0, 1.0), method="exact")
    result = argmin(model, x, domain=Box(0.0, 1.0), method="pgd", tol=1e-6, max_iter=200)
    rel = zoo.relative(result.value, exact.value)
    assert (rel[result.converged] <= 1e-6 + 1e-9).all()
    assert (result.lower_bound <= exact.value + 1e-9).all()
    assert rel.max() <= 5e-2


@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_smooth_strongly_convex_quadratic_reaches_its_known_minimiser(method, zoo):
    model = zoo.quadratic()
    result = argmin(model, method=method, tol=1e-10, max_iter=2000)
    assert result.converged.all()
    torch.testing.assert_close(result.y[0], model.c.detach(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_box_constrained_quadratic_matches_the_reference(method, zoo):
    model = zoo.quadratic()
    result = argmin(model, domain=Box(-0.2, 0.3), method=method, tol=1e-10, max_iter=2000)
    reference = zoo.box_qp_solution(model, -0.2, 0.3)
    assert result.converged.all()
    torch.testing.assert_close(result.y[0], reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["pgd", "lbfgs", "exact"])
def test_box_and_fixed_coordinates_are_respected_exactly(method, zoo):
    model, x = zoo.relu_picnn(y_dim=5), torch.randn(4, 4, dtype=torch.float64)
    lo = torch.tensor([0.0, -1.0, 0.2, 0.0, 0.0], dtype=torch.float64)
    hi = torch.tensor([1.0, 0.5, 0.3, 2.0, 1.0], dtype=torch.float64)
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[:, 3] = True
    mask[0, 0] = True
    values = torch.full((4, 5), 0.7, dtype=torch.float64)
    result = argmin(model, x, domain=Box(lo, hi), fixed=(mask, values), method=method,
                    max_iter=50)
    assert ((result.y >= lo) & (result.y <= hi)).all()
    assert (result.y[mask] == 0.7).all()


@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_warm_start_at_the_optimum_stops_at_once(method, zoo):
    model, x = zoo.relu_picnn(), torch.randn(5, 4, dtype=torch.float64)
    exact = argmin(model, x, domain=Box(0.0, 1.0), method="exact")
    cold = argmin(model, x, domain=Box(0.0, 1.0), method=method, tol=1e-3, max_iter=300)
    warm = argmin(model, x, domain=Box(0.0, 1.0), y0=exact.y, method=method, tol=1e-3,
                  max_iter=300)
    assert zoo.relative(warm.value, exact.value).max() <= 1e-9
    # started near the optimum, it never ends worse than where it started
    near = exact.y + 0.01
    warm_near = argmin(model, x, domain=Box(0.0, 1.0), y0=near, method=method, max_iter=30)
    assert (warm_near.value <= model(x, near.clamp(0, 1)) + 1e-12).all()
    assert zoo.relative(warm_near.value, exact.value).max() <= zoo.relative(
        cold.value, exact.value).max() + 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_float64_agree(dtype, zoo):
    model, x = zoo.relu_picnn(dtype=dtype), torch.randn(4, 4, dtype=torch.float64).to(dtype)
    exact = argmin(model, x, domain=Box(0.0, 1.0), method="exact")
    result = argmin(model, x, domain=Box(0.0, 1.0), method="lbfgs", tol=1e-5, max_iter=300)
    assert result.y.dtype == dtype and result.value.dtype == dtype
    assert zoo.relative(result.value.double(), exact.value.double()).max() <= 1e-4


@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_results_do_not_depend_on_batch_composition(method, zoo):
    model, x = zoo.relu_picnn(), torch.randn(6, 4, dtype=torch.float64)
    whole = argmin(model, x, domain=Box(0.0, 1.0), method=method, tol=1e-6, max_iter=100)
    parts = [argmin(model, x[i:i + 2], domain=Box(0.0, 1.0), method=method, tol=1e-6,
                    max_iter=100) for i in (0, 2, 4)]
    torch.testing.assert_close(whole.y, torch.cat([p.y for p in parts]), atol=1e-7, rtol=0)
    assert whole.converged.tolist() == sum((p.converged.tolist() for p in parts), [])


def test_converged_is_false_when_the_budget_is_too_small(zoo):
    model, x = zoo.relu_picnn(), torch.randn(6, 4, dtype=torch.float64)
    result = argmin(model, x, domain=Box(0.0, 1.0), method="lbfgs", tol=1e-12, max_iter=2)
    assert result.iterations == 2
    assert not result.converged.all()
    # those that did stop sit at a box vertex whose certificate closed exactly
    assert (result.gap[result.converged] <= 1e-12 * result.value.abs().clamp_min(1)[
        result.converged]).all()


def test_unbounded_domain_without_strong_convexity_is_refused_unless_allowed(zoo):
    model = zoo.relu_ficnn()
    with pytest.raises(ValueError, match="unbounded.*allow_unbounded"):
        argmin(model, method="lbfgs")
    result = argmin(model, method="lbfgs", allow_unbounded=True, max_iter=20)
    assert result.gap is None  # no certificate exists there


def test_bundle_entropy_outside_a_box_is_an_error(zoo):
    model = zoo.quadratic()
    with pytest.raises(ValueError):
        argmin(model, method="bundle_entropy")


def test_methods_are_listed():
    assert set(METHODS) == {"auto", "pgd", "lbfgs", "bundle", "bundle_entropy", "exact"}


@pytest.mark.parametrize("call, message", [
    (lambda m, x: argmin(m, x[:, :3], domain=Box(0, 1)), r"expected x of shape \(batch, 4\)"),
    (lambda m, x: argmin(m, x, domain=Box(0, 1), y0=torch.zeros(6, 2, dtype=torch.float64)),
     r"expected y0 of shape"),
    (lambda m, x: argmin(m, x, domain=Box(1.0, 0.0)), "lo <= hi"),
    (lambda m, x: argmin(m, x, domain=Box(0.0, float("nan"))), "NaN"),
    (lambda m, x: argmin(m, torch.full_like(x, float("nan")), domain=Box(0, 1)), "finite"),
    (lambda m, x: argmin(m, x, domain=Box(0, 1), method="newton"), "method must be one of"),
    (lambda m, x: argmin(m, x, domain=Box(0, 1), tol=-1.0), "tol"),
    (lambda m, x: argmin(m, x, domain=Box(0, 1), max_iter=0), "max_iter"),
    (lambda m, x: argmin(m, x, domain=Box(0, 1), method="pgd", memory=3), "memory"),
    (lambda m, x: argmin(m, x, domain=Box(0, 1), differentiable="yes"), "differentiable"),
    (lambda m, x: argmin(m, None, domain=Box(0, 1)), "pass x"),
    (lambda m, x: argmin(m, x.float(), domain=Box(0, 1)), "dtype"),
])
def test_bad_inputs_raise_clear_errors(call, message, zoo):
    model, x = zoo.relu_picnn(), torch.randn(6, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        call(model, x)


def test_auto_returns_the_method_it_ran(zoo):
    model, x = zoo.relu_picnn(), torch.randn(3, 4, dtype=torch.float64)
    result = argmin(model, x, domain=Box(0.0, 1.0))
    assert result.method in METHODS and result.method != "auto"


def test_auto_runs_bundle_on_a_relu_energy_over_a_box_and_lbfgs_elsewhere(zoo):
    relu, x = zoo.relu_picnn(), torch.randn(3, 4, dtype=torch.float64)
    assert argmin(relu, x, domain=Box(0.0, 1.0)).method == "bundle"
    assert argmin(relu, x, domain=Box(0.0, 1.0), memory=3).method == "lbfgs"  # lbfgs options
    smooth = icnn.PICNN(4, 3, hidden=(8,), activation="softplus").double()
    assert argmin(smooth, x, domain=Box(0.0, 1.0)).method == "lbfgs"
    strongly = zoo.relu_picnn(strong_convexity=0.5)
    assert argmin(strongly, x).method == "lbfgs"  # unbounded domain


def test_image_shaped_y_works_with_a_generic_module():
    class ImageEnergy(torch.nn.Module):
        convex_input_shape = (1, 3, 3)
        context_shape = None

        def energy_traits(self):
            return icnn.EnergyTraits(convex=True, curvature="piecewise_linear")

        def __init__(self):
            super().__init__()
            self.target = torch.nn.Parameter(torch.rand(1, 3, 3, dtype=torch.float64))

        def forward(self, y):
            return (y - self.target).abs().sum((1, 2, 3))

    model = ImageEnergy()
    y0 = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    result = argmin(model, domain=Box(0.0, 1.0), y0=y0, method="lbfgs", tol=1e-6)
    assert result.y.shape == (2, 1, 3, 3)
    torch.testing.assert_close(result.y, model.target.detach().expand(2, 1, 3, 3), atol=1e-5,
                               rtol=0)


def test_fully_convex_model_without_inputs_is_one_problem(zoo):
    result = argmin(zoo.relu_ficnn(), domain=Box(0.0, 1.0), method="lbfgs")
    assert result.y.shape == (1, 3)


def test_icnn_package_exports():
    assert icnn.solvers.argmin is argmin


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["pgd", "lbfgs"])
def test_cuda_matches_cpu(method, zoo):
    model, x = zoo.relu_picnn(), torch.randn(4, 4, dtype=torch.float64)
    cpu = argmin(model, x, domain=Box(0.0, 1.0), method=method, tol=1e-6, max_iter=100)
    gpu = argmin(model.cuda(), x.cuda(), domain=Box(0.0, 1.0), method=method, tol=1e-6,
                 max_iter=100)
    assert gpu.y.is_cuda and gpu.converged.is_cuda
    torch.testing.assert_close(gpu.y.cpu(), cpu.y, atol=1e-6, rtol=0)


def test_pgd_at_batch_one_matches_its_row_of_a_batch_solve():
    # the RL call pattern: one state, a few pgd steps; the whole-batch fast path must agree with
    # the gathered path a larger batch takes once some of its examples stop
    torch.manual_seed(0)
    model = icnn.PICNN(5, 3, (16, 16), activation="softplus", strong_convexity=1e-2).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    batch = argmin(model, x, domain=Box(-1.0, 1.0), method="pgd", tol=1e-3, max_iter=40)
    for i in range(4):
        one = argmin(model, x[i:i + 1], domain=Box(-1.0, 1.0), method="pgd", tol=1e-3,
                     max_iter=40)
        torch.testing.assert_close(one.y, batch.y[i:i + 1], atol=1e-9, rtol=0)
        assert one.converged.item() == batch.converged[i].item()


def test_pgd_with_a_first_lipschitz_estimate_reaches_the_same_optimum_with_fewer_evaluations(zoo):
    model = zoo.quadratic()
    reference = zoo.box_qp_solution(model, -0.2, 0.3)
    plain = argmin(model, domain=Box(-0.2, 0.3), method="pgd", tol=1e-10, max_iter=2000)
    largest = float(torch.linalg.eigvalsh(model.a.detach()).max())  # the exact L
    warm = argmin(model, domain=Box(-0.2, 0.3), method="pgd", tol=1e-10, max_iter=2000,
                  lipschitz=largest)
    assert plain.converged.all() and warm.converged.all()
    torch.testing.assert_close(warm.y[0], reference, atol=1e-5, rtol=0)
    # info["lipschitz"]: the accepted L, at least the local curvature sufficient decrease needs
    assert warm.info["lipschitz"].shape == (1,) and warm.info["lipschitz"].item() > 0
    # a far-off estimate is still safe: backtracking repairs it
    tiny = argmin(model, domain=Box(-0.2, 0.3), method="pgd", tol=1e-10, max_iter=2000,
                  lipschitz=torch.tensor([1e-6], dtype=torch.float64))
    torch.testing.assert_close(tiny.y[0], reference, atol=1e-5, rtol=0)


def test_a_warm_lipschitz_estimate_saves_the_first_iterations_backtracking(zoo):
    model = zoo.quadratic()
    calls = []
    counted = model.forward
    model.forward = lambda y: calls.append(len(y)) or counted(y)

    def forward_calls(**options):
        calls.clear()
        result = argmin(model, domain=Box(-0.2, 0.3), method="pgd", max_iter=8, **options)
        return len(calls), result

    cold_calls, cold = forward_calls()
    warm_calls, warm = forward_calls(lipschitz=cold.info["lipschitz"])
    assert warm_calls < cold_calls
    assert warm.value.item() <= cold.value.item() + 1e-12


@pytest.mark.parametrize("lipschitz, message", [
    (0.0, "positive finite"), (float("inf"), "positive finite"), (torch.ones(3), r"got \(3,\)"),
])
def test_a_bad_lipschitz_estimate_is_a_clear_error(lipschitz, message, zoo):
    model, x = zoo.relu_picnn(), torch.randn(6, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        argmin(model, x, domain=Box(0, 1), method="pgd", lipschitz=lipschitz)
    with pytest.raises(ValueError, match=r"'lbfgs' takes no option\(s\) \['lipschitz'\]"):
        argmin(model, x, domain=Box(0, 1), method="lbfgs", lipschitz=1.0)

"""``icnn.Argmin``: the reusable handle returns what ``icnn.argmin`` returns, to the bit, and
its caches (traits, conditioned x-path) follow every change of the weights and of ``x``."""

import os

import pytest
import torch

import icnn


def _same(a: icnn.ArgminResult, b: icnn.ArgminResult) -> None:
    assert a.method == b.method and a.iterations == b.iterations
    assert torch.equal(a.y, b.y) and torch.equal(a.value, b.value)
    assert torch.equal(a.converged, b.converged)
    for name in ("gap", "lower_bound", "objective"):
        left, right = getattr(a, name), getattr(b, name)
        assert (left is None) == (right is None), name
        if left is not None:
            assert torch.equal(left, right), name


def _picnn(seed: int = 0, **kwargs) -> icnn.PICNN:
    torch.manual_seed(seed)
    return icnn.PICNN(5, 3, hidden=(16, 16), **kwargs)


@pytest.mark.parametrize("method", ["pgd", "lbfgs", "bundle", "bundle_entropy", "auto"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_handle_matches_argmin_bit_for_bit_over_repeated_warm_started_calls(method, dtype):
    model = _picnn(activation="relu").to(dtype)
    domain = icnn.Box(0.0, 1.0)
    solver = icnn.Argmin(model, domain=domain, method=method, tol=1e-6, max_iter=7)
    x = torch.randn(4, 5, dtype=dtype, generator=torch.Generator().manual_seed(1))
    y0 = None
    for _ in range(3):  # the same x again: the conditioned x-path is reused
        got = solver(x, y0=y0)
        _same(got, icnn.argmin(model, x, domain=domain, y0=y0, method=method, tol=1e-6,
                               max_iter=7))
        y0 = got.y


def test_handle_sees_weight_updates_in_traits_and_conditioning():
    model = _picnn(activation="relu", constraint="project")
    domain = icnn.Box(0.0, 1.0)
    solver = icnn.Argmin(model, domain=domain, method="bundle", max_iter=5)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    solver(x)
    solver(x)  # caches filled
    with torch.no_grad():
        model.x_layers[0].weight.mul_(-2.0)  # a free weight: convex still, another energy
    _same(solver(x), icnn.argmin(model, x, domain=domain, method="bundle", max_iter=5))
    with torch.no_grad():
        layer = next(layer for _, layer in model.constrained_layers())
        layer.weight[0, 0] = -1.0  # leaves the convex set
    with pytest.raises(ValueError, match="needs a model convex in y"):
        solver(x)
    model.project_()
    _same(solver(x), icnn.argmin(model, x, domain=domain, method="bundle", max_iter=5))


def test_writes_through_data_are_seen():
    """A Polyak update through ``.data`` and ``x.data`` writes bump no version counter."""
    model = _picnn(activation="relu", constraint="project")
    domain = icnn.Box(-1.0, 1.0)
    solver = icnn.Argmin(model, domain=domain, method="bundle", max_iter=20)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(4))
    solver(x)
    solver(x)
    for parameter in model.parameters():
        parameter.data.mul_(1.5)
    _same(solver(x), icnn.argmin(model, x, domain=domain, method="bundle", max_iter=20))
    x.data[0] = 5.0
    _same(solver(x), icnn.argmin(model, x, domain=domain, method="bundle", max_iter=20))
    layer = next(layer for _, layer in model.constrained_layers())
    layer.weight.data.fill_(-1.0)  # leaves the convex set, unseen by version counters
    with pytest.raises(ValueError, match="needs a model convex in y"):
        solver(x)


def test_handle_recomputes_the_x_path_when_x_changes_in_place():
    model = _picnn(activation="softplus", strong_convexity=0.1)
    domain = icnn.Box(-1.0, 1.0)
    solver = icnn.Argmin(model, domain=domain, method="pgd", max_iter=6)
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(3))
    first = solver(x)
    solver(x)
    x.add_(1.0)
    moved = solver(x)
    _same(moved, icnn.argmin(model, x, domain=domain, method="pgd", max_iter=6))
    assert not torch.equal(moved.value, first.value)


def test_call_options_override_the_handles():
    model = _picnn(activation="softplus", strong_convexity=0.1)
    domain = icnn.Box(-1.0, 1.0)
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(4))
    solver = icnn.Argmin(model, domain=domain, method="pgd", max_iter=4, lipschitz=3.0)
    _same(solver(x), icnn.argmin(model, x, domain=domain, method="pgd", max_iter=4,
                                 lipschitz=3.0))
    _same(solver(x, lipschitz=50.0), icnn.argmin(model, x, domain=domain, method="pgd",
                                                 max_iter=4, lipschitz=50.0))
    with pytest.raises(ValueError, match="takes no option"):
        solver(x, memory=3)


def test_fully_convex_model_and_fixed_entries_per_call():
    torch.manual_seed(5)
    model = icnn.FICNN(4, hidden=(8, 8), activation="relu")
    domain = icnn.Box(0.0, 1.0)
    solver = icnn.Argmin(model, domain=domain, method="bundle", max_iter=10)
    mask = torch.tensor([True, False, False, True])
    values = torch.full((2, 4), 0.3)
    _same(solver(fixed=(mask, values)),
          icnn.argmin(model, domain=domain, fixed=(mask, values), method="bundle", max_iter=10))
    _same(solver(), icnn.argmin(model, domain=domain, method="bundle", max_iter=10))


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "newton"}, "method must be one of"),
    ({"differentiable": "yes"}, "differentiable must be one of"),
    ({"tol": -1.0}, "tol must be a finite number"),
    ({"max_iter": 0}, "max_iter must be a positive int"),
])
def test_constructor_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        icnn.Argmin(_picnn(), domain=icnn.Box(0.0, 1.0), **kwargs)


def test_call_refuses_a_context_of_the_wrong_shape():
    solver = icnn.Argmin(_picnn(activation="relu"), domain=icnn.Box(0.0, 1.0), method="pgd")
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, 5\), got \(2, 4\)"):
        solver(torch.zeros(2, 4))


@pytest.mark.slow
def test_compiled_energy_agrees_with_eager():
    """``compile=<backend>`` runs the solver on a torch.compile'd energy. The "eager" backend
    (dynamo's graph capture, no code generation) keeps CI fast and must agree to the bit; the
    inductor backend (code generation, minutes on the shared CPU) is checked to rounding when
    ICNN_TEST_INDUCTOR=1."""
    model = _picnn(activation="softplus", strong_convexity=0.1).requires_grad_(False)
    domain = icnn.Box(-1.0, 1.0)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(6))
    eager = icnn.argmin(model, x, domain=domain, method="pgd", tol=0.0, max_iter=4)
    compiled = icnn.Argmin(model, domain=domain, method="pgd", tol=0.0, max_iter=4,
                           compile="eager")
    for _ in range(2):  # the second call reuses the captured graph
        _same(compiled(x), eager)
    if os.environ.get("ICNN_TEST_INDUCTOR") == "1":
        inductor = icnn.Argmin(model, domain=domain, method="pgd", tol=0.0, max_iter=4,
                               compile=True)(x)
        torch.testing.assert_close(inductor.y, eager.y, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(inductor.value, eager.value, rtol=1e-5, atol=1e-5)


def test_compile_refuses_unrolling_and_bad_values():
    with pytest.raises(ValueError, match="differentiable='unroll'"):
        icnn.Argmin(_picnn(), domain=icnn.Box(0.0, 1.0), differentiable="unroll", compile=True)
    with pytest.raises(ValueError, match="compile must be a bool or a torch.compile backend"):
        icnn.Argmin(_picnn(), domain=icnn.Box(0.0, 1.0), compile=1)


def test_a_reused_frame_changes_nothing_and_follows_what_changed():
    """The handle reuses the last problem's bounds (and what was computed from them) when the
    next call has the same batch, dtype and domain and no fixed entries; every answer stays
    icnn.argmin's to the bit, and whatever differs builds new bounds."""
    model = _picnn(activation="softplus", strong_convexity=0.1).requires_grad_(False)
    domain = icnn.Box(-1.0, 1.0)
    solver = icnn.Argmin(model, domain=domain, method="pgd", tol=1e-5, max_iter=30)
    g = torch.Generator().manual_seed(8)
    mask = torch.tensor([True, False, False])
    for batch, fixed in ((3, None), (3, None), (2, None), (2, (mask, torch.full((3,), 0.5))),
                         (2, None), (3, None)):
        x = torch.randn(batch, 5, generator=g)
        _same(solver(x, fixed=fixed), icnn.argmin(model, x, domain=domain, method="pgd",
                                                   tol=1e-5, max_iter=30, fixed=fixed))
    solver(torch.randn(2, 5, generator=g))
    assert solver._frame is not None and solver._frame.batch == 2
    double = model.double()  # same handle, new dtype: new bounds in float64
    x = torch.randn(2, 5, generator=g, dtype=torch.float64)
    result = solver(x)
    assert result.y.dtype == torch.float64
    _same(result, icnn.argmin(double, x, domain=domain, method="pgd", tol=1e-5, max_iter=30))


def test_bounds_given_as_tensors_are_read_at_every_call():
    """A Box over tensors may be changed in place between calls: its bounds are never reused."""
    model = _picnn(activation="softplus", strong_convexity=0.1).requires_grad_(False)
    hi = torch.ones(3)
    solver = icnn.Argmin(model, domain=icnn.Box(-1.0, hi), method="pgd", tol=1e-6)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(9))
    solver(x)
    hi.fill_(-0.5)
    assert (solver(x).y <= -0.5).all()


def test_a_domain_assigned_after_construction_is_the_one_solved_over():
    model = _picnn(activation="softplus", strong_convexity=0.1).requires_grad_(False)
    solver = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method="pgd", tol=1e-6)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(10))
    solver(x)
    solver.domain = icnn.Box(-0.1, 0.1)
    _same(solver(x), icnn.argmin(model, x, domain=icnn.Box(-0.1, 0.1), method="pgd", tol=1e-6))
    solver.domain = None  # the whole space: strongly convex, so allowed
    _same(solver(x), icnn.argmin(model, x, method="pgd", tol=1e-6))

"""Convexity is the product's promise: random architectures stay convex after training steps,
save/load and dtype moves (Jensen's inequality and the first-order condition, in float64)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import icnn

activations = st.sampled_from(
    ["relu", "softplus", "elu", "celu", "squared_relu",
     {"name": "leaky_relu", "negative_slope": 0.2}]
)
architectures = st.fixed_dictionaries({
    "kind": st.sampled_from(["ficnn", "picnn"]),
    "y_dim": st.integers(1, 5),
    "x_dim": st.integers(1, 4),
    "hidden": st.lists(st.integers(1, 12), min_size=0, max_size=3),
    "activation": activations,
    "first_activation": st.sampled_from([None, "abs", "square", "relu"]),
    "constraint": st.sampled_from(["softplus", "exp", "project"]),
    "strong_convexity": st.sampled_from([0.0, 0.5]),
    "seed": st.integers(0, 2**16),
})


def build(arch: dict) -> icnn.ConvexModel:
    torch.manual_seed(arch["seed"])
    common = {k: arch[k] for k in ("hidden", "activation", "first_activation", "constraint",
                                   "strong_convexity")}
    if arch["kind"] == "ficnn":
        return icnn.FICNN(arch["y_dim"], **common).double()
    return icnn.PICNN(arch["x_dim"], arch["y_dim"], **common).double()


def energy(model, x, y):
    return model(y) if not model.has_context else model(x, y)


def jensen_gap(model, generator) -> float:
    report = icnn.check_convexity(model, n_pairs=64, n_mix=4, generator=generator)
    assert report.structural_ok, str(report)
    return report.worst_violation


def first_order_gap(model, generator) -> float:
    """max over pairs of f(b) - [f(a) + grad f(a)^T (b - a)], which is >= 0 for convex f."""
    n, shape = 64, model.convex_input_shape
    a = (torch.randn(n, *shape, generator=generator, dtype=torch.float64) * 2).requires_grad_()
    b = torch.randn(n, *shape, generator=generator, dtype=torch.float64) * 2
    x = None
    if model.has_context:
        x = torch.randn(n, *model.context_shape, generator=generator, dtype=torch.float64)
    f_a = energy(model, x, a)
    (grad,) = torch.autograd.grad(f_a.sum(), a)
    with torch.no_grad():
        f_b = energy(model, x, b)
        tangent = f_a + (grad * (b - a)).flatten(1).sum(1)
        return float(((tangent - f_b) / (1 + f_b.abs())).max())


def train_on_nonconvex_target(model, steps=30, lr=0.2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        y = torch.randn(32, *model.convex_input_shape, dtype=torch.float64) * 2
        x = torch.randn(32, *model.context_shape, dtype=torch.float64) if model.has_context else None
        target = -torch.cos(3 * y).sum(1) * 5  # strongly non-convex in y
        loss = (energy(model, x, y) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.project_()  # no-op for parametrised constraints, the paper's step otherwise


@given(arch=architectures)
def test_random_architectures_are_convex_at_initialisation(arch):
    model = build(arch)
    generator = torch.Generator().manual_seed(arch["seed"])
    assert jensen_gap(model, generator) <= 1e-9
    assert first_order_gap(model, generator) <= 1e-9


@given(arch=architectures)
def test_random_architectures_stay_convex_after_aggressive_training(arch):
    model = build(arch)
    train_on_nonconvex_target(model)
    generator = torch.Generator().manual_seed(arch["seed"])
    assert jensen_gap(model, generator) <= 1e-9
    assert first_order_gap(model, generator) <= 1e-9


@given(arch=architectures)
def test_convexity_survives_save_load_and_dtype_moves(arch, tmp_path_factory):
    model = build(arch)
    train_on_nonconvex_target(model, steps=10)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    icnn.save(model, path)
    loaded = icnn.load(path)
    assert loaded.dtype == torch.float64
    generator = torch.Generator().manual_seed(1)
    y = torch.randn(8, *model.convex_input_shape, dtype=torch.float64)
    x = torch.randn(8, *model.context_shape, dtype=torch.float64) if model.has_context else None
    torch.testing.assert_close(energy(loaded, x, y), energy(model, x, y))
    assert jensen_gap(loaded, generator) <= 1e-9
    as_float32 = loaded.to(torch.float32)
    assert icnn.check_convexity(as_float32, n_pairs=32, generator=generator).ok


@pytest.mark.parametrize("constraint", ["softplus", "exp"])
def test_parametrised_constraints_survive_huge_sgd_steps(constraint):
    model = icnn.FICNN(3, [16, 16], constraint=constraint).double()
    opt = torch.optim.SGD(model.parameters(), lr=1e3)
    y = torch.randn(64, 3, dtype=torch.float64)
    loss = (model(y) + 10 * torch.cos(4 * y).sum(1)).square().mean()
    loss.backward()
    opt.step()
    assert all(bool((layer.weight >= 0).all()) for _, layer in model.constrained_layers())

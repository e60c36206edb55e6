"""Convexity is the product's promise: random architectures, dense and convolutional, stay convex
after aggressive training steps, save/load and dtype moves (Jensen's inequality and the
first-order condition, in float64), and say so through ``energy_traits()``; a projected model that
a step pushed below zero says it is not convex, and ``check_convexity`` finds it, until
``project_()``.

Every test here is marked ``property``: CI runs them once more with many more examples
(``ICNN_HYPOTHESIS_PROFILE=slow``, see ``tests/conftest.py`` and ``.ci/run``).
"""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import icnn

pytestmark = pytest.mark.property

activations = st.sampled_from(
    ["relu", "softplus", "elu", "celu", "squared_relu",
     {"name": "leaky_relu", "negative_slope": 0.2}]
)
# one conv stage: (channels, kernel size, stride); tiny images keep an example in milliseconds
KINDS = ["ficnn", "picnn", "conv_ficnn", "conv_picnn"]  # parametrised: each gets every example
conv_stages = st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2)),
                       min_size=1, max_size=2)
architectures = st.fixed_dictionaries({
    "y_dim": st.integers(1, 5),
    "x_dim": st.integers(1, 4),
    "hidden": st.lists(st.integers(1, 12), min_size=0, max_size=3),
    "image": st.tuples(st.integers(1, 2), st.integers(4, 6), st.integers(4, 6)),  # y: (C, H, W)
    "x_channels": st.integers(1, 2),
    "stages": conv_stages,
    "dense": st.lists(st.integers(1, 6), min_size=0, max_size=1),
    "activation": activations,
    "first_activation": st.sampled_from([None, "abs", "square", "relu"]),
    "constraint": st.sampled_from(["softplus", "exp", "project"]),
    "strong_convexity": st.sampled_from([0.0, 0.5]),
    "seed": st.integers(0, 2**16),
})


def build(kind: str, arch: dict) -> icnn.ConvexModel:
    """The float64 model of this ``kind`` that ``arch`` describes; it must declare itself convex
    when built."""
    torch.manual_seed(arch["seed"])
    common = {k: arch[k] for k in ("activation", "first_activation", "constraint",
                                   "strong_convexity")}
    if kind in ("ficnn", "picnn"):
        common["hidden"] = arch["hidden"]
        if kind == "ficnn":
            model = icnn.FICNN(arch["y_dim"], **common)
        else:
            model = icnn.PICNN(arch["x_dim"], arch["y_dim"], **common)
    else:
        channels, kernel_sizes, strides = zip(*arch["stages"], strict=True)
        common.update(channels=channels, kernel_sizes=kernel_sizes, strides=strides,
                      dense=arch["dense"])
        y_shape = arch["image"]
        if kind == "conv_ficnn":
            model = icnn.ConvFICNN(y_shape, **common)
        else:
            x_shape = (arch["x_channels"], *y_shape[1:])
            model = icnn.ConvPICNN(x_shape, y_shape, **common)
    model = model.double()
    assert_declared_convex(model)
    return model


def assert_declared_convex(model) -> None:
    traits = model.energy_traits()
    assert traits.convex is True, traits.issues
    assert traits.issues == ()


def energy(model, x, y):
    return model(y) if not model.has_context else model(x, y)


def random_inputs(model, n: int, generator=None, dtype=torch.float64):
    y = torch.randn(n, *model.convex_input_shape, generator=generator, dtype=dtype) * 2
    x = None
    if model.has_context:
        x = torch.randn(n, *model.context_shape, generator=generator, dtype=dtype)
    return x, y


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


def assert_convex(model, seed: int) -> None:
    """Declared convex, Jensen's inequality and the first-order condition, in float64."""
    assert_declared_convex(model)
    generator = torch.Generator().manual_seed(seed)
    assert jensen_gap(model, generator) <= 1e-9
    assert first_order_gap(model, generator) <= 1e-9


def train_on_nonconvex_target(model, steps=30, lr=0.2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        x, y = random_inputs(model, 32)
        target = -torch.cos(3 * y).flatten(1).sum(1) * 5  # strongly non-convex in y
        loss = (energy(model, x, y) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.project_()  # no-op for parametrised constraints, the paper's step otherwise


def push_constrained_weights_negative(model) -> None:
    """One SGD step whose gradient is +1 on every constrained weight: all of them drop by 10."""
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    loss = sum(layer.weight.sum() for _, layer in model.constrained_layers())
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("kind", KINDS)
@given(arch=architectures)
def test_random_architectures_are_convex_at_initialisation(kind, arch):
    assert_convex(build(kind, arch), arch["seed"])


@pytest.mark.parametrize("kind", KINDS)
@given(arch=architectures)
def test_random_architectures_stay_convex_after_aggressive_training(kind, arch):
    model = build(kind, arch)
    train_on_nonconvex_target(model)
    assert_convex(model, arch["seed"])


@pytest.mark.parametrize("kind", KINDS)
@given(arch=architectures)
def test_a_projected_model_pushed_negative_is_not_convex_until_project(kind, arch):
    model = build(kind, {**arch, "constraint": "project"})
    assume(any(True for _ in model.constrained_layers()))  # a 1-layer dense net has no W^(z)
    push_constrained_weights_negative(model)
    traits = model.energy_traits()
    assert traits.convex is False
    assert any("negative entries" in issue for issue in traits.issues), traits.issues
    report = icnn.check_convexity(model, n_pairs=16, generator=torch.Generator().manual_seed(0))
    assert not report.ok and not report.structural_ok
    assert any("negative entries" in issue for issue in report.issues), str(report)
    model.project_()
    assert_convex(model, arch["seed"])


@pytest.mark.parametrize("kind", KINDS)
@given(arch=architectures)
def test_convexity_survives_save_load_and_dtype_moves(kind, arch, tmp_path_factory):
    model = build(kind, arch)
    train_on_nonconvex_target(model, steps=10)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    icnn.save(model, path)
    loaded = icnn.load(path)
    assert type(loaded) is type(model) and loaded.dtype == torch.float64
    x, y = random_inputs(model, 8, torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(energy(loaded, x, y), energy(model, x, y), rtol=0, atol=0)
    assert_convex(loaded, 1)
    as_float32 = loaded.to(torch.float32)
    assert as_float32.dtype == torch.float32
    assert_declared_convex(as_float32)
    generator = torch.Generator().manual_seed(3)
    assert icnn.check_convexity(as_float32, n_pairs=32, generator=generator).ok
    x32 = None if x is None else x.float()
    with torch.no_grad():
        expected = energy(model, x, y)
        torch.testing.assert_close(energy(as_float32, x32, y.float()).double(), expected,
                                   rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    back = as_float32.to(torch.float64)
    assert_convex(back, 4)


@pytest.mark.parametrize("constraint", ["softplus", "exp"])
def test_parametrised_constraints_survive_huge_sgd_steps(constraint):
    model = icnn.FICNN(3, [16, 16], constraint=constraint).double()
    opt = torch.optim.SGD(model.parameters(), lr=1e3)
    y = torch.randn(64, 3, dtype=torch.float64)
    loss = (model(y) + 10 * torch.cos(4 * y).sum(1)).square().mean()
    loss.backward()
    opt.step()
    weights = [layer.weight for _, layer in model.constrained_layers()]
    assert all(bool((weight >= 0).all()) for weight in weights)
    # exp may overflow to inf under such a step: then the model must say so, not claim convexity
    finite = all(bool(torch.isfinite(weight).all()) for weight in weights)
    traits = model.energy_traits()
    assert traits.convex is finite, traits.issues
    if not finite:
        assert constraint == "exp" and any("overflows" in issue for issue in traits.issues)

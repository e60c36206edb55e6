"""ConvFICNN and ConvPICNN: geometry, the conv form of eq. (3), convexity in y, bad inputs."""

import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from icnn.nn.conv import ConvFICNN, ConvPICNN, conv_stages
from icnn.nn.layers import NonNegativeConv2d, NonNegativeLinear

TINY = {"channels": (3, 4), "kernel_sizes": (3, 2), "strides": (2, 1), "dense": (5,)}


def jensen_gap(energy, y_a: torch.Tensor, y_b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``t f(a) + (1 - t) f(b) - f(t a + (1 - t) b)``: non-negative for f convex in y."""
    t_img = t.view(-1, 1, 1, 1)
    mixed = energy(t_img * y_a + (1 - t_img) * y_b)
    return t * energy(y_a) + (1 - t) * energy(y_b) - mixed


def assert_jensen(energy, y_shape, n: int = 64, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    y_a = torch.randn(n, *y_shape, generator=gen, dtype=torch.float64)
    y_b = torch.rand(n, *y_shape, generator=gen, dtype=torch.float64) * 3 - 1
    t = torch.rand(n, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        gap = jensen_gap(energy, y_a, y_b, t)
        scale = energy(y_a).abs() + energy(y_b).abs() + 1.0
    assert bool((gap >= -1e-10 * scale).all()), f"Jensen violated: min gap {float(gap.min()):.3g}"


# --- geometry --------------------------------------------------------------------------------

def test_default_geometry_maps_a_64x32_half_face_to_16x8_8x4_8x4():
    stages = conv_stages((64, 32), (8, 4, 3), (4, 2, 1))
    assert [s.out_size for s in stages] == [(16, 8), (8, 4), (8, 4)]
    assert [s.padding for s in stages] == [(2, 2), (1, 1), (1, 1)]  # (k - s) // 2, symmetric
    assert all(s.extra_pad == (0, 0, 0, 0) for s in stages)


def test_odd_sizes_use_same_padding_ceil_of_size_over_stride():
    stages = conv_stages((13, 7), (8, 4, 3), (4, 2, 1))
    assert [s.out_size for s in stages] == [(4, 2), (2, 1), (2, 1)]
    assert stages[0].extra_pad == (0, 1, 0, 1)  # odd total padding: the extra pixel goes last


def test_conv_ficnn_returns_one_energy_per_half_face():
    model = ConvFICNN((1, 64, 32), dense=(16,))
    assert model(torch.rand(3, 1, 64, 32)).shape == (3,)


def test_conv_picnn_returns_one_energy_per_half_face_with_default_geometry():
    model = ConvPICNN((1, 64, 32), (1, 64, 32), dense=(16,))
    assert model(torch.rand(2, 1, 64, 32), torch.rand(2, 1, 64, 32)).shape == (2,)


@pytest.mark.parametrize("height, width", [(13, 7), (5, 3), (1, 1), (9, 16)])
def test_odd_and_tiny_images_give_one_energy_per_example(height, width):
    ficnn = ConvFICNN((2, height, width), dense=(6,))
    picnn = ConvPICNN((3, height, width), (2, height, width), dense=(6,), x_channels=(5, 4, 3))
    y = torch.rand(4, 2, height, width)
    assert ficnn(y).shape == (4,)
    assert picnn(torch.rand(4, 3, height, width), y).shape == (4,)


def test_empty_dense_head_goes_straight_to_the_output():
    model = ConvPICNN((1, 8, 6), (1, 8, 6), **{**TINY, "dense": ()})
    assert len(model.z_dense) == 1 and model.z_dense[0].out_features == 1
    assert model(torch.rand(2, 1, 8, 6), torch.rand(2, 1, 8, 6)).shape == (2,)


# --- the equations ---------------------------------------------------------------------------

def test_conv_picnn_matches_equation_3_with_convolutions_written_by_hand():
    """One conv stage (3x3 stride 2 on 6x4: "same" padding of 0 before, 1 after), output."""
    model = ConvPICNN((2, 6, 4), (1, 6, 4), channels=(2,), kernel_sizes=(3,), strides=(2,),
                      dense=()).double()
    x = torch.randn(5, 2, 6, 4, dtype=torch.float64)
    y = torch.rand(5, 1, 6, 4, dtype=torch.float64)

    def conv(layer, t, padded=True):
        t = F.pad(t, (0, 1, 0, 1)) if padded else t
        return F.conv2d(t, layer.weight, layer.bias, stride=layer.stride)

    y_gate = F.conv2d(x, model.gate_convs[0].weight, model.gate_convs[0].bias, padding=1)
    z1 = F.relu(conv(model.y_convs[0], y * y_gate) + conv(model.u_convs[0], x))
    u1 = F.relu(conv(model.x_convs[0], x)).flatten(1)
    z_gate, y_gate1, u_term = model.u_dense[0](u1).split(model.dense_split[0], dim=-1)
    energy = (z1.flatten(1) * F.relu(z_gate)) @ model.z_dense[0].weight.T
    # the output layer's y term reads the full-resolution y
    energy = energy + (y.flatten(1) * y_gate1) @ model.y_dense[0].weight.T + u_term
    torch.testing.assert_close(model(x, y), energy.squeeze(-1))


def test_conv_ficnn_matches_its_equation_written_by_hand():
    model = ConvFICNN((1, 8, 8), channels=(2, 3), kernel_sizes=(4, 3), strides=(2, 1),
                      dense=(5,)).double()
    y = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    first, second = model.y_convs
    skip0, y_bar1 = F.conv2d(y, first.weight, first.bias, stride=2, padding=1).split((2, 1), 1)
    z1 = F.relu(skip0)
    skip1, y_bar2 = F.conv2d(y_bar1, second.weight, second.bias, padding=1).split((3, 1), 1)
    z2 = F.relu(F.conv2d(z1, model.z_convs[0].weight, padding=1) + skip1)
    z3 = F.relu(z2.flatten(1) @ model.z_dense[0].weight.T + model.y_dense[0](y_bar2.flatten(1)))
    # the output layer's passthrough reads the full-resolution y
    energy = z3 @ model.z_dense[1].weight.T + model.y_dense[1](y.flatten(1))
    torch.testing.assert_close(model(y), energy.squeeze(-1))


def test_strong_convexity_adds_half_mu_times_the_squared_norm():
    plain = ConvPICNN((1, 8, 6), (2, 8, 6), **TINY)
    strong = ConvPICNN((1, 8, 6), (2, 8, 6), **TINY, strong_convexity=0.5)
    strong.load_state_dict(plain.state_dict())
    x, y = torch.randn(3, 1, 8, 6), torch.randn(3, 2, 8, 6)
    torch.testing.assert_close(strong(x, y) - plain(x, y), 0.25 * y.square().sum((1, 2, 3)))


def test_strong_convexity_of_conv_ficnn():
    plain = ConvFICNN((1, 8, 6), **TINY)
    strong = ConvFICNN((1, 8, 6), **TINY, strong_convexity=2.0)
    strong.load_state_dict(plain.state_dict())
    y = torch.randn(3, 1, 8, 6)
    torch.testing.assert_close(strong(y) - plain(y), y.square().sum((1, 2, 3)))


# --- convexity -------------------------------------------------------------------------------

ACTIVATION_NAMES = ["relu", "softplus", {"name": "leaky_relu", "negative_slope": 0.2}, "elu"]


@st.composite
def small_configs(draw):
    n_stages = draw(st.integers(1, 3))
    return {
        "channels": draw(st.lists(st.integers(1, 4), min_size=n_stages, max_size=n_stages)),
        "kernel_sizes": draw(st.lists(st.integers(1, 4), min_size=n_stages, max_size=n_stages)),
        "strides": draw(st.lists(st.integers(1, 3), min_size=n_stages, max_size=n_stages)),
        "dense": draw(st.lists(st.integers(1, 5), max_size=2)),
        "activation": draw(st.sampled_from(ACTIVATION_NAMES)),
        "first_activation": draw(st.sampled_from([None, "abs", "square"])),
        "constraint": draw(st.sampled_from(["softplus", "exp", "project"])),
        "strong_convexity": draw(st.sampled_from([0.0, 0.1])),
    }


@settings(max_examples=12, deadline=None)
@given(config=small_configs(), height=st.integers(1, 9), width=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_conv_ficnn_satisfies_jensen_in_y(config, height, width, seed):
    torch.manual_seed(seed)
    model = ConvFICNN((2, height, width), **config).double()
    assert_jensen(model, (2, height, width), seed=seed)


@settings(max_examples=12, deadline=None)
@given(config=small_configs(), height=st.integers(1, 9), width=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_conv_picnn_satisfies_jensen_in_y_for_every_fixed_x(config, height, width, seed):
    torch.manual_seed(seed)
    model = ConvPICNN((3, height, width), (1, height, width), **config).double()
    x = torch.randn(64, 3, height, width, dtype=torch.float64)
    assert_jensen(lambda y: model(x, y), (1, height, width), seed=seed)


def _fit_nonconvex_target(model, steps: int = 50) -> tuple[float, float]:
    """50 Adam steps pulling the energy towards -||y||^2 + sin(3 sum y); returns (first, last)."""
    x = torch.randn(32, 1, 8, 6, dtype=torch.float64)
    y = torch.rand(32, 2, 8, 6, dtype=torch.float64) * 2 - 1
    target = -y.square().sum((1, 2, 3)) + torch.sin(3 * y.sum((1, 2, 3)))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = (model(x, y) - target).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        model.project_()
        losses.append(float(loss.detach()))
    return losses[0], losses[-1]


def test_conv_picnn_stays_convex_after_fitting_a_nonconvex_target():
    torch.manual_seed(3)
    model = ConvPICNN((1, 8, 6), (2, 8, 6), **TINY).double()
    first, last = _fit_nonconvex_target(model)
    assert last < first  # the training really moved the weights
    x = torch.randn(64, 1, 8, 6, dtype=torch.float64)
    assert_jensen(lambda y: model(x, y), (2, 8, 6))


def test_project_constraint_needs_project_to_restore_nonnegative_filters():
    torch.manual_seed(4)
    model = ConvPICNN((1, 8, 6), (2, 8, 6), **TINY, constraint="project").double()
    first, last = _fit_nonconvex_target(model)
    assert last < first
    with torch.no_grad():  # as if an optimiser step had pushed every W^(z) negative
        for _, layer in model.constrained_layers():
            layer.weight.sub_(1.0)
    assert any(bool((layer.weight < 0).any()) for _, layer in model.constrained_layers())
    model.project_()
    assert all(bool((layer.weight >= 0).all()) for _, layer in model.constrained_layers())
    x = torch.randn(64, 1, 8, 6, dtype=torch.float64)
    assert_jensen(lambda y: model(x, y), (2, 8, 6))


def test_every_z_to_z_map_is_constrained_and_nothing_else_is():
    model = ConvPICNN((1, 8, 6), (1, 8, 6), **TINY)
    constrained = dict(model.constrained_layers())
    expected = {f"z_convs.{i}" for i in range(len(TINY["channels"]) - 1)}
    expected |= {f"z_dense.{j}" for j in range(len(TINY["dense"]) + 1)}
    assert set(constrained) == expected
    assert all(isinstance(m, NonNegativeConv2d | NonNegativeLinear) for m in constrained.values())


def test_nonconvex_ablation_has_no_constrained_maps_and_says_so():
    model = ConvPICNN((1, 8, 6), (1, 8, 6), **TINY, convex=False)
    assert not model.is_convex and ConvPICNN((1, 8, 6), (1, 8, 6), **TINY).is_convex
    assert not list(model.constrained_layers())
    assert any(bool((layer.weight < 0).any()) for layer in (*model.z_convs, *model.z_dense))


def test_nonconvex_ablation_can_violate_jensen():
    torch.manual_seed(0)
    model = ConvPICNN((1, 4, 4), (1, 4, 4), channels=(4, 4), kernel_sizes=(3, 3),
                      strides=(1, 1), dense=(8,), convex=False).double()
    with torch.no_grad():
        for layer in (*model.z_convs, *model.z_dense):
            layer.weight.copy_(-layer.weight.abs())  # z -> z maps all negative: concave parts
    x = torch.randn(256, 1, 4, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    y_a = 3 * torch.randn(256, 1, 4, 4, generator=gen, dtype=torch.float64)
    y_b = 3 * torch.randn(256, 1, 4, 4, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        gap = jensen_gap(lambda y: model(x, y), y_a, y_b, torch.full((256,), 0.5,
                                                                      dtype=torch.float64))
    assert float(gap.min()) < -1e-6


# --- gradients, config, init -----------------------------------------------------------------

def test_gradcheck_in_x_and_y():
    model = ConvPICNN((1, 5, 4), (1, 5, 4), channels=(2, 2), kernel_sizes=(3, 2),
                      strides=(2, 1), dense=(3,), activation="softplus",
                      x_activation="softplus").double()
    x = torch.randn(2, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x, y))
    ficnn = ConvFICNN((1, 5, 4), channels=(2, 2), kernel_sizes=(3, 2), strides=(2, 1),
                      dense=(3,), activation="softplus").double()
    assert torch.autograd.gradcheck(ficnn, (y,))


@pytest.mark.parametrize("convex", [True, False])
def test_config_is_json_and_rebuilds_the_same_function(convex):
    model = ConvPICNN((1, 8, 6), (2, 8, 6), **TINY, first_activation="abs",
                      constraint="exp", strong_convexity=0.1, convex=convex)
    config = json.loads(json.dumps(model.config))
    rebuilt = ConvPICNN(**config)
    rebuilt.load_state_dict(model.state_dict())
    x, y = torch.randn(3, 1, 8, 6), torch.randn(3, 2, 8, 6)
    torch.testing.assert_close(rebuilt(x, y), model(x, y))
    assert model.convex_input_shape == (2, 8, 6) and model.context_shape == (1, 8, 6)
    assert model.has_context


def test_conv_ficnn_config_rebuilds_the_same_function():
    model = ConvFICNN((2, 7, 5), **TINY, init="default")
    rebuilt = ConvFICNN(**json.loads(json.dumps(model.config)))
    rebuilt.load_state_dict(model.state_dict())
    y = torch.randn(3, 2, 7, 5)
    torch.testing.assert_close(rebuilt(y), model(y))
    assert not model.has_context


def test_loading_negative_filters_is_refused():
    model = ConvFICNN((1, 8, 6), **TINY, constraint="project")
    state = model.state_dict()
    state["z_convs.0.weight"] = -state["z_convs.0.weight"].abs() - 0.1
    with pytest.raises(ValueError, match="breaks convexity"):
        model.load_state_dict(state)


def test_icnn_init_keeps_hidden_units_alive_on_standardised_inputs():
    """Centring biases (Hoedt & Klambauer) keep a fair share of each layer active at init."""
    model = ConvPICNN((1, 64, 32), (1, 64, 32), dense=(64,))
    pre_activations = []
    for activation in model.activations[:-1]:
        activation.register_forward_hook(lambda m, inp, out: pre_activations.append(inp[0]))
    with torch.no_grad():
        model(torch.randn(32, 1, 64, 32), torch.randn(32, 1, 64, 32))
    for pre in pre_activations:
        assert 0.2 < float((pre > 0).float().mean()) < 0.8


# --- bad inputs ------------------------------------------------------------------------------

def test_wrong_shapes_dtypes_and_values_are_refused():
    model = ConvPICNN((1, 8, 6), (2, 8, 6), **TINY)
    x, y = torch.randn(3, 1, 8, 6), torch.randn(3, 2, 8, 6)
    with pytest.raises(ValueError, match=r"expected y of shape \(batch, 2, 8, 6\)"):
        model(x, y[:, :1])
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, 1, 8, 6\)"):
        model(x[..., :5], y)
    with pytest.raises(ValueError, match="batch size"):
        model(x[:2], y)
    with pytest.raises(ValueError, match="dtype"):
        model(x, y.double())
    with pytest.raises(ValueError, match="floating-point"):
        model(x, y.long())
    y_nan = y.clone()
    y_nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        model(x, y_nan)
    with pytest.raises(ValueError, match=r"expected y of shape \(batch, 1, 8, 6\)"):
        ConvFICNN((1, 8, 6), **TINY)(torch.randn(3, 8, 6))


def test_mismatched_spatial_sizes_of_x_and_y_are_refused():
    with pytest.raises(ValueError, match="same spatial size"):
        ConvPICNN((1, 64, 64), (1, 64, 32))


@pytest.mark.parametrize("kwargs, message", [
    ({"channels": (3, 4), "kernel_sizes": (3,), "strides": (1, 1)}, "one entry per conv stage"),
    ({"channels": ()}, "channels must be a non-empty"),
    ({"strides": (4, 0, 1)}, "strides must be"),
    ({"activation": "abs"}, "not non-decreasing"),
    ({"constraint": "clip"}, "constraint must be"),
    ({"strong_convexity": -1.0}, "strong_convexity"),
    ({"x_channels": (3,)}, "x_channels and x_dense"),
    ({"convex": 1}, "convex must be a bool"),
])
def test_bad_constructor_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvPICNN((1, 8, 6), (1, 8, 6), **kwargs)


def test_bad_image_shape_is_refused():
    with pytest.raises(ValueError, match=r"y_shape must be \(C, H, W\)"):
        ConvFICNN((64, 32))


# --- the x-path computed once ----------------------------------------------------------------

def _same_pad(t: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow "same" padding, written out: ``ceil(size / stride)`` outputs, odd pixel last."""
    pads = []
    for size in (t.shape[-1], t.shape[-2]):  # F.pad takes the last dimension first
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(t, pads)


def conv_picnn_by_hand(model: ConvPICNN, x: torch.Tensor, y: torch.Tensor, g) -> torch.Tensor:
    """Eq. (3) with convolutions, from the model's weights, with hidden activation ``g`` (ReLU
    x-path and gates): an independent reference for ``forward`` and ``condition``."""
    u, y_bar, z = x, y, None
    for l, (kernel, stride) in enumerate(zip(model.config["kernel_sizes"], model.config["strides"],
                                             strict=True)):
        def conv(layer, t, kernel=kernel, stride=stride):
            return F.conv2d(_same_pad(t, kernel, stride), layer.weight, layer.bias, stride=stride)

        gates = F.conv2d(u, model.gate_convs[l].weight, model.gate_convs[l].bias, padding=1)
        y_gate = gates[:, -y.shape[1]:]
        pre = conv(model.y_convs[l], y_bar * y_gate) + conv(model.u_convs[l], u)
        if l > 0:
            pre = pre + conv(model.z_convs[l - 1], z * F.relu(gates[:, :z.shape[1]]))
        z = g(pre)
        y_bar = conv(model.y_down[l], y_bar)
        u = F.relu(conv(model.x_convs[l], u))
    z, u = z.flatten(1), u.flatten(1)
    n_dense = len(model.config["dense"]) + 1
    for j in range(n_dense):
        last = j == n_dense - 1
        y_in = y.flatten(1) if last else y_bar.flatten(1)  # the output layer reads the full y
        gates = F.linear(u, model.u_dense[j].weight, model.u_dense[j].bias)
        z_gate, y_gate, u_term = gates.split((z.shape[1], y_in.shape[1], 1 if last else
                                              model.config["dense"][j]), dim=1)
        pre = (F.linear(z * F.relu(z_gate), model.z_dense[j].weight)
               + F.linear(y_in * y_gate, model.y_dense[j].weight) + u_term)
        z = pre if last else g(pre)
        if not last:
            u = F.relu(F.linear(u, model.x_dense[j].weight, model.x_dense[j].bias))
    mu = model.config["strong_convexity"]
    return z.squeeze(-1) + 0.5 * mu * y.flatten(1).square().sum(1)


@pytest.mark.parametrize("activation, g", [("relu", F.relu), ("softplus", F.softplus)])
def test_conditioned_energy_matches_eq_3_written_by_hand_on_all_and_picked_rows(activation, g):
    """``condition(x)`` (the x-path once) against an independent re-implementation, with "same"
    padding that is odd in both stages (9x6 -> 5x3 -> 5x3), at several ``y`` and on ``index``
    subsets (with a repeat), which must pick the rows of ``x`` that ``y`` belongs to."""
    torch.manual_seed(1)
    model = ConvPICNN((2, 9, 6), (1, 9, 6), **TINY, activation=activation, strong_convexity=0.3,
                      constraint="exp").double()
    x = torch.randn(4, 2, 9, 6, dtype=torch.float64)
    features = model.context_features(x)
    assert features.shape == (4, model.n_context_features)
    energy = model.condition(x)
    for _ in range(3):
        y = torch.randn(4, 1, 9, 6, dtype=torch.float64)
        expected = conv_picnn_by_hand(model, x, y, g)
        assert float(expected.detach().std()) > 1e-3  # the rows differ, so a wrong pick shows
        torch.testing.assert_close(energy(y), expected)
        torch.testing.assert_close(model(x, y), expected)
        torch.testing.assert_close(model.energy_from_features(features, y), expected)
    for index in (torch.tensor([2, 0]), torch.tensor([3, 3, 1])):
        y = torch.randn(len(index), 1, 9, 6, dtype=torch.float64)
        torch.testing.assert_close(energy(y, index), conv_picnn_by_hand(model, x[index], y, g))

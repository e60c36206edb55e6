"""FICNN and PICNN: shapes, equations (2) and (3), Proposition 2, gradients, bad inputs."""

import pytest
import torch
import torch.nn.functional as F

import icnn
from icnn.nn.constraints import set_nonnegative_


def test_ficnn_returns_one_energy_per_example():
    model = icnn.FICNN(y_dim=6, hidden=[8, 8])
    assert model(torch.randn(5, 6)).shape == (5,)


def test_picnn_returns_one_energy_per_example_with_separate_x_widths():
    model = icnn.PICNN(x_dim=3, y_dim=6, hidden=[8, 8], x_hidden=[5, 4])
    assert model(torch.randn(5, 3), torch.randn(5, 6)).shape == (5,)


def test_ficnn_matches_equation_2_written_by_hand():
    model = icnn.FICNN(y_dim=3, hidden=[4], activation="relu").double()
    y = torch.randn(7, 3, dtype=torch.float64)
    w_y = model.passthrough.weight.split(model.sizes)
    b = model.passthrough.bias.split(model.sizes)
    z1 = F.relu(y @ w_y[0].T + b[0])
    expected = (z1 @ model.z_layers[0].weight.T + y @ w_y[1].T + b[1]).squeeze(-1)
    torch.testing.assert_close(model(y), expected)


def test_picnn_matches_equation_3_written_by_hand():
    model = icnn.PICNN(x_dim=2, y_dim=3, hidden=[4]).double()
    x, y = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    u1 = F.relu(model.x_layers[0](x))
    y_gate0, u_term0 = model.u_maps[0](x).split(model.split_sizes[0], dim=-1)
    z1 = F.relu(model.y_layers[0](y * y_gate0) + u_term0)
    z_gate1, y_gate1, u_term1 = model.u_maps[1](u1).split(model.split_sizes[1], dim=-1)
    z2 = (model.z_layers[0](z1 * F.relu(z_gate1)) + model.y_layers[1](y * y_gate1) + u_term1)
    torch.testing.assert_close(model(x, y), z2.squeeze(-1))


def test_strong_convexity_adds_the_quadratic():
    plain = icnn.FICNN(4, [8], strong_convexity=0.0)
    strong = icnn.FICNN(4, [8], strong_convexity=3.0)
    strong.load_state_dict(plain.state_dict())
    y = torch.randn(6, 4)
    torch.testing.assert_close(strong(y) - plain(y), 1.5 * y.square().sum(1))


def test_picnn_with_zero_x_path_equals_a_given_ficnn():
    """Proposition 2, first half: x-path weights 0 and b^(z) = b^(y) = 1 recover an FICNN."""
    ficnn = icnn.FICNN(y_dim=4, hidden=[6, 5]).double()
    picnn = icnn.PICNN(x_dim=3, y_dim=4, hidden=[6, 5]).double()
    with torch.no_grad():
        y_weights = ficnn.passthrough.weight.split(ficnn.sizes)
        biases = ficnn.passthrough.bias.split(ficnn.sizes)
        for i, u_map in enumerate(picnn.u_maps):
            u_map.weight.zero_()
            parts = u_map.bias.split(picnn.split_sizes[i])
            for gate in parts[:-1]:
                gate.fill_(1.0)  # b^(z) = b^(y) = 1
            parts[-1].copy_(biases[i])  # b_i
            picnn.y_layers[i].weight.copy_(y_weights[i])
        for mine, theirs in zip(picnn.z_layers, ficnn.z_layers, strict=True):
            set_nonnegative_(mine, theirs.weight.detach().clone())
    x, y = torch.randn(9, 3, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    torch.testing.assert_close(picnn(x, y), ficnn(y))


def test_picnn_equals_a_feedforward_net_with_inner_product_last_layer():
    """Proposition 2, second half: phi(x)^T y with phi a k-layer feedforward net."""
    torch.manual_seed(1)
    hidden = [7, 6]
    ff = [torch.nn.Linear(3, 7), torch.nn.Linear(7, 6), torch.nn.Linear(6, 4)]
    picnn = icnn.PICNN(x_dim=3, y_dim=4, hidden=hidden, constraint="project")
    with torch.no_grad():
        for mine, theirs in zip(picnn.x_layers, ff[:2], strict=True):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        for i, u_map in enumerate(picnn.u_maps):
            u_map.weight.zero_()
            u_map.bias.zero_()
            picnn.y_layers[i].weight.zero_()
        last = len(hidden)
        y_gate_w = picnn.u_maps[last].weight.split(picnn.split_sizes[last])[-2]
        y_gate_b = picnn.u_maps[last].bias.split(picnn.split_sizes[last])[-2]
        y_gate_w.copy_(ff[2].weight)  # W^(yu)_{k-1} u + b^(y) = phi(x)
        y_gate_b.copy_(ff[2].bias)
        picnn.y_layers[last].weight.fill_(1.0)  # W^(y)_{k-1} = 1^T
        for layer in picnn.z_layers:
            layer.weight.zero_()
    x, y = torch.randn(8, 3), torch.randn(8, 4)
    phi = ff[2](F.relu(ff[1](F.relu(ff[0](x)))))
    torch.testing.assert_close(picnn(x, y), (phi * y).sum(-1))


@pytest.mark.parametrize("constraint", ["softplus", "exp", "project"])
def test_gradcheck_ficnn_and_picnn_in_float64(constraint):
    ficnn = icnn.FICNN(3, [4, 4], activation="softplus", constraint=constraint).double()
    picnn = icnn.PICNN(2, 3, [4, 4], activation="softplus", constraint=constraint).double()
    y = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ficnn, (y,))
    assert torch.autograd.gradcheck(picnn, (x, y))


@pytest.mark.parametrize(
    "bad_y, message",
    [
        (torch.randn(4, 5), r"expected y of shape \(batch, 6\), got \(4, 5\)"),
        (torch.randn(6), r"expected y of shape \(batch, 6\), got \(6,\)"),
        (torch.randn(4, 6, dtype=torch.float64), "dtype torch.float32"),
        (torch.ones(4, 6, dtype=torch.int64), "floating-point"),
        (torch.full((4, 6), float("nan")), "finite"),
        (torch.full((4, 6), float("inf")), "finite"),
        ([[0.0] * 6], "torch.Tensor"),
    ],
)
def test_bad_y_gets_a_clear_error(bad_y, message):
    with pytest.raises(ValueError, match=message):
        icnn.FICNN(6, [4])(bad_y)


def test_picnn_batch_mismatch_and_bad_x_get_clear_errors():
    model = icnn.PICNN(3, 2, [4])
    with pytest.raises(ValueError, match="batch size 4"):
        model(torch.randn(5, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, 3\)"):
        model(torch.randn(4, 2), torch.randn(4, 2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"y_dim": 0}, "y_dim"),
        ({"y_dim": 3, "hidden": [4, -1]}, "hidden"),
        ({"y_dim": 3, "activation": "sigmoid"}, "unsupported activation"),
        ({"y_dim": 3, "constraint": "clip"}, "constraint"),
        ({"y_dim": 3, "strong_convexity": -1.0}, "strong_convexity"),
        ({"y_dim": 3, "init": "xavier"}, "init"),
    ],
)
def test_bad_constructor_arguments_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        icnn.FICNN(**kwargs)


def test_picnn_x_hidden_must_match_depth():
    with pytest.raises(ValueError, match="one width per y-path hidden layer"):
        icnn.PICNN(2, 3, hidden=[4, 4], x_hidden=[4])


def test_first_layer_may_use_a_convex_non_monotone_activation():
    model = icnn.FICNN(2, [8, 8], first_activation="abs").double()
    assert icnn.check_convexity(model, generator=torch.Generator().manual_seed(0)).ok


def test_default_constraint_keeps_weights_non_negative_after_plain_training_steps():
    model = icnn.PICNN(2, 3, [8, 8])
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    for _ in range(20):
        x, y = torch.randn(16, 2), torch.randn(16, 3)
        loss = (model(x, y) + 100 * torch.sin(5 * y).sum(1)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(bool((layer.weight >= 0).all()) for _, layer in model.constrained_layers())


def test_project_constraint_needs_project_and_then_is_convex():
    model = icnn.FICNN(3, [8, 8], constraint="project")
    with torch.no_grad():
        model.z_layers[0].weight.sub_(5.0)
    assert not icnn.check_convexity(model).structural_ok
    model.project_()
    report = icnn.check_convexity(model)
    assert report.ok, str(report)


def test_check_convexity_refuses_contexts_that_do_not_match_the_pairs():
    model = icnn.PICNN(x_dim=3, y_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match=r"expected x of shape \(16, 3\).*got \(5, 3\)"):
        icnn.check_convexity(model, torch.randn(5, 3), n_pairs=16)
    with pytest.raises(ValueError, match="expected y_points"):
        icnn.check_convexity(model, torch.randn(4, 3), y_points=(torch.randn(4, 2), torch.randn(4, 3)))

import pytest
import torch

from icnn.nn.activations import ACTIVATIONS, ConvexActivation, make_activation


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_registered_activation_is_convex_on_a_grid(name):
    act = ConvexActivation(name)
    t = torch.linspace(-5, 5, 2001, dtype=torch.float64)
    g = act(t)
    second_difference = g[:-2] - 2 * g[1:-1] + g[2:]
    assert (second_difference >= -1e-12).all()
    if act.nondecreasing:
        assert (g[1:] - g[:-1] >= -1e-12).all()


@pytest.mark.parametrize("name", [n for n, s in ACTIVATIONS.items() if s.pieces is not None])
def test_pieces_reproduce_piecewise_linear_activations(name):
    act = ConvexActivation(name)
    t = torch.linspace(-3, 3, 101, dtype=torch.float64)
    pieces = torch.tensor(act.pieces(), dtype=torch.float64)
    from_pieces = (pieces[:, :1] * t + pieces[:, 1:]).max(dim=0).values
    torch.testing.assert_close(from_pieces, act(t))


def test_unknown_activation_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unsupported activation 'tanh'.*relu"):
        make_activation("tanh")


@pytest.mark.parametrize(
    "name, params",
    [("leaky_relu", {"negative_slope": -0.1}), ("leaky_relu", {"negative_slope": 1.5}),
     ("elu", {"alpha": 2.0}), ("softplus", {"beta": 0.0})],
)
def test_parameters_that_break_convexity_are_refused(name, params):
    with pytest.raises(ValueError):
        make_activation({"name": name, **params})


def test_non_monotone_activation_only_allowed_in_first_layer():
    assert make_activation("abs", first_layer=True).name == "abs"
    with pytest.raises(ValueError, match="only in the first layer"):
        make_activation("abs")


def test_activation_config_round_trips():
    act = make_activation({"name": "leaky_relu", "negative_slope": 0.2})
    assert make_activation(act.to_config()).params == {"negative_slope": 0.2}

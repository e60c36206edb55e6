"""Hand-written backward passes of conditioned energies equal autograd's gradient to the bit.

Solvers take ``grad_y f`` from :meth:`icnn.nn.conditioned.ConditionedEnergy.value_and_grad`; for
the dense ICNNs (and the wrappers the RL agent and the conjugate use) it runs a hand-written
backward pass. Every iterate, and so every recorded result, stays the same only if that pass is
autograd's to the last bit: checked here with ``torch.equal`` on random architectures.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import icnn
from icnn.nn.activations import ACTIVATIONS, ConvexActivation
from icnn.nn.conditioned import ConditionedEnergy, hand_written_gradients, linear_input_grad
from icnn.potentials.tilted_energy import TiltedEnergy
from icnn.solvers.conditioning import conditioned_energy
from icnn.tasks.rl.entropy import EntropyRegularizedEnergy

WITH_BACKWARD = sorted(name for name, spec in ACTIVATIONS.items() if spec.backward is not None)


def autograd(energy, y: torch.Tensor, index: torch.Tensor | None = None):
    """The reference: autograd's value and gradient of the energy's sum."""
    with torch.enable_grad():
        leaf = y.detach().requires_grad_(True)
        value = energy(leaf, index)
        (grad,) = torch.autograd.grad(value.sum(), leaf)
    return value.detach(), grad


def assert_bitwise(energy: ConditionedEnergy, y: torch.Tensor, index: torch.Tensor | None = None):
    assert energy.hand_written
    value, grad = energy.value_and_grad(y, index)
    ref_value, ref_grad = autograd(energy, y, index)
    assert torch.equal(value, ref_value)
    assert torch.equal(grad, ref_grad), (grad - ref_grad).abs().max()
    assert not value.requires_grad and not grad.requires_grad


architectures = st.fixed_dictionaries({
    "kind": st.sampled_from(["ficnn", "picnn"]),
    "hidden": st.lists(st.integers(1, 24), max_size=3).map(tuple),
    "activation": st.sampled_from(["relu", "softplus", "leaky_relu", "elu"]),
    "mu": st.sampled_from([0.0, 0.01, 0.3]),
    "y_dim": st.integers(1, 5),
    "batch": st.integers(1, 6),
    "constraint": st.sampled_from(["softplus", "project"]),
    "dtype": st.sampled_from([torch.float32, torch.float64]),
    "subset": st.booleans(),
    "seed": st.integers(0, 2**16),
})


@given(architectures)
def test_hand_written_gradient_is_autograds_to_the_bit(arch):
    torch.manual_seed(arch["seed"])
    dtype, y_dim, batch = arch["dtype"], arch["y_dim"], arch["batch"]
    common = dict(hidden=arch["hidden"], activation=arch["activation"], dtype=dtype,
                  strong_convexity=arch["mu"], constraint=arch["constraint"])
    if arch["kind"] == "picnn":
        model = icnn.PICNN(3, y_dim, **common)
        energy = model.condition(torch.randn(batch, 3, dtype=dtype))
    else:
        model = icnn.FICNN(y_dim, **common)
        energy = model.condition()
    y = torch.randn(batch, y_dim, dtype=dtype)
    assert_bitwise(energy, y)
    if arch["subset"] and arch["kind"] == "picnn":  # rows picked by index, as solvers do
        index = torch.randperm(batch)[: max(1, batch // 2)]
        assert_bitwise(energy, y[index], index)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rl_and_conjugate_wrappers_are_autograds_to_the_bit(dtype):
    torch.manual_seed(0)
    picnn = icnn.PICNN(4, 2, hidden=(16, 8), activation="softplus", strong_convexity=0.01,
                       constraint="project", dtype=dtype)
    ficnn = icnn.FICNN(2, hidden=(8,), dtype=dtype)
    y = torch.rand(5, 2, dtype=dtype) * 1.8 - 0.9
    entropy = conditioned_energy(EntropyRegularizedEnergy(picnn, 1.0),
                                 torch.randn(5, 4, dtype=dtype))
    for wrapper, x in ((TiltedEnergy(picnn), torch.randn(5, 4, dtype=dtype)),
                       (TiltedEnergy(ficnn), None)):
        tilted = conditioned_energy(wrapper, wrapper.pack(torch.randn(5, 2, dtype=dtype), x))
        for energy in (entropy, tilted):
            assert_bitwise(energy, y)
            assert_bitwise(energy, y[[4]], torch.tensor([4]))  # one row: a (1, n) input


def test_models_without_a_declared_backward_fall_back_to_autograd():
    torch.manual_seed(0)
    quadratic = icnn.PICNN(3, 2, hidden=(8,), quadratic_rank=1).condition(torch.randn(4, 3))
    first_abs = icnn.FICNN(2, hidden=(8,), first_activation="abs").condition()
    for energy, shape in ((quadratic, (4, 2)), (first_abs, (4, 2))):
        assert isinstance(energy, ConditionedEnergy) and not energy.hand_written
        y = torch.randn(*shape)
        value, grad = energy.value_and_grad(y)
        ref_value, ref_grad = autograd(energy, y)
        assert torch.equal(value, ref_value) and torch.equal(grad, ref_grad)


def test_start_is_added_to_the_gradient():
    torch.manual_seed(0)
    energy = icnn.FICNN(3, hidden=(5,), strong_convexity=0.1).condition()
    y, start = torch.randn(2, 3), torch.randn(2, 3)
    _, grad = energy.value_and_grad(y)
    _, shifted = energy.value_and_grad(y, start=start)
    torch.testing.assert_close(shifted, start + grad)


@pytest.mark.parametrize("name", WITH_BACKWARD)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_declared_activation_backward_is_autograds(name, dtype):
    activation = ConvexActivation(name)
    t = torch.cat([torch.linspace(-30, 30, 101, dtype=dtype), torch.zeros(1, dtype=dtype)])
    upstream = torch.rand_like(t)
    with torch.enable_grad():
        leaf = t.clone().requires_grad_(True)
        out = activation(leaf)
        (reference,) = torch.autograd.grad(out, leaf, upstream)
    assert torch.equal(activation.backward(upstream, t, out.detach()), reference)


def test_an_activation_without_backward_says_which_have_one():
    with pytest.raises(ValueError, match="declares no backward; expected one of"):
        ConvexActivation("square").backward(torch.ones(2), torch.ones(2), torch.ones(2))


def test_linear_input_grad_copies_autograds_layout_choice():
    torch.manual_seed(0)
    weight = torch.randn(200, 1)
    for inp in (torch.randn(1, 1), torch.randn(7, 1), torch.randn(1, 5)[:, :1]):
        w = weight[:, : inp.shape[1]]
        with torch.enable_grad():
            leaf = inp.clone().requires_grad_(True)
            out = torch.nn.functional.linear(leaf, w)
            upstream = torch.rand_like(out)
            (reference,) = torch.autograd.grad(out, leaf, upstream)
        assert torch.equal(linear_input_grad(upstream, w, inp), reference)


def test_solver_results_do_not_depend_on_the_gradient_path():
    """pgd and lbfgs on a PICNN: the same iterates with the hand-written pass and with autograd."""
    torch.manual_seed(0)
    model = icnn.PICNN(5, 3, hidden=(32, 32), activation="softplus", strong_convexity=0.01)
    x = torch.randn(6, 5)
    for method in ("pgd", "lbfgs"):
        solve = icnn.Argmin(model, domain=icnn.Box(-1.0, 1.0), method=method, max_iter=20)
        hand = solve(x)
        with hand_written_gradients(False):
            auto = solve(x)
        assert torch.equal(hand.y, auto.y) and torch.equal(hand.value, auto.value)
        assert torch.equal(hand.converged, auto.converged)
    energy = model.condition(x)
    with hand_written_gradients(False):
        assert energy.hand_written  # it has one; the block only bypasses it

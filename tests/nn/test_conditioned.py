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


ACTIVATION_CHOICES = ["relu", "softplus", {"name": "softplus", "beta": 3.0}, "leaky_relu",
                      {"name": "leaky_relu", "negative_slope": 0.3}, "elu",
                      {"name": "elu", "alpha": 0.4}, "identity"]

architectures = st.fixed_dictionaries({
    "kind": st.sampled_from(["ficnn", "picnn"]),
    "hidden": st.lists(st.integers(1, 24), max_size=3).map(tuple),
    "activation": st.sampled_from(ACTIVATION_CHOICES),
    "first": st.sampled_from([None, *ACTIVATION_CHOICES]),
    "x_wider": st.booleans(),
    "mu": st.sampled_from([0.0, 0.01, 0.3]),
    "y_dim": st.integers(1, 5),
    "batch": st.integers(1, 6),
    "constraint": st.sampled_from(["softplus", "exp", "project"]),
    "dtype": st.sampled_from([torch.float32, torch.float64]),
    "layout": st.sampled_from(["contiguous", "transposed", "sliced"]),
    "subset": st.sampled_from([None, "half", "repeated"]),
    "seed": st.integers(0, 2**16),
})


def _laid_out(y: torch.Tensor, layout: str) -> torch.Tensor:
    """``y`` with the same values in another memory layout."""
    if layout == "transposed":
        return y.t().contiguous().t()
    if layout == "sliced":
        return torch.cat([y, y], dim=1)[:, : y.shape[1]]
    return y


@pytest.mark.property
@given(architectures)
def test_hand_written_gradient_is_autograds_to_the_bit(arch):
    torch.manual_seed(arch["seed"])
    dtype, y_dim, batch = arch["dtype"], arch["y_dim"], arch["batch"]
    common = dict(hidden=arch["hidden"], activation=arch["activation"], dtype=dtype,
                  first_activation=arch["first"], strong_convexity=arch["mu"],
                  constraint=arch["constraint"])
    if arch["kind"] == "picnn":
        x_hidden = tuple(w + 3 for w in arch["hidden"]) if arch["x_wider"] else None
        model = icnn.PICNN(3, y_dim, x_hidden=x_hidden, **common)
        energy = model.condition(torch.randn(batch, 3, dtype=dtype))
    else:
        model = icnn.FICNN(y_dim, **common)
        energy = model.condition()
    y = _laid_out(torch.randn(batch, y_dim, dtype=dtype), arch["layout"])
    assert_bitwise(energy, y)
    if arch["subset"] and arch["kind"] == "picnn":  # rows picked by index, as solvers do
        index = torch.randperm(batch)[: max(1, batch // 2)]
        if arch["subset"] == "repeated":
            index = torch.cat([index, index[:1]])
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


def test_subclass_with_its_own_quadratic_term_or_activation_falls_back_to_autograd():
    """Review of issue 16: the hand-written pass is written for the stock parts only."""

    class Centred(icnn.PICNN):
        def quadratic_term(self, y):
            return 0.5 * self.strong_convexity * (y - 0.5).flatten(1).square().sum(dim=1)

    class Doubled(ConvexActivation):
        def forward(self, t):
            return super().forward(2.0 * t)

    torch.manual_seed(0)
    centred = Centred(3, 2, hidden=(8,), strong_convexity=1.0)
    doubled = icnn.FICNN(2, hidden=(8,))
    doubled.activations[0] = Doubled("relu")
    y = torch.randn(4, 2)
    for energy in (centred.condition(torch.randn(4, 3)), doubled.condition()):
        assert not energy.hand_written
        value, grad = energy.value_and_grad(y)
        ref_value, ref_grad = autograd(energy, y)
        assert torch.equal(value, ref_value) and torch.equal(grad, ref_grad)
    x = torch.randn(4, 3)
    result = icnn.argmin(centred, x, method="lbfgs", tol=1e-6, max_iter=200)
    with torch.enable_grad():  # the true gradient vanishes at the answer
        leaf = result.y.clone().requires_grad_(True)
        (true_grad,) = torch.autograd.grad(centred(x, leaf).sum(), leaf)
    assert float(true_grad.norm(dim=1).max()) < 1e-2


def test_a_term_constant_in_y_is_solved():
    from icnn.nn.energy import SMOOTH, EnergyTraits
    from icnn.tasks.rl.energy_plus_term import EnergyPlusTerm

    class Offset(EnergyPlusTerm):
        def __init__(self, energy):
            super().__init__(energy, EnergyTraits(convex=True, curvature=SMOOTH))

        def term_given(self, x):
            offset = x.square().sum(-1)
            return lambda y, index=None: offset if index is None else offset[index]

    torch.manual_seed(0)
    picnn = icnn.PICNN(3, 2, hidden=(8,))
    x = torch.randn(4, 3)
    with_offset = icnn.argmin(Offset(picnn), x, domain=icnn.Box(-1.0, 1.0), method="pgd",
                              max_iter=10)
    plain = icnn.argmin(picnn, x, domain=icnn.Box(-1.0, 1.0), method="pgd", max_iter=10)
    assert torch.equal(with_offset.y, plain.y)
    torch.testing.assert_close(with_offset.value, plain.value + x.square().sum(-1))


def test_nested_wrappers_over_a_term_using_y_twice_are_autograds_to_the_bit():
    from icnn.nn.energy import SMOOTH, EnergyTraits
    from icnn.tasks.rl.energy_plus_term import EnergyPlusTerm

    class TwoUses(EnergyPlusTerm):
        def __init__(self, energy):
            super().__init__(energy, EnergyTraits(convex=True, curvature=SMOOTH))

        def term_given(self, x):
            return lambda y, index=None: 0.37 * y.square().sum(-1) + torch.exp(0.3 * y).sum(-1)

    torch.manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        picnn = icnn.PICNN(4, 3, hidden=(8,), activation="softplus", dtype=dtype)
        x = torch.randn(50, 4, dtype=dtype)
        y = torch.rand(50, 3, dtype=dtype) * 1.8 - 0.9
        tilt = TiltedEnergy(TwoUses(picnn))
        for energy in (conditioned_energy(TwoUses(picnn), x),
                       conditioned_energy(EntropyRegularizedEnergy(TwoUses(picnn), 0.7), x),
                       conditioned_energy(tilt, tilt.pack(torch.randn(50, 3, dtype=dtype), x))):
            assert_bitwise(energy, y)


def test_huge_y_with_strong_convexity_overflows_as_autograd_does():
    energy = icnn.FICNN(2, hidden=(4,), strong_convexity=0.1).condition()
    y = torch.tensor([[2e38, -1.0]])
    _, grad = energy.value_and_grad(y)
    _, reference = autograd(energy, y)
    assert torch.equal(torch.isinf(grad), torch.isinf(reference))


def test_unbatched_or_broadcast_y_is_refused():
    energy = icnn.PICNN(3, 2, hidden=(4,)).condition(torch.randn(5, 3))
    with pytest.raises(ValueError, match="expected y of shape"):
        energy.value_and_grad(torch.randn(2))
    with hand_written_gradients(False):
        for flag in (True, False):
            with hand_written_gradients(flag), pytest.raises(ValueError, match="broadcast"):
                energy.value_and_grad(torch.randn(1, 2))


def test_a_layer_with_its_own_nonnegativity_check_is_asked():
    from icnn.nn.layers import NonNegativeLinear

    class Strict(NonNegativeLinear):
        def nonnegativity_issue(self):
            return "is never trusted"

    model = icnn.FICNN(2, hidden=(4, 4))
    model.z_layers[0] = Strict(4, 4)
    traits = icnn.energy_traits(model)
    assert not traits.convex and any("never trusted" in issue for issue in traits.issues)


def test_wrappers_do_not_condition_a_subclass_that_overrides_only_forward():
    """Review of issue 16: the RL and multi-label wrappers asked the inner model's inherited
    ``condition``, which solves the parent's energy, not the subclass's ``forward``."""
    from icnn.tasks.multilabel.entropy_weight import EntropyWeighted

    class Shifted(icnn.PICNN):
        def forward(self, x, y):
            return super().forward(x, y - 0.25)

    torch.manual_seed(0)
    model = Shifted(3, 2, hidden=(8,), activation="softplus", strong_convexity=0.5)
    x, y = torch.randn(4, 3), torch.rand(4, 2)
    for wrapper, expected in ((EntropyWeighted(model, 2.0), model(x, y) / 2.0),
                              (EntropyRegularizedEnergy(model, 1.0),
                               model(x, y) + EntropyRegularizedEnergy(model, 1.0).barrier(y))):
        with torch.no_grad():
            energy = conditioned_energy(wrapper, x)
            torch.testing.assert_close(energy(y, None), expected.detach())


def test_a_term_torch_func_cannot_transform_falls_back_to_autograd():
    """An old-style autograd.Function (no setup_context) in a wrapper's term: torch.func refuses
    it, the wrapper differentiates it with autograd instead (the same gradient)."""
    from icnn.nn.energy import SMOOTH, EnergyTraits
    from icnn.tasks.rl.energy_plus_term import EnergyPlusTerm

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, y):
            ctx.save_for_backward(y)
            return y.abs().pow(3)

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * 3 * y * y.abs()

    class CubeTerm(EnergyPlusTerm):
        def __init__(self, energy):
            super().__init__(energy, EnergyTraits(convex=True, curvature=SMOOTH))

        def term_given(self, x):
            return lambda y, index=None: Cube.apply(y).sum(-1)

    torch.manual_seed(1)
    picnn = icnn.PICNN(4, 3, hidden=(8,), activation="softplus")
    x, y = torch.randn(6, 4), torch.rand(6, 3) * 1.8 - 0.9
    energy = conditioned_energy(CubeTerm(picnn), x)
    assert_bitwise(energy, y)
    result = icnn.argmin(CubeTerm(picnn), x, domain=icnn.Box(-1.0, 1.0), method="pgd",
                         max_iter=50)
    assert torch.isfinite(result.value).all() and (result.lower_bound <= result.value).all()

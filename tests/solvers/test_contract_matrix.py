"""The contract of ``icnn.argmin``, cell by cell: every combination is right or refused clearly.

Axes: method x differentiable x model (dense FICNN, PICNN, conv PICNN and each energy wrapper)
x activation family (piecewise-linear ReLU, smooth softplus) x domain (``Box(0, 1)``,
``Box(-1, 2)``, partly fixed, unbounded with ``mu > 0``) x dtype. A cell either raises the error
:func:`expected_error` names, or returns an answer that is checked against independent
references:

- feasibility, and ``value`` equal to the model evaluated at ``y``;
- certificate honesty: a reported ``lower_bound`` never exceeds the reference optimum (HiGHS's
  LP for dense piecewise-linear models, a tight solve by another method otherwise), and a
  ``converged`` example is within its tolerance of that optimum;
- gradients (float64): the directional derivative of ``<w, y>`` in a random direction of every
  parameter and of ``x`` against central finite differences of the reference argmin
  (``implicit``) or of the unrolled map itself (``unroll``).

``python -m pytest tests/solvers/test_contract_matrix.py -q -rA`` prints the cells; the
matrix summary in the issue note comes from :func:`summary`.
"""

from __future__ import annotations

import copy
import functools
import itertools

import pytest
import torch

import icnn
from icnn import Box, argmin
from icnn.learn.margin import LossAugmentedEnergy
from icnn.tasks.rl.entropy import EntropyRegularizedEnergy
from icnn.tasks.rl.quadratic_head import QuadraticHeadEnergy

MODELS = ("ficnn", "picnn", "conv", "loss_augmented", "entropy_barrier", "quadratic_head")
ACTIVATIONS = ("relu", "softplus")
DOMAINS = ("box01", "box_m1_2", "fixed", "unbounded_mu")
METHODS = ("pgd", "lbfgs", "bundle", "bundle_entropy", "exact", "auto")
DIFFERENTIABLE = (None, "unroll", "implicit")
DTYPES = (torch.float64, torch.float32)
MU = 0.5
BATCH = 2
UNROLL_STEPS = 6


def expected_error(model: str, activation: str, domain: str, method: str,
                   differentiable: str | None) -> str | None:
    """The error (a regex of its message) a cell must raise, or None when it must work."""
    if domain == "unbounded_mu" and model == "entropy_barrier":
        return "barrier .* lives on a box"  # its declared strong convexity holds on the box
    if differentiable == "unroll":
        return None if method in ("auto", "pgd") else "method must be 'auto' or 'pgd'"
    if method == "exact":
        if model not in ("ficnn", "picnn"):
            return "affine_layers"
        if activation != "relu":
            return "piecewise-linear"
    if method in ("bundle", "bundle_entropy") and domain == "unbounded_mu":
        return "needs a bounded domain"
    if differentiable == "implicit" and activation == "relu" and model in (
            "entropy_barrier", "quadratic_head"):
        return "piecewise-linear kinks"  # a ReLU network plus a smooth term: no derivative rule
    return None


def cells() -> list[tuple]:
    out = []
    for model, act, domain, method, diff, dtype in itertools.product(
            MODELS, ACTIVATIONS, DOMAINS, METHODS, DIFFERENTIABLE, DTYPES):
        if dtype == torch.float32 and diff is not None:
            continue  # gradients are checked by finite differences, in float64
        out.append((model, act, domain, method, diff, dtype))
    return out


@functools.cache
def build(model: str, activation: str, domain: str, dtype: torch.dtype):
    """``(energy, x, Box or None, fixed or None)`` for one cell, seeded."""
    torch.manual_seed(11)
    mu = MU if domain == "unbounded_mu" else 0.0
    common = {"activation": activation, "strong_convexity": mu}
    if model == "ficnn":
        energy, x = icnn.FICNN(3, hidden=(5, 5), **common), None
    elif model == "conv":
        energy = icnn.ConvPICNN((1, 4, 4), (1, 4, 4), channels=(2,), kernel_sizes=(3,),
                                strides=(1,), dense=(4,), **common)
        x = torch.rand(BATCH, 1, 4, 4)
    else:
        picnn = icnn.PICNN(2, 3, hidden=(5, 5), **common)
        x = torch.randn(BATCH, 2)
        if model == "picnn":
            energy = picnn
        elif model == "loss_augmented":
            energy = LossAugmentedEnergy(picnn, margin=1.0)
            x = energy.context(x, torch.randint(0, 2, (BATCH, 3)).float())
        elif model == "entropy_barrier":
            energy = EntropyRegularizedEnergy(picnn, weight=0.3)
        else:
            energy = QuadraticHeadEnergy(picnn, obs_dim=2, act_dim=3)
    energy = energy.to(dtype)
    x = None if x is None else x.to(dtype)
    box = {"box01": Box(0.0, 1.0), "box_m1_2": Box(-1.0, 2.0), "fixed": Box(0.0, 1.0),
           "unbounded_mu": None}[domain]
    fixed = None
    if domain == "fixed":
        shape = energy.convex_input_shape
        mask = torch.zeros(shape, dtype=torch.bool).flatten()
        mask[0] = True
        values = torch.full(shape, 0.3, dtype=dtype)
        fixed = (mask.reshape(shape), values)
    return energy, x, box, fixed


def tolerance(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float64 else 1e-3


def call(energy, x, box, fixed, method, differentiable, dtype, **extra):
    tol = tolerance(dtype)
    max_iter = UNROLL_STEPS if differentiable == "unroll" else (
        300 if method in ("pgd", "lbfgs") else None)
    if differentiable == "implicit":  # a gradient at y* is as accurate as y*
        tol, max_iter = 1e-11, (2000 if method in ("pgd", "lbfgs") else 300)
    return argmin(energy, x, domain=box, fixed=fixed, method=method, tol=tol,
                  max_iter=max_iter, differentiable=differentiable, **extra)


class WithEntropy(torch.nn.Module):
    """``f(x, y) + sum_j u_j log u_j + (1 - u_j) log(1 - u_j)``, ``u = (y - lo) / (hi - lo)``:
    the bundle entropy method's objective, written independently of the library's."""

    def __init__(self, energy, box: Box, fixed) -> None:
        super().__init__()
        self.energy, self.lo, self.hi = energy, float(box.lo), float(box.hi)
        self.free = None if fixed is None else ~fixed[0].flatten()
        self.convex_input_shape, self.context_shape = energy.convex_input_shape, energy.context_shape

    def energy_traits(self) -> icnn.EnergyTraits:
        return self.energy.energy_traits().plus(icnn.EnergyTraits(convex=True, curvature="barrier"))

    def forward(self, *args):
        y = args[-1]
        u = ((y - self.lo) / (self.hi - self.lo)).flatten(1)
        if self.free is not None:  # fixed coordinates carry no entropy
            u = u[:, self.free]
        return self.energy(*args) + (u * u.log() + (1 - u) * (1 - u).log()).sum(1)


def newton_polish(objective, x, y, fixed, steps: int = 6):
    """A few Newton steps on ``objective`` from ``y`` over the free coordinates (tiny problems:
    the Hessian of the batch sum is formed densely). Returns ``(y, objective(y))``."""
    shape = y.shape
    free = torch.ones(shape, dtype=torch.bool) if fixed is None else ~fixed[0].expand(shape)
    free = free.flatten()

    def total(flat):
        y_ = flat.reshape(shape)
        return (objective(y_) if x is None else objective(x, y_)).sum()

    flat = y.detach().flatten().clone()
    for _ in range(steps):
        grad = torch.autograd.functional.jacobian(total, flat)[free]
        hess = torch.autograd.functional.hessian(total, flat)[free][:, free]
        flat[free] = flat[free] - torch.linalg.solve(hess, grad)
    y = flat.reshape(shape)
    with torch.no_grad():
        return y, objective(y) if x is None else objective(x, y)


def reference(energy, x, box, fixed, entropy: bool):
    """The best of tight float64 solves by methods independent of the cell's where possible:
    HiGHS for dense piecewise-linear energies, else the better of a tight bundle (bounded
    domains) and a tight L-BFGS; for ``entropy`` (the bundle-entropy objective ``f - H``) the
    bundle entropy method at 1e-12. Returns ``(y, objective)`` in float64."""
    energy = copy.deepcopy(energy).double()
    x = None if x is None else x.double()
    if fixed is not None:
        fixed = (fixed[0], fixed[1].double())
    traits = energy.energy_traits()
    if entropy:
        result = argmin(energy, x, domain=box, fixed=fixed, method="bundle_entropy", tol=1e-12,
                        max_iter=300)
        if traits.curvature == "piecewise_linear":
            return result.y, result.objective
        # for a smooth f the method's y (its last subproblem's solution) is within ~1e-6 of
        # argmin f - H: polish it by L-BFGS on f - H written out here
        return newton_polish(WithEntropy(energy, box, fixed), x, result.y, fixed)
    if traits.curvature == "piecewise_linear" and hasattr(energy, "affine_layers"):
        result = argmin(energy, x, domain=box, fixed=fixed, method="exact")
        return result.y, result.value
    candidates = [argmin(energy, x, domain=box, fixed=fixed, method="lbfgs", tol=1e-12,
                         max_iter=500)]
    if box is not None:
        candidates.append(argmin(energy, x, domain=box, fixed=fixed, method="bundle", tol=1e-12,
                                 max_iter=300))
    values = torch.stack([c.value for c in candidates])
    best = values.argmin(0)
    ys = torch.stack([c.y for c in candidates])
    return ys[best, torch.arange(ys.shape[1])], values.min(0).values


@functools.cache
def base_reference(model: str, activation: str, domain: str, dtype: torch.dtype, entropy: bool):
    energy, x, box, fixed = build(model, activation, domain, dtype)
    return reference(energy, x, box, fixed, entropy)


def feasible(y, box, fixed):
    if box is not None:
        assert bool((y >= box.lo - 1e-6).all()) and bool((y <= box.hi + 1e-6).all())
    if fixed is not None:
        mask, values = fixed
        assert torch.equal(y[:, mask], values[mask].expand(y.shape[0], -1))


def energy_at(energy, x, y):
    with torch.no_grad():
        return energy(y) if x is None else energy(x, y)


@pytest.mark.parametrize("model, activation, domain, method, differentiable, dtype", cells(),
                         ids=lambda v: str(v).replace("torch.", ""))
def test_cell(model, activation, domain, method, differentiable, dtype):
    energy, x, box, fixed = build(model, activation, domain, dtype)
    error = expected_error(model, activation, domain, method, differentiable)
    if error is not None:
        with pytest.raises(ValueError, match=error):
            call(energy, x, box, fixed, method, differentiable, dtype)
        return
    result = call(energy, x, box, fixed, method, differentiable, dtype)
    y = result.y.detach()
    feasible(y, box, fixed)
    atol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(result.value, energy_at(energy, x, y), atol=atol, rtol=1e-5)
    entropy = result.method == "bundle_entropy"
    reached = (result.objective if entropy else result.value).double()
    # the best feasible value known: no valid lower bound may exceed it
    _, ref_value = base_reference(model, activation, domain, dtype, entropy)
    best_known = torch.minimum(ref_value.double(), reached)
    slack = (1e-7 if dtype == torch.float64 else 1e-4) * best_known.abs().clamp_min(1.0)
    if result.lower_bound is not None:
        assert bool((result.lower_bound.double() <= best_known + slack).all()), \
            f"false certificate: lower bound {result.lower_bound} above a feasible {best_known}"
    if differentiable != "unroll":
        done = result.converged
        excess = reached - best_known - tolerance(dtype) * best_known.abs().clamp_min(1.0) - slack
        assert bool((excess[done] <= 0).all()), f"converged but {excess} above a feasible value"
        if result.method == "exact":
            assert bool(done.all()), f"exact did not certify: gap {result.gap}"
    if differentiable is not None:
        check_directional_derivative(energy, x, box, fixed, method, differentiable, entropy)


def check_directional_derivative(energy, x, box, fixed, method, differentiable, entropy):
    """d/dt <w, y(theta + t d, x + t e)> at 0 by autograd against central differences."""
    gen = torch.Generator().manual_seed(3)
    params = [p for p in energy.parameters() if p.requires_grad]
    directions = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    x_dir = None if x is None else torch.randn(x.shape, generator=gen, dtype=x.dtype)
    x_leaf = None if x is None else x.clone().requires_grad_(True)
    rows = BATCH if x is not None else 1
    w = torch.randn((rows, *energy.convex_input_shape), generator=gen, dtype=torch.float64)

    def along_gradient(method: str) -> float | None:
        """The directional derivative, or None where the derivative is refused at run time."""
        try:
            y = call(energy, x_leaf, box, fixed, method, differentiable, torch.float64).y
            grads = torch.autograd.grad((y * w).sum(), params + (
                [x_leaf] if x is not None else []), allow_unused=True)
        except ValueError as error:
            # the piecewise-linear derivative refuses when it cannot find the active pieces of a
            # model without an exact LP to polish with: a documented refusal that must name
            # what works, not a wrong answer (6-7 conv/loss-augmented ReLU cells)
            message = str(error)
            if "could not identify the pieces" not in message or hasattr(energy, "affine_layers"):
                raise
            assert "method='bundle_entropy'" in message and "differentiable='unroll'" in message
            return None
        return sum(float((g * d).sum()) for g, d in zip(grads, directions + [x_dir],
                                                          strict=False)
                   if g is not None and d is not None)

    def solution_at(t: float):
        with torch.no_grad():
            for p, d in zip(params, directions, strict=True):
                p.add_(t * d)
        try:
            x_t = None if x is None else x + t * x_dir
            if differentiable == "unroll":
                with torch.no_grad():
                    return call(energy, x_t, box, fixed, method, "unroll", torch.float64).y
            return reference(energy, x_t, box, fixed, entropy)[0]
        finally:
            with torch.no_grad():
                for p, d in zip(params, directions, strict=True):
                    p.sub_(t * d)

    analytic = along_gradient(method)
    if analytic is None:
        return
    traits = energy.energy_traits()
    if differentiable == "implicit" and traits.curvature == "piecewise_linear" and \
            not hasattr(energy, "affine_layers") and not entropy:
        # no exact reference (HiGHS) for this energy and a tight bundle solve is not accurate
        # enough for finite differences of y*: compare with the derivative at another method's
        numeric = along_gradient("bundle" if box is not None else "pgd")
        if numeric is None:  # the other method's derivative was refused: nothing to compare
            return
        assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-6)
        return
    # two step sizes: a small one for exact references near a kink of y*(theta), a larger one
    # for references that are accurate to ~1e-9 only; the derivative must match one of them
    numerics = []
    for eps in (1e-6, 1e-4):
        numeric = float(((solution_at(eps) - solution_at(-eps)) * w).sum()) / (2 * eps)
        numerics.append(numeric)
        if analytic == pytest.approx(numeric, rel=2e-3, abs=1e-5):
            break
    else:
        raise AssertionError(f"{differentiable} gradient {analytic} vs finite differences "
                             f"{numerics} (steps 1e-6, 1e-4)")
    if abs(numeric) > 1e-4:
        assert analytic != 0.0, "a silent zero gradient"


def summary() -> dict[str, int]:
    """Counts of cells that must work and cells that must be refused (for the issue note)."""
    counts = {"works": 0, "refused": 0}
    for cell in cells():
        counts["refused" if expected_error(*cell[:5]) else "works"] += 1
    return counts

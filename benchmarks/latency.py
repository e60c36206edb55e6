"""Small-batch latency of ``icnn.argmin``, as ratios to the gradient evaluations it performed.

For each energy size and batch, every method (``pgd``, ``lbfgs``, ``bundle``,
``bundle_entropy``; ``exact`` at batch 1 only, as a reference) runs at fixed iteration counts
(``tol=0``: it stops earlier only where its stopping test passes at tolerance 0, e.g. at a
vertex or a zero projected gradient; ``iters`` says what ran) and at a fixed tolerance
(``tol=1e-4``, default ``max_iter``). The evaluations are COUNTED, not assumed:
:class:`icnn.solvers.problem.Problem`'s ``value_and_grad`` (forward + gradient) and ``value``
(forward only) are wrapped for a first, counted run; every method reads the energy through
them. Then, timed round-robin over all cases of one size and batch (median of ``--repeats``):

- ``ms``: one ``icnn.argmin`` call, validation and conditioning included;
- ``x evals``: ``ms`` over the cost of the evaluations counted,
  ``grads * t(forward+gradient) + values * t(forward)``, both units timed here on the same
  conditioned energy at the same batch (a call on a subset of the batch counts as a whole one,
  so this ratio errs low);
- ``own ms`` and ``x own``: the solvers' own forward+gradient (a hand-written backward pass,
  :meth:`icnn.nn.conditioned.ConditionedEnergy.value_and_grad`, autograd's gradient to the bit
  at about half its cost at batch 1) and ``ms`` over the evaluations counted at that cost: the
  overhead over what the solver itself evaluates (``x evals`` keeps autograd's unit, the one
  issue 16 set its goals in);
- ``x floor``: ``ms`` over a bare projected-gradient loop written inline in torch,
  ``y = clamp(y - step * grad, lo, hi)``, conditioning included, run for the same number of
  iterations as the method;
- ``hdl ms`` and ``hdl x``: the same solve by a reusable :class:`icnn.Argmin` handle built once
  (the repeated-solve form of control loops), and its ratio to the evaluations counted;
- ``ag ms``: the handle's solve with every gradient through autograd
  (:func:`icnn.nn.conditioned.hand_written_gradients` off): the same result to the bit, the
  cost before the hand-written backward passes;
- ``cmp ms`` and ``cmp x`` (with ``--compile BACKEND``, e.g. ``inductor``): a handle built with
  ``compile=BACKEND`` (pgd and lbfgs: their whole-batch iterations fused; the others: the energy),
  compiled before the timing, and its ratio to the evaluations counted (``-`` without
  ``--compile``). Compiled kernels round differently: the result agrees with eager to rounding;
- ``mdl ms``, ``hdl xm`` and ``cmp xm``: the unit issue 16 first measured in, one autograd
  forward+gradient of the whole model ``f(x, y)`` (its x-path included), and the handle's and
  the compiled handle's ``ms`` over ``grads`` of those (backtracking values not counted). The
  ``x evals`` unit is stricter: the y-path alone, every value counted too.

Sizes: the ICNN-Q energies of the RL tasks (PICNN, softplus action path, strong convexity 1e-2,
hidden 200-200; HalfCheetah x 17 -> y 6, Pendulum x 3 -> y 1, domain Box(-1, 1)) and the
multilabel energy of BibTeX (PICNN x 1836 -> y 159, ReLU, hidden 300-300, Box(0, 1)); untrained,
seeded weights (the fixed-iteration rows do not depend on the weights; the tolerance rows do).
``exact`` needs a piecewise-linear energy, so it runs on BibTeX only.

Run: ``python benchmarks/latency.py [--threads 1 2] [--repeats 15] [--quick]`` (``--quick``:
Pendulum and HalfCheetah, batch 1 and 8, 5 iterations, 3 repeats: seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from dataclasses import dataclass

import torch
from interleaved_timing import time_interleaved

import icnn
from icnn.nn.conditioned import hand_written_gradients
from icnn.solvers import Argmin, Box, argmin
from icnn.solvers.conditioning import conditioned_energy
from icnn.solvers.problem import Problem

METHODS = ("pgd", "lbfgs", "bundle", "bundle_entropy")
TOL = 1e-4


@dataclass(frozen=True)
class Size:
    x_dim: int
    y_dim: int
    hidden: tuple[int, ...]
    activation: str
    strong_convexity: float
    lo: float
    hi: float

    def model(self) -> icnn.PICNN:
        torch.manual_seed(0)
        model = icnn.PICNN(self.x_dim, self.y_dim, hidden=self.hidden, activation=self.activation,
                           strong_convexity=self.strong_convexity)
        for p in model.parameters():
            p.requires_grad_(False)
        return model.eval()

    def contexts(self, batch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(1)
        if self.x_dim > 100:  # BibTeX: sparse binary bag of words
            return (torch.rand(batch, self.x_dim, generator=g) < 0.03).float()
        return torch.randn(batch, self.x_dim, generator=g)


SIZES = {
    "pendulum": Size(3, 1, (200, 200), "softplus", 1e-2, -1.0, 1.0),
    "halfcheetah": Size(17, 6, (200, 200), "softplus", 1e-2, -1.0, 1.0),
    "bibtex": Size(1836, 159, (300, 300), "relu", 0.0, 0.0, 1.0),
    "tiny": Size(4, 3, (16, 16), "relu", 0.0, 0.0, 1.0),  # for the smoke test
}


@dataclass
class Count:
    grads: int = 0
    values: int = 0


@contextlib.contextmanager
def counting(count: Count):
    """Count every forward+gradient and every forward-only evaluation a solver makes."""
    value, value_and_grad = Problem.value, Problem.value_and_grad
    inside = [False]

    def counted_value(self, y, index=None):
        if not inside[0]:
            count.values += 1
        return value(self, y, index)

    def counted_value_and_grad(self, y, **kwargs):
        count.grads += 1
        inside[0] = True
        try:
            return value_and_grad(self, y, **kwargs)
        finally:
            inside[0] = False

    Problem.value, Problem.value_and_grad = counted_value, counted_value_and_grad
    try:
        yield count
    finally:
        Problem.value, Problem.value_and_grad = value, value_and_grad


def unit_steps(model, x, size: Size):
    """Units on the whole batch: autograd's forward+gradient, the solvers' own, a forward.

    The solvers' own is :meth:`icnn.nn.conditioned.ConditionedEnergy.value_and_grad` (a
    hand-written backward pass for these PICNNs, autograd's gradient to the bit).
    """
    with torch.no_grad():
        energy = conditioned_energy(model, x)
    y = torch.full((x.shape[0], size.y_dim), (size.lo + size.hi) / 2)

    def grad() -> None:
        with torch.enable_grad():
            yg = y.detach().requires_grad_(True)
            torch.autograd.grad(energy(yg, None).sum(), yg)

    def own() -> None:
        energy.value_and_grad(y, None)

    def value() -> None:
        with torch.no_grad():
            energy(y, None)

    return grad, own, value


def model_step(model, x, size: Size):
    """One autograd forward+gradient of the whole model ``f(x, y)``, the x-path included."""
    y = torch.full((x.shape[0], size.y_dim), (size.lo + size.hi) / 2)

    def run() -> None:
        with torch.enable_grad():
            yg = y.detach().requires_grad_(True)
            torch.autograd.grad(model(x, yg).sum(), yg)

    return run


def floor_step(model, x, size: Size, iterations: int):
    """The bare projected-gradient loop: ``iterations`` steps, conditioning included."""
    def run() -> None:
        with torch.no_grad():
            energy = conditioned_energy(model, x)
        y = torch.full((x.shape[0], size.y_dim), (size.lo + size.hi) / 2)
        for _ in range(iterations):
            y.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(y, None).sum(), y)
            y = torch.clamp(y.detach() - 0.1 * grad, size.lo, size.hi)

    return run


def cases(batch: int, iters: list[int], quick: bool) -> list[tuple[str, str, float, int | None]]:
    """(method, budget label, tol, max_iter) for one batch."""
    runs = []
    for method in METHODS:
        runs += [(method, f"iter {n}", 0.0, n) for n in iters]
        if not quick:
            runs.append((method, f"tol {TOL:g}", TOL, None))
    if batch == 1:
        runs.append(("exact", "LP", 0.0, None))
    return runs


def measure(name: str, size: Size, batch: int, args) -> None:
    model, x = size.model(), size.contexts(batch)
    domain = Box(size.lo, size.hi)
    steps: dict[object, object] = {}
    counted: dict[object, tuple[Count, int]] = {}
    for method, budget, tol, max_iter in cases(batch, args.iters, args.quick):
        def call(method=method, tol=tol, max_iter=max_iter):
            return argmin(model, x, domain=domain, method=method, tol=tol, max_iter=max_iter)
        try:
            with counting(Count()) as count:
                result = call()
        except (ImportError, ValueError, NotImplementedError) as error:
            print(f"{name:<12}{batch:>6}  {method:<15}{budget:<10} unavailable: "
                  f"{str(error).splitlines()[0][:60]}")
            continue
        key = (method, budget)
        steps[key] = call
        handle = Argmin(model, domain=domain, method=method, tol=tol, max_iter=max_iter)
        steps[("handle", key)] = lambda handle=handle: handle(x)

        def through_autograd(handle=handle):
            with hand_written_gradients(False):
                return handle(x)

        steps[("autograd", key)] = through_autograd
        if args.compile:
            compiled = Argmin(model, domain=domain, method=method, tol=tol, max_iter=max_iter,
                              compile=args.compile)
            compiled(x)  # the compile, outside the timing
            steps[("compiled", key)] = lambda compiled=compiled: compiled(x)
        counted[key] = (count, result.iterations)
        if method != "exact":
            steps[("floor", key)] = floor_step(model, x, size, result.iterations)
    steps["grad"], steps["own"], steps["value"] = unit_steps(model, x, size)
    steps["model"] = model_step(model, x, size)
    t = time_interleaved(steps, args.repeats)
    for key, (count, iterations) in counted.items():
        method, budget = key
        if method == "exact":  # one LP per example; no gradient evaluations to compare with
            evals, own, floor = t["grad"], t["grad"], "-"
        else:
            evals = count.grads * t["grad"] + count.values * t["value"]
            own = count.grads * t["own"] + count.values * t["value"]
            floor = f"{t[key] / t[('floor', key)]:.2f}"
        print(f"{name:<12}{batch:>6}  {method:<15}{budget:<10}{iterations:>6}{count.grads:>7}"
              f"{count.values:>7}{t[key] * 1e3:>10.3f}{t['grad'] * 1e3:>9.3f}"
              f"{t['own'] * 1e3:>9.3f}{t[key] / evals:>9.2f}{t[key] / own:>8.2f}{floor:>9}"
              f"{t[('handle', key)] * 1e3:>10.3f}{t[('handle', key)] / evals:>8.2f}"
              f"{t[('autograd', key)] * 1e3:>9.3f}{compiled_columns(t, key, evals)}"
              f"{t['model'] * 1e3:>9.3f}{model_ratio(t, ('handle', key), count)}"
              f"{model_ratio(t, ('compiled', key), count)}")


def model_ratio(t: dict, key: object, count: Count) -> str:
    """``ms`` of a case over ``grads`` whole-model forward+gradient passes (``-``: none)."""
    if key not in t or count.grads == 0:
        return f"{'-':>8}"
    return f"{t[key] / (count.grads * t['model']):>8.2f}"


def compiled_columns(t: dict, key: object, evals: float) -> str:
    """``cmp ms`` and ``cmp x`` of a case, dashes when it was not compiled."""
    if ("compiled", key) not in t:
        return f"{'-':>9}{'-':>7}"
    return f"{t[('compiled', key)] * 1e3:>9.3f}{t[('compiled', key)] / evals:>7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES),
                        default=["pendulum", "halfcheetah", "bibtex"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--iters", type=int, nargs="+", default=[5, 30],
                        help="fixed iteration counts (tol=0)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1],
                        help="torch CPU thread counts to run at (default: 1 and all)")
    parser.add_argument("--compile", default=None, metavar="BACKEND",
                        help="also time handles built with compile=BACKEND (e.g. inductor; "
                             "the first call per shape compiles, seconds to minutes)")
    parser.add_argument("--quick", action="store_true",
                        help="Pendulum and HalfCheetah, batch 1 and 8, 5 iterations, no "
                             "tolerance rows, 3 repeats (seconds)")
    args = parser.parse_args()
    if args.quick:
        defaults = parser.parse_args([])
        if args.sizes == defaults.sizes:
            args.sizes = ["pendulum", "halfcheetah"]
        if args.batches == defaults.batches:
            args.batches = [1, 8]
        if args.iters == defaults.iters:
            args.iters = [5]
        if args.repeats == defaults.repeats:
            args.repeats = 3
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
              f"{args.repeats} interleaved calls; load average {os.getloadavg()[0]:.1f}")
        print(f"{'size':<12}{'batch':>6}  {'method':<15}{'budget':<10}{'iters':>6}{'grads':>7}"
              f"{'values':>7}{'ms':>10}{'grad ms':>9}{'own ms':>9}{'x evals':>9}{'x own':>8}"
              f"{'x floor':>9}{'hdl ms':>10}{'hdl x':>8}{'ag ms':>9}{'cmp ms':>9}{'cmp x':>7}"
              f"{'mdl ms':>9}{'hdl xm':>8}{'cmp xm':>8}")
        for name in args.sizes:
            for batch in args.batches:
                measure(name, SIZES[name], batch, args)


if __name__ == "__main__":
    main()

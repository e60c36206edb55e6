"""``icnn.Argmin``: a reusable solver for repeated solves of one model, with the setup done once.

Control calls ``argmin`` in its inner loop (ICNN-Q: two batched solves per environment step, a
model-predictive controller one per time step at batch 1), where the fixed costs of a call, not
the network, decide the speed. :class:`Argmin` checks the method, tolerance, iteration limit and
options once, at construction.

The model's :class:`icnn.EnergyTraits` and the conditioned energy (the PICNN's x-path) are
computed afresh at every call: a cache keyed on tensors' identity and in-place version counters
misses writes through ``.data`` (``p.data.copy_``, the usual Polyak update; ``x.data[...] =``),
and a stale cache would answer for the old weights, or certify a ``constraint="project"`` model
that has left the convex set, without a word.

:func:`icnn.argmin` is the one-call form: it builds an :class:`Argmin` and calls it once, so
both forms run the same code and return the same :class:`ArgminResult`, to the bit.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..nn.energy import BARRIER, ConvexEnergy, EnergyTraits, energy_traits
from .auto import choose_method
from .conditioning import Energy, conditioned_energy, energy_at
from .domain import Box, unbounded
from .problem import Problem, build_problem
from .result import ArgminResult

METHODS = ("auto", "pgd", "lbfgs", "bundle", "bundle_entropy", "exact")
"""The ``method`` names :func:`icnn.argmin` and :class:`icnn.Argmin` accept."""
DIFFERENTIABLE = (None, "unroll", "implicit")

# iterations per method when max_iter is not given (unroll: steps, the paper's 30)
DEFAULT_MAX_ITER = {"pgd": 1000, "lbfgs": 500, "bundle": 100, "bundle_entropy": 50,
                    "exact": 1, "unroll": 30}
DEFAULT_TOL = 1e-4

# what each method accepts beyond the common arguments
METHOD_OPTIONS = {"pgd": frozenset({"callback", "lipschitz"}),
                  "lbfgs": frozenset({"callback", "memory"}),
                  "bundle": frozenset(), "bundle_entropy": frozenset(), "exact": frozenset()}


class Argmin:
    r"""``y* = argmin_{y in domain} f(x, y)`` for one model, solved again and again.

    ``solver = icnn.Argmin(model, domain=icnn.Box(-1, 1), method="pgd", max_iter=5)`` then
    ``solver(x, y0=...)`` returns what ``icnn.argmin(model, x, domain=..., y0=..., method=...,
    max_iter=...)`` returns, to the bit; the arguments mean the same (see :func:`icnn.argmin`).

    Args:
        model: the energy, a module implementing :class:`icnn.ConvexEnergy`. It may train
            between calls (its traits are re-read whenever a parameter changed); keep its
            modules (not their weights) as they are while the handle lives.
        domain: None (all of ``R^n``) or :class:`icnn.Box`.
        method: ``"auto"``, ``"pgd"``, ``"lbfgs"``, ``"bundle"``, ``"bundle_entropy"`` or
            ``"exact"`` (``auto`` resolves per call, from the problem).
        tol: relative tolerance of the stopping test.
        max_iter: iteration limit (default per method).
        differentiable: None, ``"unroll"`` or ``"implicit"``.
        allow_unbounded: run on an unbounded domain without strong convexity.
        compile: False (default: eager, the reference) or True / a :func:`torch.compile`
            backend name (True: ``"inductor"``), worth it for fixed-shape repeated solves
            (control): ``pgd`` and ``lbfgs`` run their whole-batch iterations compiled
            (evaluation, cut, trial step, acceptance and stopping test fused, the energy
            inlined; see :func:`icnn.solvers.pgd.solve_pgd`,
            :func:`icnn.solvers.lbfgs.solve_lbfgs`), the other methods the energy they evaluate
            (the conditioned y-path, or the model), compiled for the shapes they meet. The first
            call per shape pays the compile;
            compiled kernels may round differently from eager, so results agree with
            :func:`icnn.argmin` to rounding, not to the bit (the certificates stay valid: they
            are built from the values the compiled energy returns).
        options: method-specific keyword arguments (``memory``, ``callback``, ``lipschitz``);
            a call may add or override them.

    Raises:
        ValueError: an unknown method or ``differentiable``, a bad ``tol`` or ``max_iter``, a
            ``compile`` that is neither a bool nor a backend name, or ``compile`` with
            ``differentiable="unroll"``; at a call, everything :func:`icnn.argmin` refuses.
        TypeError: at a call, a model that does not implement :class:`icnn.ConvexEnergy`.
    """

    def __init__(
        self, model: nn.Module, *, domain: Box | None = None, method: str = "auto",
        tol: float = DEFAULT_TOL, max_iter: int | None = None, differentiable: str | None = None,
        allow_unbounded: bool = False, compile: bool | str = False, **options: Any,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if differentiable not in DIFFERENTIABLE:
            raise ValueError(f"differentiable must be one of {DIFFERENTIABLE}, got "
                             f"{differentiable!r}")
        self.model = model
        self.domain = domain
        self.method = method
        self.tol = _check_tol(tol)
        self.max_iter = None if max_iter is None else _check_max_iter(max_iter)
        self.differentiable = differentiable
        self.allow_unbounded = bool(allow_unbounded)
        self.options = dict(options)
        if not isinstance(compile, bool | str) or compile == "":
            raise ValueError(f"compile must be a bool or a torch.compile backend name, got "
                             f"{compile!r}")
        if compile and differentiable == "unroll":
            raise ValueError("compile=... compiles the energy of a detached solve; "
                             "differentiable='unroll' keeps its steps in the autograd graph: pass "
                             "compile=False with it")
        self.compile = "inductor" if compile is True else compile
        # the whole space as one object (so that a frame can be recognised by its domain), and
        # the last problem's bounds, reused by the next call when they are the same (same
        # domain object, shapes, dtype, device: build_problem decides)
        self._unbounded = unbounded()
        self._frame: Problem | None = None
        if self.compile:
            check_compile_backend(self.compile)

    def __call__(self, x: Tensor | None = None, *, y0: Tensor | None = None,
                 fixed: tuple[Tensor, Tensor] | None = None, **options: Any) -> ArgminResult:
        """Solve for a batch.

        Args:
            x: ``(batch, *context_shape)`` context, or None for fully convex models.
            y0: ``(batch, *shape)`` warm start (projected onto the domain), or None.
            fixed: ``(mask, values)`` broadcastable to ``(batch, *shape)``, as in
                :func:`icnn.argmin`.
            options: method options for this call only (override the handle's).

        Returns:
            :class:`ArgminResult` with ``y: (batch, *shape)``, ``value: (batch,)``, ...

        Raises:
            ValueError, TypeError: as :func:`icnn.argmin`.
        """
        model, method, differentiable = self.model, self.method, self.differentiable
        options = {**self.options, **options} if options else self.options
        tol = self.tol
        batch = _batch_without_context(model, x, y0, fixed)
        domain = self._unbounded if self.domain is None else self.domain
        problem = build_problem(model, x, domain, y0, fixed, batch=batch,
                                traits=self._current_traits(), frame=self._frame)
        traits = problem.traits
        if not problem.bounded and traits.strong_convexity == 0.0 and not self.allow_unbounded:
            raise ValueError(
                "the domain is unbounded and the model is not strongly convex, so the minimum "
                "may not exist (a ReLU ICNN can decrease forever along a ray): pass "
                "domain=icnn.Box(lo, hi), build the model with strong_convexity > 0, or pass "
                "allow_unbounded=True to run anyway (converged then reports a stationarity "
                "test, not a certificate)"
            )
        if traits.curvature == BARRIER and not problem.bounded:
            raise ValueError(
                "this energy contains a barrier (an entropy) that lives on a box, and its "
                "declared strong convexity holds there only: pass domain=icnn.Box(lo, hi) with "
                "finite bounds"
            )
        if not traits.convex:
            _check_nonconvex_call(method, differentiable, traits.issues)
        if differentiable == "unroll":
            if method not in ("auto", "pgd"):
                raise ValueError(f"differentiable='unroll' differentiates through projected "
                                 f"gradient steps; method must be 'auto' or 'pgd', got {method!r}")
            if options:
                raise ValueError(f"differentiable='unroll' takes no solver options (its steps "
                                 f"are max_iter plain projected gradient steps), got "
                                 f"{sorted(options)}")
            from .unroll import solve_unrolled

            steps = self.max_iter if self.max_iter is not None else DEFAULT_MAX_ITER["unroll"]
            fast = problem.with_energy(conditioned_energy(model, x, differentiable=True))
            return _honest(_without_certificate_unless_convex(
                solve_unrolled(fast, y0, steps=steps, tol=tol), traits.convex))
        if method == "auto":
            method = _auto_method(problem, options)
        max_iter = self.max_iter if self.max_iter is not None else DEFAULT_MAX_ITER[method]
        # pgd and lbfgs compile their whole-batch iterations (the energy inlined); the others
        # the energy
        fused = self.compile if method in FUSED_METHODS else False
        fast = problem.with_energy(self._conditioned_energy(x, compile=not fused))
        result = _dispatch(method, fast, y0, tol=tol, max_iter=max_iter, options=options,
                           compile=fused or None)
        if fixed is None:  # what the solve computed of the bounds serves the next call too
            self._frame = fast.reframed(fast.model, None, fast.domain, fast.traits)
        result.y = result.y.detach()
        result = _honest(_without_certificate_unless_convex(result, traits.convex))
        if differentiable == "implicit":
            from .implicit import attach_implicit_gradient

            result.y = attach_implicit_gradient(problem, result)
        return result

    def _current_traits(self) -> EnergyTraits | None:
        """The model's traits, read now (None: not a ConvexEnergy, left to build_problem)."""
        if not isinstance(self.model, nn.Module) or not isinstance(self.model, ConvexEnergy):
            return None
        return energy_traits(self.model)

    def _conditioned_energy(self, x: Tensor | None, compile: bool = True) -> Energy | None:
        """:func:`conditioned_energy` at ``x`` without gradients (compiled if asked and ``compile``)."""
        with torch.no_grad():
            energy = conditioned_energy(self.model, x)
        if self.compile and compile:
            energy = _compiled(self.model, x, energy, self.compile)
        return energy


# the methods whose whole-batch iterations run compiled with ``compile=`` (the others: the energy)
FUSED_METHODS = ("pgd", "lbfgs")


def check_compile_backend(backend: str) -> None:
    """Refuse a ``compile=`` backend name that :func:`torch.compile` does not know, or cannot use.

    ``cudagraphs`` replays write their outputs into the same memory, and the solvers keep one
    iteration's outputs into the next. A listed backend whose package is not installed (e.g.
    ``tvm``) fails at the first solve, with torch's message.

    Raises:
        ValueError: an unknown backend, or ``cudagraphs``.
    """
    if backend == "cudagraphs":
        raise ValueError("compile='cudagraphs' replays write their outputs into the same memory, "
                         "and the solvers keep one iteration's outputs into the next: use "
                         "compile=True (inductor)")
    if backend not in torch.compiler.list_backends(exclude_tags=()):
        usable = sorted(set(torch.compiler.list_backends()) - {"cudagraphs"})
        raise ValueError(f"compile must be True or a torch.compile backend (e.g. "
                         f"{', '.join(usable)}, or 'eager' to capture without code generation), "
                         f"got {backend!r}")


def _compiled(model: nn.Module, x: Tensor | None, energy: Energy | None, backend: str) -> Energy:
    """``energy(y, index)`` compiled with ``torch.compile(backend=backend)``.

    The model's call when it has no conditioned form. Compiled code is cached per function and
    shapes, so later solves at the same shapes reuse it.
    """
    if energy is None:
        energy = energy_at(model, x)
    return torch.compile(energy, backend=backend)


def _auto_method(problem: Problem, options: dict[str, Any]) -> str:
    """``auto``: :func:`choose_method`, or with options the method that accepts them all."""
    chosen = choose_method(problem)
    if not options:
        return chosen
    takers = [m for m in (chosen, "lbfgs", "pgd") if set(options) <= METHOD_OPTIONS[m]]
    if not takers:
        raise ValueError(f"no single method takes the options {sorted(options)}: pass method= "
                         f"explicitly (pgd takes {sorted(METHOD_OPTIONS['pgd'])}, lbfgs takes "
                         f"{sorted(METHOD_OPTIONS['lbfgs'])})")
    return takers[0]


def _check_nonconvex_call(method: str, differentiable: str | None, issues: tuple[str, ...]
                          ) -> None:
    """Refuse what needs convexity on a model that is not convex now.

    pgd, lbfgs and unrolling run (a local search, never certified).
    """
    why = "; ".join(issues)
    if differentiable == "implicit":
        raise ValueError(f"differentiable='implicit' needs a model convex in y (its argmin must be "
                         f"the unique stationary point), but this one is not: {why}. Use "
                         "differentiable='unroll' (method='pgd'), or make the model convex")
    if differentiable is None and method not in ("pgd", "lbfgs"):
        raise ValueError(f"method={method!r} needs a model convex in y (its cutting planes and "
                         f"certificates rely on it), but this one is not: {why}. Local methods "
                         "run without a certificate: pass method='pgd' or 'lbfgs', or "
                         "differentiable='unroll'")


def _honest(result: ArgminResult) -> ArgminResult:
    """The invariants every answer keeps, whatever the method did.

    * a NaN value is never an answer: :class:`ValueError` (the model or its parameters are
      not finite there);
    * ``converged`` needs a finite value (and objective);
    * a lower bound is finite or ``-inf`` and never above the objective reached (beyond
      rounding): an overflowed or inconsistent bound becomes ``-inf``, its gap ``inf`` and the
      example is not converged.

    Raises:
        ValueError: a NaN value.
    """
    value = result.value.detach()
    nan = torch.isnan(value)
    if bool(nan.any()):
        raise ValueError(
            f"the energy is NaN at the solver's point for {int(nan.sum())} of {value.shape[0]} "
            "examples: the model's parameters or terms are not finite there (e.g. an "
            "overflowing strong_convexity or weight); check the model with icnn.check_convexity"
        )
    objective = value if result.objective is None else result.objective.detach()
    finite = torch.isfinite(value) & torch.isfinite(objective)
    converged = result.converged & finite
    if result.lower_bound is not None:
        bound = result.lower_bound.detach()
        rounding = 8 * torch.finfo(bound.dtype).eps * objective.abs().clamp_min(1.0)
        false = torch.isnan(bound) | (bound == torch.inf) | (bound > objective + rounding)
        if bool(false.any()):
            result.lower_bound = torch.where(false, torch.full_like(bound, -torch.inf), bound)
            gap = objective - result.lower_bound
            result.gap = gap
            converged = converged & ~false
    result.converged = converged
    return result


def _without_certificate_unless_convex(result: ArgminResult, convex: bool) -> ArgminResult:
    """A model that is not convex gets no certificate: ``converged`` False, no gap or bound.

    ``info["stationary"]`` keeps the local stopping test's outcome.
    """
    if convex:
        return result
    result.info["stationary"] = result.converged
    result.info["not_convex"] = True
    result.converged = torch.zeros_like(result.converged)
    result.gap = None
    result.lower_bound = None
    return result


def _dispatch(method: str, problem: Problem, y0: Tensor | None, *, tol: float, max_iter: int,
              options: dict[str, Any], compile: str | None = None) -> ArgminResult:
    allowed = METHOD_OPTIONS[method]
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"method {method!r} takes no option(s) {sorted(unknown)}; "
                         f"it accepts {sorted(allowed) or 'none'}")
    if method == "pgd":
        from .pgd import solve_pgd

        return solve_pgd(problem, y0, tol=tol, max_iter=max_iter, compile=compile, **options)
    if method == "lbfgs":
        from .lbfgs import solve_lbfgs

        return solve_lbfgs(problem, y0, tol=tol, max_iter=max_iter, compile=compile, **options)
    if method == "exact":
        from .exact import solve_exact

        return solve_exact(problem)
    if method == "bundle":
        from .bundle import solve_bundle

        start = y0 if y0 is not None else _centre(problem)
        return solve_bundle(problem, start, tol=tol, max_iter=max_iter)
    from .bundle_entropy import solve_bundle_entropy

    return solve_bundle_entropy(problem, y0, tol=tol, max_iter=max_iter)


def _batch_without_context(model: nn.Module, x: Tensor | None, y0: Tensor | None,
                           fixed: tuple[Tensor, Tensor] | None) -> int | None:
    """Batch size when neither ``x`` nor ``y0`` gives it: from batched fixed values, else 1."""
    if x is not None or y0 is not None:
        return None
    shape = model.convex_input_shape if isinstance(model, ConvexEnergy) else None
    if fixed is not None and shape is not None and isinstance(fixed, tuple | list) \
            and len(fixed) == 2:
        for part in fixed:
            part = torch.as_tensor(part)
            if part.dim() == len(shape) + 1:
                return int(part.shape[0])
    return 1


def _centre(problem: Problem) -> Tensor:
    from .iterative import initial_point

    return initial_point(problem, None)


def _check_tol(tol: float) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not math.isfinite(tol) \
            or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    return float(tol)


def _check_max_iter(max_iter: int) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    return max_iter

"""``icnn.argmin``: the one entry point to inference over the convex input."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from ..nn.energy import BARRIER, ConvexEnergy
from .auto import choose_method
from .conditioning import conditioned_energy
from .domain import Box
from .problem import Problem, build_problem
from .result import ArgminResult

METHODS = ("auto", "pgd", "lbfgs", "bundle", "bundle_entropy", "exact")
DIFFERENTIABLE = (None, "unroll", "implicit")

# iterations per method when max_iter is not given (unroll: steps, the paper's 30)
DEFAULT_MAX_ITER = {"pgd": 1000, "lbfgs": 500, "bundle": 100, "bundle_entropy": 50,
                    "exact": 1, "unroll": 30}
DEFAULT_TOL = 1e-4


def argmin(
    model: nn.Module, x: Tensor | None = None, *, domain: Box | None = None,
    y0: Tensor | None = None, fixed: tuple[Tensor, Tensor] | None = None, method: str = "auto",
    tol: float = DEFAULT_TOL, max_iter: int | None = None, differentiable: str | None = None,
    allow_unbounded: bool = False, **options: Any,
) -> ArgminResult:
    r"""``y* = argmin_{y in domain} f(x, y)`` for a batch, with per-example convergence.

    Args:
        model: a module convex in ``y``: an FICNN (``model(y)``), a PICNN (``model(x, y)``), a
            convolutional variant (image-shaped ``y``), or any module implementing
            :class:`icnn.ConvexEnergy` (shapes and :class:`icnn.EnergyTraits`). A model that
            declares itself not convex (``convex=False`` ablation, ``constraint="project"``
            before ``project_()``) runs only with ``pgd``/``lbfgs``/``unroll`` and gets no
            certificate (``converged`` False, ``gap`` None).
        x: ``(batch, *context_shape)`` context, or None for fully convex models.
        domain: None (all of ``R^n``) or :class:`icnn.Box` ``(lo, hi)``, e.g. ``Box(0, 1)``.
        y0: ``(batch, *shape)`` warm start (projected onto the domain); default the box centre.
        fixed: ``(mask, values)`` broadcastable to ``(batch, *shape)``: masked coordinates keep
            their values and only the others move (image completion, conditioning on labels).
        method: ``"pgd"``, ``"lbfgs"``, ``"bundle"``, ``"bundle_entropy"``, ``"exact"`` or
            ``"auto"`` (see :func:`icnn.solvers.auto.choose_method`: ``bundle`` for a
            piecewise-linear energy on a bounded domain, else ``lbfgs``; with ``options``, the
            method that takes them).
        tol: relative tolerance of each method's stopping test (certified gap
            ``<= tol * max(1, |f|)`` wherever a lower bound exists).
        max_iter: iteration limit (default per method, :data:`DEFAULT_MAX_ITER`).
        differentiable: None (``y`` detached), ``"unroll"`` (``max_iter`` accelerated projected
            gradient steps kept in the graph; ``method`` must be ``"auto"`` or ``"pgd"``) or
            ``"implicit"`` (solve, then attach the implicit-function gradient at ``y*``).
        allow_unbounded: run on an unbounded domain without strong convexity, where the
            minimum may not exist; ``converged`` then reports a stationarity test.
        options: method-specific keyword arguments (``memory`` for lbfgs, ``callback`` for
            pgd/lbfgs, ``lipschitz`` for pgd: a first estimate of ``L``, see
            :func:`icnn.solvers.pgd.solve_pgd`).

    Returns:
        :class:`icnn.solvers.ArgminResult` with ``y: (batch, *shape)``, ``value: (batch,)``,
        ``iterations``, ``converged: (batch,)`` (True only where the stopping test passed),
        ``gap``/``lower_bound`` where the method certifies one, and ``method`` (resolved).

    Raises:
        ValueError: bad shapes, dtypes (float32/float64 only) or non-finite inputs, ``lo > hi``
            or bounds whose width overflows, an empty batch, an unknown method or option, a
            method that cannot handle the model or domain, an unbounded domain without strong
            convexity (unless ``allow_unbounded``) or with a barrier energy, a model that is not
            convex now with a certifying method or ``implicit``, an implicit gradient no rule
            covers (see :mod:`icnn.solvers.implicit`), or an energy that is NaN at the answer.
        TypeError: a model that does not implement :class:`icnn.ConvexEnergy`.

    Every answer keeps three invariants: ``value`` is the model at ``y``; ``converged`` is True
    only with a finite value (and, where certified, a gap within ``tol``); a reported
    ``lower_bound`` is finite or ``-inf`` and never above the objective reached.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if differentiable not in DIFFERENTIABLE:
        raise ValueError(f"differentiable must be one of {DIFFERENTIABLE}, got {differentiable!r}")
    tol = _check_tol(tol)
    batch = _batch_without_context(model, x, y0, fixed)
    problem = build_problem(model, x, domain, y0, fixed, batch=batch)
    traits = problem.traits
    if not problem.bounded and traits.strong_convexity == 0.0 and not allow_unbounded:
        raise ValueError(
            "the domain is unbounded and the model is not strongly convex, so the minimum may "
            "not exist (a ReLU ICNN can decrease forever along a ray): pass domain=icnn.Box(lo, "
            "hi), build the model with strong_convexity > 0, or pass allow_unbounded=True to run "
            "anyway (converged then reports a stationarity test, not a certificate)"
        )
    if traits.curvature == BARRIER and not problem.bounded:
        raise ValueError(
            "this energy contains a barrier (an entropy) that lives on a box, and its declared "
            "strong convexity holds there only: pass domain=icnn.Box(lo, hi) with finite bounds"
        )
    if not traits.convex:
        _check_nonconvex_call(method, differentiable, traits.issues)
    if differentiable == "unroll":
        if method not in ("auto", "pgd"):
            raise ValueError(f"differentiable='unroll' differentiates through projected gradient "
                             f"steps; method must be 'auto' or 'pgd', got {method!r}")
        if options:
            raise ValueError(f"differentiable='unroll' takes no solver options (its steps are "
                             f"max_iter plain projected gradient steps), got {sorted(options)}")
        from .unroll import solve_unrolled

        steps = _check_max_iter(max_iter if max_iter is not None else DEFAULT_MAX_ITER["unroll"])
        fast = replace(problem, energy=conditioned_energy(model, x, differentiable=True))
        return _honest(_without_certificate_unless_convex(
            solve_unrolled(fast, y0, steps=steps, tol=tol), traits.convex))
    if method == "auto":
        method = _auto_method(problem, options)
    max_iter = _check_max_iter(max_iter if max_iter is not None else DEFAULT_MAX_ITER[method])
    with torch.no_grad():
        fast = replace(problem, energy=conditioned_energy(model, x))
    result = _dispatch(method, fast, y0, tol=tol, max_iter=max_iter, options=options)
    result.y = result.y.detach()
    result = _honest(_without_certificate_unless_convex(result, traits.convex))
    if differentiable == "implicit":
        from .implicit import attach_implicit_gradient

        result.y = attach_implicit_gradient(problem, result)
    return result


# what each method accepts beyond the common arguments
METHOD_OPTIONS = {"pgd": frozenset({"callback", "lipschitz"}),
                  "lbfgs": frozenset({"callback", "memory"}),
                  "bundle": frozenset(), "bundle_entropy": frozenset(), "exact": frozenset()}


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
    """Refuse what needs convexity on a model that is not convex now; pgd, lbfgs and unrolling
    run (a local search, never certified)."""
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
    """A model that is not convex gets no certificate: ``converged`` False, no gap or bound
    (``info["stationary"]`` keeps the local stopping test's outcome)."""
    if convex:
        return result
    result.info["stationary"] = result.converged
    result.info["not_convex"] = True
    result.converged = torch.zeros_like(result.converged)
    result.gap = None
    result.lower_bound = None
    return result


def _dispatch(method: str, problem: Problem, y0: Tensor | None, *, tol: float, max_iter: int,
              options: dict[str, Any]) -> ArgminResult:
    allowed = METHOD_OPTIONS[method]
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"method {method!r} takes no option(s) {sorted(unknown)}; "
                         f"it accepts {sorted(allowed) or 'none'}")
    if method == "pgd":
        from .pgd import solve_pgd

        return solve_pgd(problem, y0, tol=tol, max_iter=max_iter, **options)
    if method == "lbfgs":
        from .lbfgs import solve_lbfgs

        return solve_lbfgs(problem, y0, tol=tol, max_iter=max_iter, **options)
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

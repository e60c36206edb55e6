"""What every convex energy declares about itself.

What every convex energy declares about itself: the one interface solvers, the trainer and the
checks read.

An *energy* is a module ``f(x, y)`` (or ``f(y)``) whose value ``(batch,)`` is meant to be convex in
``y``. It answers three questions through the :class:`ConvexEnergy` protocol:

- ``convex_input_shape``: the per-example shape of ``y``;
- ``context_shape``: the per-example shape of ``x``, or None when it takes none;
- ``energy_traits()``: an :class:`EnergyTraits`, what it is *right now* (after the last optimiser
  step): convex or not and why, its strong convexity ``mu``, and its curvature class.

Nothing else is read: no ``config`` dictionaries, no scanning of submodules. A wrapper (a
loss-augmented energy, an entropy barrier, an ensemble) combines the traits of what it wraps with
those of its own term (:meth:`EnergyTraits.plus`, :meth:`EnergyTraits.scaled`), so the first
wrapper someone writes cannot be misjudged by a solver.

Curvature classes (of ``f - (mu/2)||y||^2``):

- ``"piecewise_linear"``: a maximum of affine pieces in ``y`` (ReLU, leaky ReLU, abs, identity
  activations). Its Hessian is zero almost everywhere: the bundle method certifies it, the exact
  LP solves it, and its argmin is differentiated through the active pieces.
- ``"smooth"``: twice differentiable almost everywhere with an informative Hessian (softplus,
  ELU, squared ReLU, quadratic terms): L-BFGS, and the implicit function theorem.
- ``"barrier"``: contains a term that is steep or undefined at the faces of a box (an entropy):
  first-order cutting planes are poor there, so ``auto`` never sends it to the bundle method,
  and ``argmin`` needs a bounded domain for it (its strong convexity is declared on the box).

A sum of a piecewise-linear energy and a smooth or barrier term (an entropy on a ReLU network)
is ``"smooth"`` or ``"barrier"`` with ``kinks=True``: its Hessian misses the kinks, so neither the
implicit function theorem nor the piecewise-linear active-set derivative applies, and
``differentiable="implicit"`` refuses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

PIECEWISE_LINEAR = "piecewise_linear"
SMOOTH = "smooth"
BARRIER = "barrier"
CURVATURES = (PIECEWISE_LINEAR, SMOOTH, BARRIER)
_CURVATURE_RANK = {PIECEWISE_LINEAR: 0, SMOOTH: 1, BARRIER: 2}

CONSTRAINT_KINDS = ("softplus", "exp", "project", "none", "mixed")


@dataclass(frozen=True)
class EnergyTraits:
    """What an energy ``f(x, y)`` is in ``y``, as it stands now.

    Attributes:
        convex: True when ``y -> f(x, y)`` is convex for every ``x`` (by construction and in the
            current weights). False: solvers give no certificate and no implicit gradient.
        strong_convexity: ``mu >= 0`` such that ``f - (mu/2)||y||^2`` is convex.
        curvature: ``"piecewise_linear"``, ``"smooth"`` or ``"barrier"`` (see the module doc), of
            ``f - (mu/2)||y||^2``.
        constraint: how non-negative weights are kept: ``"softplus"``, ``"exp"``, ``"project"``
            (explicit ``project_()`` calls), ``"none"`` (no constrained weights) or ``"mixed"``.
        issues: why the energy is not convex (empty when ``convex``).
        kinks: True when ``f`` has points of non-differentiability (a piecewise-linear part with
            more than one piece); default: True exactly for ``"piecewise_linear"`` (an affine
            term declares ``kinks=False``).
    """

    convex: bool
    strong_convexity: float = 0.0
    curvature: str = SMOOTH
    constraint: str = "none"
    issues: tuple[str, ...] = field(default=())
    kinks: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.convex, bool):
            raise TypeError(f"EnergyTraits.convex must be a bool, got {self.convex!r}")
        mu = self.strong_convexity
        if isinstance(mu, bool) or not isinstance(mu, int | float) or not math.isfinite(mu) \
                or mu < 0:
            raise ValueError(f"EnergyTraits.strong_convexity must be a finite number >= 0, "
                             f"got {mu!r}")
        object.__setattr__(self, "strong_convexity", float(mu))
        if self.curvature not in CURVATURES:
            raise ValueError(f"EnergyTraits.curvature must be one of {CURVATURES}, "
                             f"got {self.curvature!r}")
        if self.constraint not in CONSTRAINT_KINDS:
            raise ValueError(f"EnergyTraits.constraint must be one of {CONSTRAINT_KINDS}, "
                             f"got {self.constraint!r}")
        object.__setattr__(self, "issues", tuple(str(i) for i in self.issues))
        if self.convex and self.issues:
            raise ValueError(f"EnergyTraits: a convex energy has no issues, got {self.issues}")
        if not self.convex and not self.issues:
            object.__setattr__(self, "issues", ("declared not convex",))
        if self.kinks is None:
            object.__setattr__(self, "kinks", self.curvature == PIECEWISE_LINEAR)
        if not isinstance(self.kinks, bool):
            raise TypeError(f"EnergyTraits.kinks must be a bool, got {self.kinks!r}")

    @property
    def piecewise_linear(self) -> bool:
        """True when ``f`` itself (not only ``f - mu/2 ||y||^2``) is piecewise linear."""
        return self.curvature == PIECEWISE_LINEAR and self.strong_convexity == 0.0

    def plus(self, other: EnergyTraits) -> EnergyTraits:
        """The traits of the sum of two energies.

        Convex if both are, moduli add, the rougher curvature wins (piecewise-linear < smooth < barrier),
        kinks of either part remain.
        """
        curvature = max(self.curvature, other.curvature, key=_CURVATURE_RANK.__getitem__)
        convex = self.convex and other.convex
        return EnergyTraits(
            convex=convex, strong_convexity=self.strong_convexity + other.strong_convexity,
            curvature=curvature, constraint=_combine_constraints(self.constraint, other.constraint),
            issues=() if convex else self.issues + other.issues, kinks=self.kinks or other.kinks,
        )

    def scaled(self, factor: float) -> EnergyTraits:
        """The traits of ``factor * f`` for ``factor > 0`` (convexity and curvature unchanged)."""
        if not factor > 0 or not math.isfinite(factor):
            raise ValueError(f"an energy may be scaled only by a finite factor > 0, got {factor}")
        return EnergyTraits(convex=self.convex, strong_convexity=self.strong_convexity * factor,
                            curvature=self.curvature, constraint=self.constraint,
                            issues=self.issues, kinks=self.kinks)


def _combine_constraints(a: str, b: str) -> str:
    if a == b or b == "none":
        return a
    if a == "none":
        return b
    return "mixed"


def sum_traits(parts: list[EnergyTraits]) -> EnergyTraits:
    """Traits of a sum of energies (at least one)."""
    if not parts:
        raise ValueError("sum_traits needs at least one part")
    total = parts[0]
    for part in parts[1:]:
        total = total.plus(part)
    return total


LINEAR_TERM = EnergyTraits(convex=True, curvature=PIECEWISE_LINEAR, kinks=False)
"""Traits of a term affine in ``y`` (a margin ``-Δ(y_true, y)``, a linear cost): piecewise
linear with a single piece, so it adds no kinks to a smooth energy."""


@runtime_checkable
class ConvexEnergy(Protocol):
    """A module the solvers accept: it declares its shapes and its :class:`EnergyTraits`.

    Implement it on any ``nn.Module`` whose ``forward`` is ``f(y)`` (``context_shape = None``) or
    ``f(x, y)``, returning ``(batch,)``::

        class MyEnergy(nn.Module):
            convex_input_shape = (3,)
            context_shape = None

            def energy_traits(self):
                return icnn.EnergyTraits(convex=True, curvature="smooth")

            def forward(self, y):
                return y.square().sum(-1)
    """

    convex_input_shape: tuple[int, ...]
    context_shape: tuple[int, ...] | None

    def energy_traits(self) -> EnergyTraits:
        """What the energy is now: convexity, strong convexity, curvature, constraint."""
        ...


def energy_traits(model: object) -> EnergyTraits:
    """The traits ``model`` declares.

    Raises:
        TypeError: ``model`` does not implement :class:`ConvexEnergy`, or returns something
            other than :class:`EnergyTraits`.
    """
    if not isinstance(model, ConvexEnergy):
        missing = [name for name in ("convex_input_shape", "context_shape", "energy_traits")
                   if not hasattr(model, name)]
        raise TypeError(
            f"expected a convex energy (an icnn model, or a module implementing "
            f"icnn.ConvexEnergy: convex_input_shape, context_shape and energy_traits()), got "
            f"{type(model).__name__} without {missing}"
        )
    traits = model.energy_traits()
    if not isinstance(traits, EnergyTraits):
        raise TypeError(f"{type(model).__name__}.energy_traits() must return icnn.EnergyTraits, "
                        f"got {type(traits).__name__}")
    return traits

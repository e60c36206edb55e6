"""A convex energy plus a convex term in ``y``: the plumbing the ICNN-Q energy wrappers share.

:class:`EnergyPlusTerm` holds the wrapped energy and its shapes, declares the sum's
:class:`icnn.EnergyTraits` (the energy's plus the term's), and implements ``forward`` and the
solvers' fast ``condition`` once. A subclass says only what its term is, through
:meth:`EnergyPlusTerm.term_given` and :attr:`EnergyPlusTerm.term_traits` (the entropy barrier of
:mod:`icnn.tasks.rl.entropy`, the quadratic of :mod:`icnn.tasks.rl.quadratic_head`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from icnn.nn.conditioned import ConditionedEnergy, gradient_total
from icnn.nn.energy import EnergyTraits, energy_traits
from icnn.solvers.conditioning import energy_at

Term = Callable[[Tensor, Tensor | None], Tensor]  # (y, index) -> (batch,), like a conditioned energy


class EnergyPlusTerm(nn.Module):
    """``energy(x, y) + term(x, y)``, convex in ``y`` when both are.

    Shape: ``x: (batch, *context_shape)``, ``y: (batch, *convex_input_shape)`` → ``(batch,)``.

    Args:
        energy: the convex energy (an :class:`icnn.ConvexEnergy`), used as is (no copy).
        term_traits: what the term is (its strong convexity counts only where it is certain).
    """

    def __init__(self, energy: nn.Module, term_traits: EnergyTraits) -> None:
        super().__init__()
        energy_traits(energy)  # refuses a module that declares nothing
        self.energy = energy
        self.term_traits = term_traits
        self.convex_input_shape = energy.convex_input_shape
        self.context_shape = energy.context_shape

    def energy_traits(self) -> EnergyTraits:
        """The wrapped energy's traits plus the term's."""
        return energy_traits(self.energy).plus(self.term_traits)

    def term_given(self, x: Tensor) -> Term:
        """The term at the contexts ``x``, as ``(y, index) -> (batch,)``.

        The term at the contexts ``x``, as ``(y, index) -> (batch,)`` (``index`` picks rows
        of ``x``, None for all).
        """
        raise NotImplementedError

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """The wrapped energy plus the term, ``(batch,)``."""
        return self.energy(x, y) + self.term_given(x)(y, None)

    def condition(self, x: Tensor) -> ConditionedEnergy:
        """The wrapped energy's :meth:`condition` plus the term, both prepared at ``x`` once.

        When the energy's gradient is hand-written (:class:`icnn.nn.conditioned.ConditionedEnergy`)
        so is the sum's: the term's gradient by autograd, passed to the energy's backward pass
        as the gradient autograd would have accumulated first (the term's operations are
        recorded last), so the sum's gradient is autograd's to the bit.
        """
        term = self.term_given(x)
        energy = energy_at(self.energy, x, differentiable=torch.is_grad_enabled())

        def summed(y: Tensor, index: Tensor | None = None) -> Tensor:
            return energy(y, index) + term(y, index)

        if not (isinstance(energy, ConditionedEnergy) and energy.hand_written):
            return ConditionedEnergy(summed)

        def value_and_grad(y: Tensor, index: Tensor | None, start: Tensor | None
                           ) -> tuple[Tensor, Tensor]:
            term_value, term_grad = _term_value_and_grad(term, y, index, start)
            value, grad = energy.value_and_grad(y, index, start=term_grad)
            return value + term_value, grad

        return ConditionedEnergy(summed, value_and_grad)


def _term_value_and_grad(term: Term, y: Tensor, index: Tensor | None, start: Tensor | None
                         ) -> tuple[Tensor, Tensor]:
    """``term(y, index)`` ``(b,)`` and ``start + grad_y sum term`` (``y``'s shape), detached.

    Autograd's gradient of :func:`icnn.nn.conditioned.gradient_total` (the graph
    :meth:`icnn.nn.conditioned.ConditionedEnergy.value_and_grad` differentiates), taken with
    :func:`torch.func.grad_and_value`: the same graph and accumulation order, to the bit, and
    one that a compiled solver traces instead of breaking its graph.
    """
    def total(u: Tensor) -> tuple[Tensor, Tensor]:
        value = term(u, index)
        return gradient_total(value, u, start), value

    try:
        with torch.no_grad():
            grad, (_, value) = torch.func.grad_and_value(total, has_aux=True)(y.detach())
    except RuntimeError:  # a term torch.func cannot transform (an autograd.Function without
        # setup_context): plain autograd, the same gradient; the term runs again, so a real
        # error in it recurs (and a term with side effects sees them twice)
        return ConditionedEnergy(term).value_and_grad(y, index, start=start)
    return value, grad

"""A convex energy plus a convex term in ``y``: the plumbing the ICNN-Q energy wrappers share.

:class:`EnergyPlusTerm` holds the wrapped energy and its shapes, reports the sum's strong
convexity where the solvers read it (``config["strong_convexity"]``, see
:func:`icnn.solvers.iterative.model_strong_convexity`), and implements ``forward`` and the
solvers' fast ``condition`` once. A subclass says only what its term is, through
:meth:`EnergyPlusTerm.term_given` (the entropy barrier of :mod:`icnn.tasks.rl.entropy`, the
quadratic of :mod:`icnn.tasks.rl.quadratic_head`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from icnn.solvers.iterative import model_strong_convexity

Term = Callable[[Tensor, Tensor | None], Tensor]  # (y, index) -> (batch,), like a conditioned energy


class EnergyPlusTerm(nn.Module):
    """``energy(x, y) + term(x, y)``, convex in ``y`` when both are.

    Shape: ``x: (batch, *context_shape)``, ``y: (batch, *convex_input_shape)`` → ``(batch,)``.

    Args:
        energy: the convex energy, used as is (no copy).
        term_strong_convexity: a modulus the term adds for sure (0 when it may be flat).
    """

    def __init__(self, energy: nn.Module, term_strong_convexity: float = 0.0) -> None:
        super().__init__()
        self.energy = energy
        self.convex_input_shape = energy.convex_input_shape
        self.context_shape = getattr(energy, "context_shape", None)
        self.config = {"strong_convexity": model_strong_convexity(energy) + term_strong_convexity}

    def term_given(self, x: Tensor) -> Term:
        """The term at the contexts ``x``, as ``(y, index) -> (batch,)`` (``index`` picks rows
        of ``x``, None for all)."""
        raise NotImplementedError

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.energy(x, y) + self.term_given(x)(y, None)

    def condition(self, x: Tensor) -> Term:
        """The wrapped energy's :meth:`condition` plus the term, both prepared at ``x`` once."""
        energy, term = self.energy.condition(x), self.term_given(x)

        def summed(y: Tensor, index: Tensor | None = None) -> Tensor:
            return energy(y, index) + term(y, index)

        return summed

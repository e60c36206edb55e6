r"""MM: the minimax dual of Makkuva et al. (2020), their equation (6).

Makkuva et al., "Optimal transport mapping via input convex neural networks", equation (6):

.. math::
    \min_f \max_g \; \mathbb{E}_{x\sim P} f(x) + \mathbb{E}_{y\sim Q}\big[\langle y, \nabla g(y)\rangle
    - f(\nabla g(y))\big],

``g`` maximising makes the bracket approach ``f*(y)``. Training alternates, as theirs:
``inner`` steps on ``g`` (ascent; ``f`` gets no gradient), then one step on ``f`` (descent at the
fixed points ``∇g(y)``; ``g`` gets no gradient). Parameters without a gradient are skipped by
Adam, so one optimiser serves both players.
"""

from __future__ import annotations

from torch import Tensor

from .transport_model import TransportModel

PHASES = ("f", "g")

__all__ = ["PHASES", "mm_loss", "mm_phase"]


def mm_phase(step: int, inner: int) -> str:
    """``"g"`` for the first ``inner`` steps of every ``inner + 1``, then ``"f"``."""
    return "f" if step % (inner + 1) == inner else "g"


def mm_loss(model: TransportModel, x: Tensor, y: Tensor, cx: Tensor | None = None,
            cy: Tensor | None = None, *, phase: str = "f") -> Tensor:
    """Per-pair MM loss of one player, ``(batch,)``.

    ``phase="f"``: ``f(x_i) + ⟨y_i, x̄_i⟩ − f(x̄_i)`` with ``x̄ = stop_grad(∇g(y))`` (the minimax
    objective's value; gradients to ``f`` only). ``phase="g"``: ``−⟨stop_grad(y − ∇f(∇g(y))), ∇g(y)⟩``,
    whose gradient in ``g`` is that of ``−(⟨y, ∇g(y)⟩ − f(∇g(y)))`` (ascent; ``f`` untouched).

    Args:
        model: a :class:`TransportModel` with an ICNN ``g``.
        x: ``(batch, D)`` source samples.
        y: ``(batch, D)`` target samples.
        cx: ``(batch, C)`` contexts of ``x`` (conditional models) or None.
        cy: ``(batch, C)`` contexts of ``y`` (conditional models) or None.
        phase: ``"f"`` or ``"g"``.

    Raises:
        ValueError: ``g`` is not an ICNN, or an unknown phase.
    """
    if model.config.g_kind != "icnn":
        raise ValueError(f"expected a TransportModel with an ICNN g for MM, got "
                         f"g_kind={model.config.g_kind!r}")
    if phase not in PHASES:
        raise ValueError(f"expected an MM phase in {PHASES}, got {phase!r}")
    pulled = model.inverse_predict(y, cy)
    if phase == "g":
        ascent = (y - model.forward_map(pulled.detach(), cy)).detach()
        return -(ascent * pulled).sum(dim=1)
    fixed = pulled.detach()
    return model.potential(x, cx) + (y * fixed).sum(dim=1) - model.potential(fixed, cy)

r"""W2GN: the non-minimax solver of Korotin et al. (2021).

Korotin et al., "Wasserstein-2 generative networks" (the benchmark paper's "W2" row):

.. math::
    \min_{f, g}\; \mathbb{E}_P f(x) + \mathbb{E}_Q\big[\langle y, \bar x\rangle - f(\bar x)\big]
    + \tfrac{\lambda}{2}\,\mathbb{E}_Q \|\nabla f(\nabla g(y)) - y\|^2,
    \qquad \bar x = \mathrm{stop\_grad}(\nabla g(y)),

the correlation term trains ``f`` at the approximate conjugate point ``∇g(y)`` and the cycle term
makes ``∇g`` invert ``∇f`` (and vanishes, with its gradient, when it does): one minimisation over
both networks.
"""

from __future__ import annotations

from torch import Tensor

from .transport_model import TransportModel

__all__ = ["w2gn_loss"]


def w2gn_loss(model: TransportModel, x: Tensor, y: Tensor, cx: Tensor | None = None,
              cy: Tensor | None = None, *, cycle: float = 1.0) -> Tensor:
    """Per-pair W2GN objective, ``(batch,)``.

    Args:
        model: a :class:`TransportModel` with an ICNN ``g``.
        x: ``(batch, D)`` source samples.
        y: ``(batch, D)`` target samples.
        cx: ``(batch, C)`` contexts of ``x`` (conditional models) or None.
        cy: ``(batch, C)`` contexts of ``y`` (conditional models) or None.
        cycle: ``λ >= 0``, the weight of the cycle term.

    Raises:
        ValueError: ``g`` is not an ICNN, or ``cycle`` is negative.
    """
    if model.config.g_kind != "icnn":
        raise ValueError(f"expected a TransportModel with an ICNN g for W2GN, got "
                         f"g_kind={model.config.g_kind!r}")
    if not cycle >= 0:
        raise ValueError(f"expected a cycle weight >= 0, got {cycle}")
    pulled = model.inverse_predict(y, cy)
    fixed = pulled.detach()
    correlation = model.potential(x, cx) + (y * fixed).sum(dim=1) - model.potential(fixed, cy)
    cycled = model.forward_map(pulled, cy)
    return correlation + 0.5 * cycle * (cycled - y).square().sum(dim=1)

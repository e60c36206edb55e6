r"""Amortised conjugate (Amos, 2023, "On amortizing convex conjugates for optimal transport").

The dual ``min_f E_P f(x) + E_Q f*(y)`` with ``f*(y) = max_ŷ ⟨ŷ, y⟩ − f(ŷ)`` computed, at every
step, by :func:`icnn.conjugate` warm-started at the prediction ``g(y)``. The conjugate's value
carries the envelope-theorem gradient ``−∂f(ŷ*)/∂θ`` to ``f``; ``g`` learns to predict ``ŷ*``:

- ``"regression"``: ``‖g(y) − ŷ*‖²`` (ŷ* fixed);
- ``"objective"``: ascend ``⟨g(y), y⟩ − f(g(y))`` in ``g`` only, through the surrogate
  ``−⟨stop_grad(y − ∇f(g(y))), g(y)⟩`` whose gradient in ``g`` is the objective's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .transport_model import TransportModel

AMORTIZATION = ("regression", "objective")

__all__ = ["AMORTIZATION", "ConjugateStats", "amortized_loss"]


@dataclass
class ConjugateStats:
    """What the conjugate solves of the steps since the last :meth:`summary` cost and reached."""

    iterations: list[float] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)
    unconverged: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, iterations: int | Tensor, residual: Tensor, converged: Tensor, seconds: float) -> None:
        """Record one conjugate solve: mean iterations, worst residual, unconverged share, seconds."""
        self.iterations.append(float(torch.as_tensor(iterations).double().mean()))
        self.residuals.append(float(residual.double().max()))
        self.unconverged.append(float((~converged).double().mean()))
        self.seconds.append(seconds)

    def summary(self) -> dict[str, float]:
        """Means over the recorded steps (``conjugate_residual_max``: the largest residual), then reset."""
        if not self.iterations:
            return {}
        count = len(self.iterations)
        out = {"conjugate_iterations": sum(self.iterations) / count,
               "conjugate_residual_max": max(self.residuals),
               "conjugate_unconverged": sum(self.unconverged) / count,
               "conjugate_seconds_per_step": sum(self.seconds) / count}
        self.__init__()
        return out


def refined_inverse(model: TransportModel, z: Tensor, x: Tensor | None = None, *, tol: float = 1e-4,
                    max_iter: int = 100, stats: ConjugateStats | None = None):
    """:func:`icnn.conjugate` of ``f`` at ``z`` warm-started at ``g(z)``.

    Its ``ConjugateResult`` (``.y`` is the inverse map ``∇f*(z)``, ``(batch, D)``; ``.value`` is ``f*(z)``,
    ``(batch,)``).
    """
    from ..potentials import conjugate

    with torch.no_grad():
        guess = model.inverse_predict(z, x)
    started = time.perf_counter()
    result = conjugate(model.f, z, x, y0=guess, tol=tol, max_iter=max_iter)
    if stats is not None:
        stats.add(result.iterations, result.residual, result.converged, time.perf_counter() - started)
    return result


def amortized_loss(model: TransportModel, x: Tensor, y: Tensor, cx: Tensor | None = None,
                   cy: Tensor | None = None, *, amortization: str = "regression", tol: float = 1e-4,
                   max_iter: int = 100, stats: ConjugateStats | None = None) -> Tensor:
    """Per-pair loss ``f(x_i) + f*(y_i) + amortisation loss of g``, ``(batch,)``.

    Args:
        model: a :class:`TransportModel` with an MLP ``g``.
        x: ``(batch, D)`` source samples.
        y: ``(batch, D)`` target samples.
        cx: ``(batch, C)`` contexts of ``x`` (conditional models) or None.
        cy: ``(batch, C)`` contexts of ``y`` (conditional models) or None.
        amortization: ``"regression"`` or ``"objective"``.
        tol: the conjugate solver's relative tolerance.
        max_iter: the conjugate solver's iteration cap.
        stats: where to record the solver's iterations, residuals and time.

    Raises:
        ValueError: ``g`` is not an MLP predictor or an unknown ``amortization``.
    """
    if model.config.g_kind != "mlp":
        raise ValueError(f"expected a TransportModel with an MLP g for the amortised solver, got "
                         f"g_kind={model.config.g_kind!r}")
    if amortization not in AMORTIZATION:
        raise ValueError(f"expected amortization in {AMORTIZATION}, got {amortization!r}")
    result = refined_inverse(model, y, cy, tol=tol, max_iter=max_iter, stats=stats)
    dual = model.potential(x, cx) + result.value
    guess = model.inverse_predict(y, cy)
    if amortization == "regression":
        amortisation = (guess - result.y.detach()).square().sum(dim=1)
    else:
        with torch.no_grad():
            ascent = y - model.forward_map(guess.detach(), cy)
        amortisation = -(ascent * guess).sum(dim=1)
    return dual + amortisation

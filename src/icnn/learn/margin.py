"""The loss-augmented energy of max-margin training (Section 5.1): ``f(x, y) - Δ(y_true, y)``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..nn.energy import BARRIER, LINEAR_TERM, EnergyTraits, energy_traits
from ..solvers.domain import Box
from ..solvers.entropy import box_negative_entropy, check_entropy_box


def hamming_margin(y_true: Tensor, y: Tensor) -> Tensor:
    r"""``Δ(y_true, y) = y_trueᵀ(1 − y) + (1 − y_true)ᵀ y``, per example.

    For binary ``y_true`` this is the Hamming distance extended linearly to ``y ∈ [0, 1]^n``;
    it is affine in ``y`` for any ``y_true``, so ``f − Δ`` stays convex in ``y``.

    Args:
        y_true: ``(batch, *shape)`` the reference labels.
        y: ``(batch, *shape)`` the labels compared with them.

    Returns:
        ``(batch,)``.
    """
    y_true, y = y_true.flatten(1), y.flatten(1)
    return (y_true * (1 - y) + (1 - y_true) * y).sum(dim=1)


class LossAugmentedEnergy(nn.Module):
    r"""``g(c, y) = f(x, y) − s·Δ(y_true, y) [− H(u)]``, convex in ``y``.

    The objective of loss-augmented inference, in the form :func:`icnn.argmin` takes (Section 5.1).

    The entropy is the one the bundle entropy method uses, on the rescaled box
    ``u = (y − lo)/(hi − lo)`` of ``domain`` (:func:`icnn.solvers.entropy.box_negative_entropy`),
    so that whichever solver minimises ``g`` minimises the same function.

    The ground truth travels inside the context: ``c = [flatten(x), flatten(y_true)]``, so the
    wrapper is batch-agnostic and a solver may evaluate any subset of the batch. Build the
    context with :meth:`context`.

    Args:
        model: energy convex in ``y`` (an icnn model, or any module exposing
            ``convex_input_shape`` and ``context_shape``).
        margin: scale ``s >= 0`` of ``Δ``.
        entropy: add ``−H(u)`` (the paper's ``f̃ = f − H``). Leave False when the solver is
            ``"bundle_entropy"``, which adds ``−H`` itself.
        domain: the box of the entropy (default ``icnn.Box(0, 1)``); needs finite bounds wherever
            ``lo < hi`` and bounds of the per-example shape (the wrapper is batch-agnostic).
            Unused without ``entropy``.

    Shape:
        ``c: (batch, context_dim)``, ``y: (batch, *convex_input_shape)`` -> ``(batch,)``, with
        ``context_dim = prod(model.context_shape or ()) + prod(convex_input_shape)``.
    """

    def __init__(self, model: nn.Module, margin: float = 1.0, *, entropy: bool = False,
                 domain: Box | None = None) -> None:
        super().__init__()
        try:
            energy_traits(model)
        except TypeError as error:
            raise ValueError(str(error)) from error
        shape = model.convex_input_shape
        if not float(margin) >= 0.0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.model = model
        self.margin = float(margin)
        self.entropy = bool(entropy)
        self.convex_input_shape = tuple(shape)
        base_context = model.context_shape
        self.model_context_shape = None if base_context is None else tuple(base_context)
        self.x_size = 0 if base_context is None else math.prod(base_context)
        self.context_shape = (self.x_size + math.prod(self.convex_input_shape),)
        self.domain = Box(0.0, 1.0) if domain is None else domain
        if self.entropy:
            lo, hi = _example_bounds(self.domain, self.convex_input_shape)
            check_entropy_box(lo, hi)
            self.register_buffer("entropy_lo", lo, persistent=False)
            self.register_buffer("entropy_hi", hi, persistent=False)

    @property
    def has_context(self) -> bool:
        """Always True: the context packs ``x`` (if any) and ``y_true``."""
        return True

    def energy_traits(self) -> EnergyTraits:
        """The model's traits plus an affine margin term, plus a barrier with the entropy."""
        traits = energy_traits(self.model).plus(LINEAR_TERM)
        if self.entropy:
            traits = traits.plus(EnergyTraits(convex=True, curvature=BARRIER))
        return traits

    def context(self, x: Tensor | None, y_true: Tensor) -> Tensor:
        """``[flatten(x), flatten(y_true)]``, ``(batch, context_dim)``."""
        if (x is None) != (self.model_context_shape is None):
            raise ValueError("x must be given exactly when the model takes a context; "
                             f"model context_shape={self.model_context_shape}, x is "
                             f"{'None' if x is None else tuple(x.shape)}")
        parts = [y_true.flatten(1)] if x is None else [x.flatten(1), y_true.flatten(1)]
        return torch.cat(parts, dim=1)

    def split(self, context: Tensor) -> tuple[Tensor | None, Tensor]:
        """Inverse of :meth:`context`: ``(x, y_true)``."""
        batch = context.shape[0]
        y_true = context[:, self.x_size:].reshape(batch, *self.convex_input_shape)
        if self.model_context_shape is None:
            return None, y_true
        return context[:, :self.x_size].reshape(batch, *self.model_context_shape), y_true

    def forward(self, context: Tensor, y: Tensor) -> Tensor:
        """``f(x, y) - s Δ(y_true, y)`` (minus the entropy when set), ``(batch,)``."""
        x, y_true = self.split(context)
        energy = self.model(y) if x is None else self.model(x, y)
        value = energy - self.margin * hamming_margin(y_true, y)
        if self.entropy:
            value = value + box_negative_entropy(y.flatten(1), self.entropy_lo.to(y.dtype),
                                                 self.entropy_hi.to(y.dtype))
        return value

    def extra_repr(self) -> str:
        """The margin scale and whether the entropy is subtracted."""
        return f"margin={self.margin}, entropy={self.entropy}"


def _example_bounds(domain: Box, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """The box's ``lo, hi`` flattened to ``(prod(shape),)`` in float64.

    Refuses bounds that differ between examples (a batch-agnostic wrapper cannot tell which example it is
    given).
    """
    out = []
    for name, bound in (("lo", domain.lo), ("hi", domain.hi)):
        t = torch.as_tensor(bound, dtype=torch.float64)
        while t.ndim > len(shape) and t.shape[0] == 1:
            t = t[0]
        try:
            out.append(torch.broadcast_to(t, shape).flatten().clone())
        except RuntimeError as error:
            raise ValueError(f"the entropy's box needs bounds of the per-example shape {shape} "
                             f"(or broadcastable to it), got {name} of shape "
                             f"{tuple(torch.as_tensor(bound).shape)}") from error
    return out[0], out[1]

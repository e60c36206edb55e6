"""An energy anchored to a direct predictor: ``E(x, y) = (w/2)||y - g(x)||^2 + s f(x, y)``.

``g`` is a baseline (:mod:`.baselines`: ridge, kernel ridge regression or their blend, chosen by
cross-validation over people, :mod:`.crossval`) and ``f`` the conv PICNN. The quadratic term is
smooth and strongly convex with modulus ``w``, so ``E`` is convex in ``y`` whenever ``f`` is, and
``w``-strongly convex; at ``f = 0`` its minimiser is ``g(x)``. Inference starts at ``g(x)`` and
the PICNN learns what ``g`` misses (the idea of the multi-label warm start from Proposition 2).
The traits are the PICNN's plus the quadratic's (:meth:`icnn.nn.energy.EnergyTraits.plus`):
smooth, ``mu = w``, with the PICNN's kinks, so it is trained and solved by unrolled gradient
descent (the implicit bundle-entropy gradient refuses kinked smooth energies).

The anchor's values are part of the context features: ``features = [PICNN features | vec g(x)]``,
computed once per batch. For training, :func:`icnn.tasks.completion.baselines.cross_fitted`
supplies out-of-fold anchor values, so that the residuals ``y - g(x)`` the PICNN learns from look
like those on new images.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...nn.energy import SMOOTH, EnergyTraits
from .baselines import Anchor
from .energy import CompletionEnergy, FeatureEnergy


class AnchoredEnergy(FeatureEnergy):
    """``E(features, y) = (w/2)||y - g||^2 + inner.energy(f, y)``, ``features = [f | vec g]``.

    Args:
        inner: the scaled conv PICNN energy.
        anchor: the frozen direct predictor ``g`` (its output shape is ``inner``'s y shape).
        weight: ``w > 0``, the strong convexity of the anchor term.

    Shape:
        Input ``features: (batch, n_inner + prod(y_shape))`` from :meth:`features`,
        ``y: (batch, *y_shape)`` -> Output ``(batch,)``.

    Raises:
        ValueError: ``weight`` not a finite number > 0, or the anchor's shape differs from y's.
    """

    def __init__(self, inner: CompletionEnergy, anchor: Anchor, weight: float) -> None:
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, int | float) \
                or not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"expected an anchor weight that is a finite number > 0, got "
                             f"{weight!r}")
        if tuple(anchor.y_shape) != tuple(inner.convex_input_shape):
            raise ValueError(f"expected an anchor predicting y of shape "
                             f"{tuple(inner.convex_input_shape)}, got {tuple(anchor.y_shape)}")
        self.inner = inner
        self.anchor = anchor.requires_grad_(False)
        self.weight = float(weight)
        self.convex_input_shape = inner.convex_input_shape
        self.n_inner = inner.context_shape[0]
        self.context_shape = (self.n_inner + math.prod(self.convex_input_shape),)
        self.config = {"inner": inner.config, "anchor": type(anchor).__name__,
                       "weight": self.weight, "constraint": inner.config["constraint"],
                       "strong_convexity": self.weight}

    @property
    def is_convex(self) -> bool:
        """Whether the inner energy is convex now."""
        return self.inner.is_convex

    @property
    def scale(self) -> float:
        """The PICNN's learned scale ``s`` (reporting)."""
        return self.inner.scale

    def energy_traits(self) -> EnergyTraits:
        """The PICNN's traits plus the quadratic's (smooth, strongly convex with ``mu = w``)."""
        quadratic = EnergyTraits(convex=True, strong_convexity=self.weight, curvature=SMOOTH,
                                 kinks=False)
        return self.inner.energy_traits().plus(quadratic)

    def features(self, x: Tensor, anchor_values: Tensor | None = None) -> Tensor:
        """``(batch, n_inner + prod(y_shape))``: the PICNN's features and ``vec g(x)``.

        Args:
            x: ``(batch, *x_shape)``.
            anchor_values: ``(batch, *y_shape)`` to use instead of ``g(x)`` (out-of-fold
                values for training examples); None: ``g(x)``.

        Raises:
            ValueError: ``anchor_values`` of the wrong shape.
        """
        if anchor_values is None:
            anchor_values = self.anchor(x)
        elif tuple(anchor_values.shape) != (x.shape[0], *self.convex_input_shape):
            raise ValueError(f"expected anchor values of shape "
                             f"{(x.shape[0], *self.convex_input_shape)}, got "
                             f"{tuple(anchor_values.shape)}")
        values = anchor_values.detach().to(x.dtype).flatten(1)
        return torch.cat([self.inner.features(x), values], dim=1)

    def start(self, features: Tensor) -> Tensor:
        """``(batch, *y_shape)``: the anchor ``g(x)`` packed in ``features`` (inference's start)."""
        return features[:, self.n_inner:].reshape(features.shape[0], *self.convex_input_shape)

    def energy(self, features: Tensor, y: Tensor) -> Tensor:
        """The energy without input validation (for inner loops)."""
        anchor = features[:, self.n_inner:].reshape(y.shape)
        quadratic = 0.5 * self.weight * (y - anchor).square().flatten(1).sum(1)
        return quadratic + self.inner.energy(features[:, :self.n_inner], y)


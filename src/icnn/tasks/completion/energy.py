"""The completion energy: a conv PICNN with a learned positive scale, read from x-features.

Two practical changes to "call the ConvPICNN on (x, y)", neither of which touches convexity:

* **Scale.** The library's ICNN initialisation keeps the energy O(1), so at the start
  ``grad_y f`` is about 1e-2 per pixel: a bundle-entropy prediction ``argmin f - H`` is then
  ``sigmoid(-grad f) ~ 0.5`` everywhere, and 10 GD steps of size 0.01 do not move ``y``. (The
  authors' TF initialisation made the energy hundreds of times larger.) The energy is therefore
  ``s * f(x, y)`` with ``s = exp(log_scale) > 0`` learned, started at ``scale``; a positive
  multiple of a convex function is convex. For bundle entropy ``1/s`` is the temperature of the
  entropy term.
* **x once.** The solvers evaluate ``f(x, .)`` many times, and the implicit bundle-entropy
  gradient re-evaluates it at every plane. Here the context is the packed
  :meth:`ConvPICNN.context_features` (computed once per batch, with its graph), so every
  evaluation runs only the y-path and the x-path is differentiated once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ...nn.base import ConvexModel
from ...nn.conv import ConvPICNN
from ...nn.energy import EnergyTraits


class FeatureEnergy(ConvexModel):
    """An energy of precomputed context features.

    An energy of precomputed context features: ``E(features, y)`` with
    ``features = self.features(x)``.

    Subclasses implement ``features(x)`` and ``energy(features, y)`` (unvalidated, for inner
    loops); this class gives the validated ``forward`` and the solver hook ``condition``.
    """

    def features(self, x: Tensor) -> Tensor:
        """Everything the energy needs from ``x``, ``(batch, n_features)``."""
        raise NotImplementedError

    def energy(self, features: Tensor, y: Tensor) -> Tensor:
        """The energy ``(batch,)`` of ``y`` given precomputed ``features``."""
        raise NotImplementedError

    def condition(self, features: Tensor) -> Callable[[Tensor, Tensor | None], Tensor]:
        """The solver hook: ``energy(y, index)`` for these features."""

        def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
            return self.energy(features if index is None else features[index], y)

        return energy

    def forward(self, features: Tensor, y: Tensor) -> Tensor:
        """The energy ``(batch,)`` of ``y`` given ``features`` (inputs checked)."""
        self._check_inputs(features, y)
        return self.energy(features, y)


class CompletionEnergy(FeatureEnergy):
    """``E(features, y) = exp(log_scale) * f(x, y)`` with ``features = model.context_features(x)``.

    Args:
        model: the conv PICNN (or its ``convex=False`` ablation).
        scale: initial value of the positive scale ``s``.

    Shape:
        Input ``features: (batch, model.n_context_features)``, ``y: (batch, *y_shape)`` ->
        Output ``(batch,)``.
    """

    def __init__(self, model: ConvPICNN, scale: float = 1.0) -> None:
        super().__init__()
        if not scale > 0 or not math.isfinite(scale):
            raise ValueError(f"energy scale must be a finite number > 0, got {scale}")
        self.model = model
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale), dtype=model.dtype,
                                                   device=model.device))
        self.config = {"model": dict(model.config), "scale": float(scale),
                       "constraint": model.config["constraint"], "strong_convexity": 0.0}
        self.convex_input_shape = model.convex_input_shape
        self.context_shape = (model.n_context_features,)

    @property
    def is_convex(self) -> bool:
        """Whether the conv PICNN is convex now."""
        return self.model.is_convex

    def energy_traits(self) -> EnergyTraits:
        """The conv PICNN's traits, scaled by the positive ``s``."""
        return self.model.energy_traits().scaled(self.scale)

    @property
    def scale(self) -> float:
        """The learned positive scale ``s`` of the energy."""
        return float(self.log_scale.detach().exp())

    def features(self, x: Tensor) -> Tensor:
        """``(batch, n_context_features)`` from images ``x: (batch, *x_shape)`` (validated)."""
        self.model._check_inputs(x, x.new_zeros(x.shape[0], *self.convex_input_shape))
        return self.model.context_features(x)

    def energy(self, features: Tensor, y: Tensor) -> Tensor:
        """The energy without input validation (for inner loops)."""
        return self.log_scale.exp() * self.model.energy_from_features(features, y)


def load_completion_energy(path: str | os.PathLike, *, allow_nonconvex: bool = False,
                           ) -> CompletionEnergy:
    """The scaled energy saved by ``icnn completion`` (``<method>/model.safetensors``).

    The file holds the conv PICNN (read by :func:`icnn.load`, which refuses a non-convex model
    unless ``allow_nonconvex``) and, in its metadata, the learned ``energy_scale``.

    Raises:
        ValueError: a file whose metadata has no positive finite ``energy_scale``, or what
            :func:`icnn.load` refuses.
    """
    from ...checkpoint import load, load_metadata

    scale = load_metadata(path).get("energy_scale")
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise ValueError(f"expected a completion model file with an energy_scale in its metadata, "
                         f"got {path} with {scale!r}")
    return CompletionEnergy(load(path, allow_nonconvex=allow_nonconvex), scale)

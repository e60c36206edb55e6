"""Exponential moving average of a model's weights (Polyak averaging), for evaluation.

After every optimiser step ``shadow <- d * shadow + (1 - d) * weights``, with the decay warmed
up as ``d_t = min(decay, (1 + t) / (10 + t))`` so early averages are not dominated by the
initial weights. Evaluating the averaged weights removes much of the step-to-step noise of a
small-data fit.

Averaging keeps convexity: a constrained weight is kept non-negative either by projection
(an average of non-negative tensors is non-negative) or by a parametrisation (the average of the
raw tensors is mapped through the same softplus / exp). The shadow holds the state-dict
entries, so parametrised models average their raw tensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class WeightAverage:
    """The exponential moving average of ``model``'s floating-point state.

    Args:
        model: the trained module (its state dict is read after each step).
        decay: ``d`` in ``(0, 1)``; about ``1 / (1 - d)`` steps are averaged.

    Example:
        >>> average = WeightAverage(model, 0.99)
        >>> for batch in batches:
        ...     step(model, batch)
        ...     average.update()
        >>> with average.applied():
        ...     evaluate(model)
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"expected an averaging decay in (0, 1), got {decay}")
        self.model = model
        self.decay = decay
        self.steps = 0
        self.shadow: dict[str, Tensor] = {
            name: value.detach().clone() for name, value in model.state_dict().items()
            if value.is_floating_point()
        }

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average (call after each optimiser step)."""
        decay = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        state = self.model.state_dict()
        for name, average in self.shadow.items():
            average.lerp_(state[name].detach(), 1.0 - decay)
        self.steps += 1

    @contextmanager
    def applied(self) -> Iterator[nn.Module]:
        """Temporarily load the averaged weights into the model (restored on exit)."""
        saved = {name: value.detach().clone() for name, value in self.model.state_dict().items()
                 if name in self.shadow}
        self.model.load_state_dict(self.shadow, strict=False)
        try:
            yield self.model
        finally:
            self.model.load_state_dict(saved, strict=False)

    def copy_to_model(self) -> None:
        """Load the averaged weights into the model for good."""
        self.model.load_state_dict(self.shadow, strict=False)

    def state_dict(self) -> dict[str, object]:
        """Steps, decay and the averaged tensors, for a checkpoint."""
        return {"steps": self.steps, "decay": self.decay, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            ValueError: the saved average does not match this model's state.
        """
        shadow = state["shadow"]
        if not isinstance(shadow, dict) or set(shadow) != set(self.shadow):
            raise ValueError("the saved weight average does not match this model's state")
        for name, value in shadow.items():
            self.shadow[name].copy_(value)
        self.steps = int(state["steps"])  # type: ignore[call-overload]

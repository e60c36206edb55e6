"""Common behaviour of every input convex model in the library."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from .activations import ConvexActivation
from .conditioned import accumulate
from .energy import PIECEWISE_LINEAR, SMOOTH, EnergyTraits
from .input_checks import check_tensor, validation_enabled
from .layers import CONSTRAINED_LAYERS, nonnegativity_issues


class ConvexModel(nn.Module):
    """Base class: an energy ``f(x, y)`` convex in ``y`` (``x`` absent for fully convex models).

    Subclasses set ``self.config`` (constructor keyword arguments, JSON-serialisable, with
    ``constraint`` and ``strong_convexity``), ``convex_input_shape`` and ``context_shape`` (None
    when the model takes no ``x``), and keep their hidden activations in ``self.activations``
    (an ``nn.ModuleList``, layer 0 first).

    Every model implements :class:`icnn.ConvexEnergy`: :meth:`energy_traits` says what it is now
    (convex or not and why, ``mu``, piecewise-linear or smooth), and solvers read only that.

    After ``load_state_dict`` the constrained weights are re-checked: a state with negative
    ``W^(z)`` (possible only with ``constraint="project"``) is refused.
    """

    config: dict[str, Any]
    convex_input_shape: tuple[int, ...]
    context_shape: tuple[int, ...] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.register_load_state_dict_post_hook(_refuse_negative_after_load)

    @property
    def has_context(self) -> bool:
        """True when the model takes a context ``x`` (a PICNN)."""
        return self.context_shape is not None

    @property
    def strong_convexity(self) -> float:
        """``mu`` of the added ``(mu/2)||y||^2`` (0 when none)."""
        return float(self.config.get("strong_convexity", 0.0))

    @property
    def constraint(self) -> str:
        """How ``W^(z) >= 0`` is kept: ``"softplus"``, ``"exp"`` or ``"project"``."""
        return str(self.config["constraint"])

    def energy_traits(self) -> EnergyTraits:
        """What this model is in ``y`` now (see :class:`icnn.EnergyTraits`).

        ``convex`` is re-checked at every call, so a ``constraint="project"`` model that an
        optimiser step pushed below zero reports itself non-convex until ``project_()``.
        """
        issues = tuple(self.structural_issues())
        linear = all(a.pieces() is not None for _, a in self.convex_activations())
        return EnergyTraits(convex=not issues, strong_convexity=self.strong_convexity,
                            curvature=PIECEWISE_LINEAR if linear else SMOOTH,
                            constraint=self.constraint, issues=issues)

    def structural_issues(self) -> list[str]:
        """Why the model is not convex in ``y`` now.

        Constrained weights with negative or non-finite entries, a non-monotone activation after layer 0
        (empty list: none).
        """
        issues = nonnegativity_issues(list(self.constrained_layers()))
        activations = self._modules.get("activations")  # the documented place, see the class doc
        if isinstance(activations, nn.ModuleList):
            for i, activation in enumerate(activations):
                if i > 0 and not activation.nondecreasing:
                    issues.append(f"activations.{i} ({activation.name}) is not non-decreasing "
                                  "but is not in layer 0")
        return issues

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the parameters."""
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        return next(self.parameters()).device

    def constrained_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """``(name, layer)`` for every layer whose weight must stay non-negative."""
        for name, module in self.named_modules():
            if isinstance(module, CONSTRAINED_LAYERS):
                yield name, module

    def convex_activations(self) -> Iterator[tuple[str, ConvexActivation]]:
        """``(name, activation)`` for every convex activation module of the model."""
        for name, module in self.named_modules():
            if isinstance(module, ConvexActivation):
                yield name, module

    @torch.no_grad()
    def project_(self) -> ConvexModel:
        """Clamp every raw constrained weight to ``>= 0`` (the paper's projection).

        Call it after each optimiser step when ``constraint="project"``; with the default
        parametrised constraints it does nothing, since the weights cannot leave the set.
        """
        for _, layer in self.constrained_layers():
            layer.project_()
        return self

    def _check_inputs(self, x: Tensor | None, y: Tensor) -> None:
        if not validation_enabled():
            return
        dtype = self.dtype
        check_tensor("y", y, self.convex_input_shape, dtype=dtype)
        if self.context_shape is not None:
            check_tensor("x", x, self.context_shape, dtype=dtype, batch=y.shape[0])

    def hand_written_backward(self) -> bool:
        """True when the model's hand-written backward pass is its gradient (see :mod:`icnn.nn.conditioned`).

        It is written for the stock :meth:`quadratic_term` and registry activations: a subclass
        that overrides either (or an activation without a declared backward) makes the
        conditioned energy fall back to autograd.
        """
        return (type(self).quadratic_term is ConvexModel.quadratic_term
                and all(type(a) is ConvexActivation and a.has_backward
                        for a in self._modules["activations"]))

    def start_gradient(self, y: Tensor, start: Tensor | None) -> Tensor | None:
        """``start`` plus the gradient of :meth:`quadratic_term`'s sum, as autograd adds them.

        The quadratic term is recorded after the network, so its gradient arrives first:
        ``(mu / 2) * (2 y)``, in that order (``mu * y`` rounds differently where ``2 y``
        overflows). ``start`` itself (None: nothing yet) when ``strong_convexity == 0``.
        """
        mu = self.strong_convexity
        return start if mu == 0.0 else accumulate(start, (0.5 * mu) * (2.0 * y))

    def quadratic_term(self, y: Tensor) -> Tensor:
        """``(mu / 2) ||y||^2`` per example, ``(batch,)``; zero when ``strong_convexity == 0``."""
        mu = self.strong_convexity
        if mu == 0.0:
            return y.new_zeros(y.shape[0])
        return 0.5 * mu * y.flatten(1).square().sum(dim=1)

    def extra_repr(self) -> str:
        """The constraint and the strong-convexity modulus."""
        return f"constraint={self.constraint}, strong_convexity={self.strong_convexity}"


def check_strong_convexity(mu: float) -> float:
    """``mu`` as a float, checked ``>= 0``.

    Raises:
        ValueError: ``mu`` negative or NaN.
    """
    mu = float(mu)
    if not mu >= 0.0:
        raise ValueError(f"strong_convexity must be >= 0, got {mu}")
    return mu


def check_sizes(name: str, sizes: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """Validate a list of layer widths."""
    try:
        values = tuple(int(s) for s in sizes)
    except TypeError as error:
        raise ValueError(f"{name} must be a sequence of positive ints, got {sizes!r}") from error
    if (not values and not allow_empty) or any(v <= 0 for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {sizes!r}")
    return values


def check_positive_int(name: str, value: Any) -> int:
    """``value`` checked to be an int ``> 0`` (not a bool); ``name`` is used in the message.

    Raises:
        ValueError: ``value`` is not a positive int.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _refuse_negative_after_load(module: nn.Module, incompatible_keys: Any) -> None:
    for name, layer in module.constrained_layers():  # type: ignore[attr-defined]
        weight = layer.weight.detach()
        if not bool(torch.isfinite(weight).all()):
            raise ValueError(f"loaded state has non-finite constrained weight {name}.weight")
        if bool((weight < 0).any()):
            raise ValueError(
                f"loaded state breaks convexity (non-convex): {name}.weight must be >= 0, "
                f"got min {float(weight.min()):.4g}"
            )

"""Registry of activations allowed inside an input convex network.

Proposition 1 of the paper needs every activation after the first layer to be **convex and
non-decreasing**; the first layer's argument is affine in the convex input, so there a merely
convex activation (``abs``, ``square``) is allowed too. Anything else is refused with a clear error.

Piecewise-linear activations record their pieces ``g(t) = max_k (a_k t + c_k)`` so that the exact
solver can write the network as a linear program.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_aten = torch.ops.aten


@dataclass(frozen=True)
class ActivationSpec:
    """What the library knows about one activation function.

    Attributes:
        name: registry key.
        nondecreasing: True if allowed in any layer; False if convex only (first layer only).
        forward: ``(t, **params) -> g(t)``.
        check_params: raises ``ValueError`` for parameters that break convexity or monotonicity.
        pieces: ``params -> ((a_k, c_k), ...)`` for piecewise-linear ``g(t) = max_k a_k t + c_k``.
        defaults: default parameters.
        backward: ``(grad, t, g(t), **params) -> grad * g'(t)`` computed by the very operation
            autograd's backward of ``forward`` runs (so hand-written backward passes agree with
            autograd to the bit, :mod:`icnn.nn.conditioned`); None: not declared (models then
            fall back to autograd).
    """

    name: str
    nondecreasing: bool
    forward: Callable[..., Tensor]
    check_params: Callable[[Mapping[str, float]], None] = lambda params: None
    pieces: Callable[[Mapping[str, float]], tuple[tuple[float, float], ...]] | None = None
    defaults: Mapping[str, float] = field(default_factory=dict)
    backward: Callable[..., Tensor] | None = None


def _require_range(name: str, value: float, lo: float, hi: float, why: str) -> None:
    if not (lo <= value <= hi) or math.isnan(value):
        raise ValueError(f"{name} must lie in [{lo}, {hi}] ({why}), got {value}")


def _check_leaky(params: Mapping[str, float]) -> None:
    _require_range(
        "leaky_relu negative_slope", params["negative_slope"], 0.0, 1.0,
        "a slope outside [0, 1] makes leaky_relu non-convex or decreasing",
    )


def _check_elu(params: Mapping[str, float]) -> None:
    _require_range(
        "elu alpha", params["alpha"], 0.0, 1.0,
        "elu is convex and non-decreasing only for 0 <= alpha <= 1",
    )


def _check_positive(key: str) -> Callable[[Mapping[str, float]], None]:
    def check(params: Mapping[str, float]) -> None:
        if not params[key] > 0:
            raise ValueError(f"{key} must be > 0, got {params[key]}")

    return check


ACTIVATIONS: dict[str, ActivationSpec] = {
    spec.name: spec
    for spec in (
        ActivationSpec("relu", True, lambda t: F.relu(t), pieces=lambda p: ((0.0, 0.0), (1.0, 0.0)),
                       backward=lambda grad, t, out: _aten.threshold_backward(grad, out, 0)),
        ActivationSpec(
            "leaky_relu", True,
            lambda t, negative_slope: F.leaky_relu(t, negative_slope),
            check_params=_check_leaky,
            pieces=lambda p: ((p["negative_slope"], 0.0), (1.0, 0.0)),
            defaults={"negative_slope": 0.01},
            backward=lambda grad, t, out, negative_slope: _aten.leaky_relu_backward(
                grad, t, negative_slope, False),
        ),
        ActivationSpec(
            "softplus", True, lambda t, beta: F.softplus(t, beta=beta),
            check_params=_check_positive("beta"), defaults={"beta": 1.0},
            backward=lambda grad, t, out, beta: _aten.softplus_backward(grad, t, beta, 20.0),
        ),
        ActivationSpec("elu", True, lambda t, alpha: F.elu(t, alpha), check_params=_check_elu,
                       defaults={"alpha": 1.0},
                       backward=lambda grad, t, out, alpha: _aten.elu_backward(
                           grad, alpha, 1, 1, False, t)),
        ActivationSpec("celu", True, lambda t, alpha: F.celu(t, alpha),
                       check_params=_check_positive("alpha"), defaults={"alpha": 1.0}),
        ActivationSpec("squared_relu", True, lambda t: F.relu(t).square()),
        ActivationSpec("identity", True, lambda t: t, pieces=lambda p: ((1.0, 0.0),),
                       backward=lambda grad, t, out: grad),
        # convex but not monotone: only valid where the argument is affine in the convex input
        ActivationSpec("abs", False, lambda t: t.abs(), pieces=lambda p: ((-1.0, 0.0), (1.0, 0.0))),
        ActivationSpec("square", False, lambda t: t.square()),
    )
}
"""The activation registry, name -> spec: convex non-decreasing ones (any layer) and convex
ones allowed only in the first layer (``abs``, ``square``); any other name is refused."""

ActivationLike = "str | Mapping[str, Any] | ConvexActivation"


class ConvexActivation(nn.Module):
    """A registered convex activation ``g`` applied elementwise.

    Args:
        name: a key of :data:`ACTIVATIONS` (``relu``, ``leaky_relu``, ``softplus``, ``elu``,
            ``celu``, ``squared_relu``, ``identity``, and first-layer-only ``abs``, ``square``).
        **params: the activation's parameters, e.g. ``negative_slope=0.01`` for ``leaky_relu``.

    Shape:
        Input ``(*)`` -> Output ``(*)``.
    """

    def __init__(self, name: str, **params: float) -> None:
        super().__init__()
        if name not in ACTIVATIONS:
            raise ValueError(
                f"unsupported activation {name!r}: expected one of {sorted(ACTIVATIONS)} "
                "(ICNN layers need convex, non-decreasing activations)"
            )
        spec = ACTIVATIONS[name]
        unknown = set(params) - set(spec.defaults)
        if unknown:
            raise ValueError(
                f"activation {name!r} takes parameters {sorted(spec.defaults)}, got {sorted(unknown)}"
            )
        self.name = name
        self.params = {**spec.defaults, **{k: float(v) for k, v in params.items()}}
        spec.check_params(self.params)

    @property
    def spec(self) -> ActivationSpec:
        """The registry entry of this activation."""
        return ACTIVATIONS[self.name]

    @property
    def nondecreasing(self) -> bool:
        """True when the activation is non-decreasing (allowed after the first layer)."""
        return self.spec.nondecreasing

    def pieces(self) -> tuple[tuple[float, float], ...] | None:
        """Affine pieces ``((a_k, c_k), ...)`` with ``g(t) = max_k a_k t + c_k``, or None."""
        return None if self.spec.pieces is None else self.spec.pieces(self.params)

    def forward(self, t: Tensor) -> Tensor:
        """The activation applied elementwise, same shape as ``t``."""
        return self.spec.forward(t, **self.params)

    @property
    def has_backward(self) -> bool:
        """True when the registry declares this activation's backward (:meth:`backward`)."""
        return self.spec.backward is not None

    def backward(self, grad: Tensor, t: Tensor, out: Tensor) -> Tensor:
        """``grad * g'(t)`` as autograd computes it, for ``out = g(t)``; all the same shape.

        Raises:
            ValueError: an activation whose backward the registry does not declare.
        """
        if self.spec.backward is None:
            raise ValueError(f"activation {self.name!r} declares no backward; expected one of "
                             f"{sorted(k for k, v in ACTIVATIONS.items() if v.backward)}")
        return self.spec.backward(grad, t, out, **self.params)

    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., **params}``, accepted back by :func:`make_activation`."""
        return {"name": self.name, **self.params}

    def extra_repr(self) -> str:
        """The name and the parameters."""
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}" + (f", {args}" if args else "")


def make_activation(activation: Any, *, first_layer: bool = False) -> ConvexActivation:
    """Build a :class:`ConvexActivation` from a name, a config dict or an instance.

    Args:
        activation: ``"relu"``, ``{"name": "leaky_relu", "negative_slope": 0.1}`` or a
            :class:`ConvexActivation`.
        first_layer: allow convex but non-monotone activations (``abs``, ``square``).

    Raises:
        ValueError: unknown name, bad parameters, or a non-monotone activation after layer 0.
    """
    if isinstance(activation, ConvexActivation):
        result = ConvexActivation(activation.name, **activation.params)
    elif isinstance(activation, str):
        result = ConvexActivation(activation)
    elif isinstance(activation, Mapping) and "name" in activation:
        params = {k: v for k, v in activation.items() if k != "name"}
        result = ConvexActivation(str(activation["name"]), **params)
    else:
        raise ValueError(
            "activation must be a registered name, a dict with a 'name' key or a "
            f"ConvexActivation, got {activation!r} of type {type(activation).__name__}"
        )
    if not first_layer and not result.nondecreasing:
        raise ValueError(
            f"activation {result.name!r} is convex but not non-decreasing: it is allowed only in "
            "the first layer, whose argument is affine in the convex input (Proposition 1)"
        )
    return result

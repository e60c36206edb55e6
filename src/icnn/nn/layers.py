"""Linear maps whose weights are kept non-negative: the ``W^(z)`` of equations (2) and (3)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .constraints import check_constraint, constrain_nonnegative_, project_, raw_weight


def nonnegativity_issue(layer: nn.Module) -> str | None:
    """What breaks ``W >= 0`` in a constrained layer now, or None.

    Reads the raw tensor only (no parametrisation is evaluated): a softplus weight is
    non-negative for any finite raw value, an exp weight for any raw value below the overflow
    point, a projected weight only once it has been clamped.
    """
    raw = raw_weight(layer).detach()
    if not bool(torch.isfinite(raw).all()):
        return "has non-finite entries"
    if parametrize.is_parametrized(layer, "weight"):
        if layer.constraint == "exp" and float(raw.max()) >= math.log(torch.finfo(raw.dtype).max):
            return "overflows (exp of its raw parameter is inf)"
        return None
    if bool((raw < 0).any()):
        return (f"has {int((raw < 0).sum())} negative entries (min {float(raw.min()):.3e}); "
                "call model.project_()")
    return None


class NonNegativeLinear(nn.Linear):
    r"""``y = W x (+ b)`` with ``W >= 0`` elementwise, kept by ``constraint``.

    Args:
        in_features, out_features, bias: as :class:`torch.nn.Linear`.
        constraint: ``"softplus"``, ``"exp"`` or ``"project"`` (see :mod:`icnn.nn.constraints`).

    Shape:
        Input ``(N, *, in_features)`` -> Output ``(N, *, out_features)``.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = False, *,
        constraint: str = "softplus", device=None, dtype=None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.constraint = check_constraint(constraint)
        constrain_nonnegative_(self, constraint)

    @property
    def raw_weight(self) -> Tensor:
        return raw_weight(self)

    def project_(self) -> None:
        """Clamp the weight to ``>= 0`` (the paper's projection; no-op when parametrised)."""
        project_(self)

    def nonnegativity_issue(self) -> str | None:
        """What breaks ``W >= 0`` now, or None (see :func:`nonnegativity_issue`)."""
        return nonnegativity_issue(self)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, constraint={self.constraint}"


class NonNegativeConv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` with non-negative filters (the convolutional ``W^(z)``).

    Shape:
        Input ``(N, C_in, H, W)`` -> Output ``(N, C_out, H_out, W_out)``.
    """

    def __init__(self, *args, constraint: str = "softplus", **kwargs) -> None:
        kwargs.setdefault("bias", False)
        super().__init__(*args, **kwargs)
        self.constraint = check_constraint(constraint)
        constrain_nonnegative_(self, constraint)

    @property
    def raw_weight(self) -> Tensor:
        return raw_weight(self)

    def project_(self) -> None:
        """Clamp the filters to ``>= 0`` (no-op when parametrised)."""
        project_(self)

    def nonnegativity_issue(self) -> str | None:
        """What breaks ``W >= 0`` now, or None (see :func:`nonnegativity_issue`)."""
        return nonnegativity_issue(self)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, constraint={self.constraint}"


CONSTRAINED_LAYERS = (NonNegativeLinear, NonNegativeConv2d)

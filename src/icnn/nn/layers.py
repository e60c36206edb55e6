"""Linear maps whose weights are kept non-negative: the ``W^(z)`` of equations (2) and (3)."""

from __future__ import annotations

from torch import Tensor, nn

from .constraints import check_constraint, constrain_nonnegative_, project_, raw_weight


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

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, constraint={self.constraint}"


CONSTRAINED_LAYERS = (NonNegativeLinear, NonNegativeConv2d)

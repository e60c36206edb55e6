"""Linear maps whose weights are kept non-negative: the ``W^(z)`` of equations (2) and (3)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .constraints import check_constraint, constrain_nonnegative_, project_, raw_weight
from .energy import PIECEWISE_LINEAR, SMOOTH, EnergyTraits


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


def nonnegativity_issues(layers: list[tuple[str, nn.Module]]) -> list[str]:
    """``"<name>.weight <issue>"`` for every layer whose weight breaks ``W >= 0`` now.

    The same verdicts as :func:`nonnegativity_issue` per layer, read with one host
    synchronisation for all layers (solvers re-read the traits at every call): each raw tensor's
    minimum and maximum (NaN propagates into both) decide whether a layer can be at fault, and
    only those are examined by :func:`nonnegativity_issue` for the message.
    """
    raws = [(name, layer, raw_weight(layer).detach()) for name, layer in layers]
    if any(raw.is_meta for _, _, raw in raws):  # no values to read: each layer's own verdict
        return [f"{name}.weight {issue}" for name, layer, _ in raws
                if (issue := layer.nonnegativity_issue()) is not None]
    extremes = [torch.stack(torch.aminmax(raw)).double() for _, _, raw in raws if raw.numel()]
    if len({t.device for t in extremes}) == 1:
        values = torch.stack(extremes).tolist()
    else:  # none, or layers on several devices
        values = [t.tolist() for t in extremes]
    suspects, k = [], 0
    for name, layer, raw in raws:
        if not raw.numel():
            continue
        low, high = values[k]
        k += 1
        if not parametrize.is_parametrized(layer, "weight"):  # project: clamped or not
            fine = low >= 0.0 and high < math.inf
        elif layer.constraint == "exp":
            fine = low > -math.inf and high < math.log(torch.finfo(raw.dtype).max)
        else:
            fine = low > -math.inf and high < math.inf
        if not fine or type(layer).nonnegativity_issue not in _STOCK_CHECKS:
            suspects.append((name, layer))  # NaN compares False: a suspect; own checks: asked
    return [f"{name}.weight {issue}" for name, layer in suspects
            if (issue := layer.nonnegativity_issue()) is not None]


class NonNegativeLinear(nn.Linear):
    r"""``y = W x (+ b)`` with ``W >= 0`` elementwise, kept by ``constraint``.

    Args:
        in_features: as :class:`torch.nn.Linear`.
        out_features: as :class:`torch.nn.Linear`.
        bias: as :class:`torch.nn.Linear`.
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
        """The unconstrained parameter behind the weight (the weight itself under ``project``)."""
        return raw_weight(self)

    def project_(self) -> None:
        """Clamp the weight to ``>= 0`` (the paper's projection; no-op when parametrised)."""
        project_(self)

    def nonnegativity_issue(self) -> str | None:
        """What breaks ``W >= 0`` now, or None (see :func:`nonnegativity_issue`)."""
        return nonnegativity_issue(self)

    def extra_repr(self) -> str:
        """The ``nn.Linear`` settings and the constraint."""
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
        """The unconstrained parameter behind the filters (the filters under ``project``)."""
        return raw_weight(self)

    def project_(self) -> None:
        """Clamp the filters to ``>= 0`` (no-op when parametrised)."""
        project_(self)

    def nonnegativity_issue(self) -> str | None:
        """What breaks ``W >= 0`` now, or None (see :func:`nonnegativity_issue`)."""
        return nonnegativity_issue(self)

    def extra_repr(self) -> str:
        """The ``nn.Conv2d`` settings and the constraint."""
        return f"{super().extra_repr()}, constraint={self.constraint}"


CONSTRAINED_LAYERS = (NonNegativeLinear, NonNegativeConv2d)
# the layers' own checks that the one-synchronisation prefilter of nonnegativity_issues mirrors
_STOCK_CHECKS = (NonNegativeLinear.nonnegativity_issue, NonNegativeConv2d.nonnegativity_issue)


def check_quadratic_rank(rank: object, first_activation: nn.Module, n_layers: int,
                         y_dim: int | None = None) -> int:
    """Validate ``quadratic_rank`` (an int ``>= 0``, at most ``y_dim``).

    Quadratic terms inside layer 0 need a non-decreasing first activation (``abs(q(y))`` is not convex).
    A rank above the input dimension ``y_dim`` adds parameters and no expressiveness (a ``D x D``
    PSD matrix has rank at most ``D``), so it is refused rather than silently clamped.

    Raises:
        ValueError: a rank that is not an int ``>= 0``, a rank above ``y_dim``, or a non-monotone
            first activation.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"expected quadratic_rank an int >= 0, got {rank!r}")
    if y_dim is not None and rank > y_dim:
        raise ValueError(f"expected quadratic_rank <= y_dim = {y_dim} (a PSD matrix of y has rank at "
                         f"most {y_dim}), got {rank}")
    if rank and n_layers > 1 and not first_activation.nondecreasing:
        raise ValueError(f"expected a non-decreasing first_activation with quadratic_rank > 0 "
                         f"(a convex quadratic inside {first_activation.name} is not convex), "
                         f"got {first_activation.name}")
    return rank


class PSDQuadratic(nn.Module):
    r"""Per-unit convex quadratics of the input, low-rank plus diagonal.

    .. math:: q_o(y) = \sum_{r=1}^{R} (a_{r,o}^T y)^2 + \sum_j d_{o,j}\, y_j^2,
              \qquad d \ge 0,

    i.e. ``q_o(y) = y^T (A_o A_o^T + diag(d_o)) y`` with a positive semi-definite matrix per unit:
    the quadratic skip terms of the DenseICNN of Korotin et al. (2021), with a diagonal added.
    Convex by construction: the factors ``a`` are free, ``d`` is kept non-negative by
    ``constraint`` (a :class:`NonNegativeLinear` on ``y^2``, so the model's checks and
    ``project_()`` see it).

    Args:
        in_features: size of ``y``.
        out_features: number of units ``o``.
        rank: ``R >= 1``, the rank of each unit's low-rank part.
        constraint: ``"softplus"``, ``"exp"`` or ``"project"`` for ``d``.
        device, dtype: factory arguments.

    Shape:
        Input ``(N, in_features)`` -> Output ``(N, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, *,
                 constraint: str = "softplus", device=None, dtype=None) -> None:
        super().__init__()
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"expected rank a positive int, got {rank!r}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.factors = nn.Parameter(torch.empty(rank * out_features, in_features, device=device,
                                                dtype=dtype))
        self.diagonal = NonNegativeLinear(in_features, out_features, constraint=constraint,
                                          device=device, dtype=dtype)

    def forward(self, y: Tensor) -> Tensor:
        """``q(y)`` for ``y: (batch, in_features)``, ``(batch, out_features)``."""
        return self.bind()(y)

    def bind(self) -> Callable[[Tensor], Tensor]:
        """``q(y)`` with the constrained diagonal read once (for solver loops)."""
        factors, diagonal = self.factors, self.diagonal.weight
        rank, units = self.rank, self.out_features

        def quadratic(y: Tensor) -> Tensor:
            projected = nn.functional.linear(y, factors)  # (N, R * out)
            low_rank = projected.reshape(y.shape[0], rank, units).square().sum(1)
            return low_rank + nn.functional.linear(y.square(), diagonal)

        return quadratic

    def traits(self, base: EnergyTraits, output_unit: int) -> EnergyTraits:
        """The traits of a model with these terms, from those it declares without them.

        The quadratics make it smooth, not piecewise linear (it keeps ``base``'s kinks), and
        the unit ``output_unit``, which enters the output with weight 1, adds strong convexity
        ``2 min_j d_{o,j}`` (its Hessian is ``2 (A_o A_o^T + diag(d_o))``).
        """
        diagonal = self.diagonal.weight.detach()[output_unit]
        extra = 2.0 * float(diagonal.min()) if bool(torch.isfinite(diagonal).all()) else 0.0
        curvature = SMOOTH if base.curvature == PIECEWISE_LINEAR else base.curvature
        return EnergyTraits(convex=base.convex,
                            strong_convexity=base.strong_convexity + max(extra, 0.0),
                            curvature=curvature, constraint=base.constraint, issues=base.issues,
                            kinks=base.kinks)

    def unit_matrix(self, unit: int) -> Tensor:
        """``A_o A_o^T + diag(d_o)`` ``(in, in)`` of one unit, so ``q_o(y) = y^T M y``."""
        factors = self.factors.reshape(self.rank, self.out_features, self.in_features)[:, unit]
        return factors.T @ factors + torch.diag(self.diagonal.weight[unit])

    def extra_repr(self) -> str:
        """Input and output sizes and the rank."""
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"

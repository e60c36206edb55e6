"""The two networks of a neural W2 solver and the maps they define.

``f`` is the convex potential on the source side: ``T = ∇_y f(x, ·)`` pushes P to Q (Brenier).
``g`` gives the inverse map ``Q → P``:

- ``"icnn"`` (MM, W2GN): a second convex potential, ``T⁻¹ = ∇g ≈ ∇f*``;
- ``"mlp"`` (amortised conjugate): a network predicting ``y*(z) = argmax_y ⟨y, z⟩ − f(y)``,
  the warm start of :func:`icnn.conjugate`, whose refined answer is the inverse map.

With a context width ``C > 0`` both are conditional: ``f`` is a :class:`icnn.PICNN` ``f(x, y)``
(one map per context row ``x``) and ``g`` takes ``x`` too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ..nn import FICNN, PICNN
from ..nn.energy import EnergyTraits
from ..potentials.gradient_map import gradient_map

G_KINDS = ("icnn", "mlp")

__all__ = ["G_KINDS", "PotentialConfig", "TransportModel"]


@dataclass(frozen=True)
class PotentialConfig:
    """Architecture of a :class:`TransportModel` (stored in its checkpoint's header).

    Attributes:
        dim: D, the dimension of the samples.
        context_dim: C, the width of the per-sample context (0: unconditional maps).
        hidden: hidden widths of ``f`` and ``g``.
        activation: convex, non-decreasing and smooth activation of the ICNNs (a
            :mod:`icnn.nn.activations` name, e.g. ``"celu"`` or ``"softplus"``); one with kinks
            (relu, leaky_relu) is refused by :class:`TransportModel`.
        strong_convexity: ``mu`` of ``f`` (and of an ICNN ``g``), keeps the maps invertible.
        g_kind: ``"icnn"`` or ``"mlp"`` (see the module doc).
        quadratic_rank: rank of the PSD quadratic terms of every ICNN unit (0: none;
            :class:`icnn.FICNN`'s ``quadratic_rank``); needed by the Gaussian-map start.
        output_quadratic: add a full-rank PSD quadratic ``½ yᵀ L Lᵀ y + bᵀ y`` to the output of
            each potential (:class:`QuadraticOutput`) so that the Gaussian start is exact at any
            quadratic rank (False: the models of before, bit for bit).
    """

    dim: int
    context_dim: int = 0
    hidden: tuple[int, ...] = (64, 64, 32)
    activation: str = "celu"
    strong_convexity: float = 1e-3
    g_kind: str = "icnn"
    quadratic_rank: int = 0
    output_quadratic: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"expected a dimension D >= 1, got {self.dim!r}")
        if isinstance(self.context_dim, bool) or not isinstance(self.context_dim, int) \
                or self.context_dim < 0:
            raise ValueError(f"expected a context width C >= 0, got {self.context_dim!r}")
        if not self.hidden or any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"expected hidden widths as positive ints, got {self.hidden!r}")
        if isinstance(self.quadratic_rank, bool) or not isinstance(self.quadratic_rank, int) \
                or self.quadratic_rank < 0:
            raise ValueError(f"expected quadratic_rank >= 0, got {self.quadratic_rank!r}")
        if not isinstance(self.output_quadratic, bool):
            raise ValueError(f"expected output_quadratic as a bool, got {self.output_quadratic!r}")
        if self.g_kind not in G_KINDS:
            raise ValueError(f"expected g_kind in {G_KINDS}, got {self.g_kind!r}")

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable dict (for checkpoints)."""
        return {**asdict(self), "hidden": list(self.hidden)}


class _Predictor(nn.Module):
    """``g(x, z) = L z + MLP([x, z])``: the amortised conjugate.

    ``L`` starts as the identity (or the inverse Gaussian map, :meth:`TransportModel.start_gaussian`) and the
    MLP's output at 0.
    """

    def __init__(self, dim: int, context_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
            self.linear.bias.zero_()
        sizes = (dim + context_dim, *hidden)
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, z: Tensor, x: Tensor | None = None) -> Tensor:
        return self.linear(z) + self.net(z if x is None else torch.cat([x, z], dim=1))


class QuadraticOutput(nn.Module):
    """``f(x, y) = h(x, y) + ½ yᵀ L Lᵀ y + bᵀ y``: an ICNN ``h`` plus a full-rank PSD quadratic.

    ``L`` (``(D, D)``, any real matrix: ``L Lᵀ`` is PSD by construction) and ``b`` start at zero
    (``f = h``); :meth:`TransportModel.start_gaussian` sets them to the part of the Gaussian map's
    matrix that ``h``'s rank-``R`` output unit cannot hold. Convex, smooth, no kinks added, strong
    convexity that of ``h`` (``L Lᵀ`` adds ``>= 0``): the traits of ``h`` plus a smooth convex term.

    Shape:
        ``y: (batch, D)`` (and ``x: (batch, C)`` for a PICNN ``h``) -> ``(batch,)``.
    """

    def __init__(self, inner: nn.Module, dim: int) -> None:
        super().__init__()
        self.inner = inner
        self.factor = nn.Parameter(torch.zeros(dim, dim))
        self.linear = nn.Parameter(torch.zeros(dim))

    @property
    def convex_input_shape(self) -> tuple[int, ...]:
        """``(D,)``, as the inner ICNN's."""
        return self.inner.convex_input_shape

    @property
    def context_shape(self) -> tuple[int, ...] | None:
        """``(C,)`` or None, as the inner ICNN's."""
        return self.inner.context_shape

    def energy_traits(self) -> EnergyTraits:
        """The inner ICNN's traits plus a smooth convex quadratic (no kinks, modulus >= 0)."""
        return self.inner.energy_traits().plus(EnergyTraits(convex=True, curvature="smooth", kinks=False))

    def forward(self, *args: Tensor) -> Tensor:
        y = args[-1]
        return self.inner(*args) + 0.5 * (y @ self.factor).square().sum(-1) + y @ self.linear


def _potential(config: PotentialConfig) -> nn.Module:
    inner = _icnn(config)
    return QuadraticOutput(inner, config.dim) if config.output_quadratic else inner


def _icnn(config: PotentialConfig) -> nn.Module:
    if config.context_dim:
        return PICNN(config.context_dim, config.dim, hidden=config.hidden, activation=config.activation,
                     strong_convexity=config.strong_convexity, quadratic_rank=config.quadratic_rank)
    return FICNN(config.dim, hidden=config.hidden, activation=config.activation,
                 strong_convexity=config.strong_convexity, quadratic_rank=config.quadratic_rank)


class TransportModel(nn.Module):
    """``f`` (convex potential, forward map ``∇f``) and ``g`` (inverse map or its amortisation).

    Args:
        config: :class:`PotentialConfig`.

    Shape:
        :meth:`forward_map`: ``y (batch, D)``, ``x (batch, C)`` or None -> ``(batch, D)``;
        :meth:`inverse_predict` likewise.
    """

    def __init__(self, config: PotentialConfig) -> None:
        super().__init__()
        self.config = config
        self.f = _potential(config)
        if self.f.energy_traits().kinks:
            raise ValueError(f"expected a smooth activation (celu, elu, softplus or squared_relu: the maps "
                             f"are gradients of the potentials, which must be differentiable), got "
                             f"{config.activation!r}, whose potential has kinks")
        self.g = _potential(config) if config.g_kind == "icnn" else _Predictor(
            config.dim, config.context_dim, config.hidden)

    @torch.no_grad()
    def start_gaussian(self, source: Tensor | None, target: Tensor | None) -> float:
        """Start ``∇f`` at the Gaussian OT map (or at the identity).

        Start ``∇f`` at the Gaussian OT map between the samples' moments (both None: the
        identity) and ``g`` at its inverse (:func:`icnn.potentials.gaussian_map_init`); return the
        larger of the two starts' relative errors.

        Raises:
            ValueError: the potentials have no quadratic terms (``quadratic_rank = 0``), or
                samples the Gaussian map refuses (fewer rows than dimensions, singular).
        """
        forward = _start(self.f, source, target)
        if self.config.g_kind == "icnn":
            return max(forward.error, _start(self.g, target, source).error)
        inverse = torch.linalg.inv(forward.matrix.double())
        self.g.linear.weight.copy_(inverse)
        self.g.linear.bias.copy_(-(inverse @ forward.offset.double()))
        return forward.error

    @property
    def conditional(self) -> bool:
        """True when the potentials take a context (one map per context)."""
        return self.config.context_dim > 0

    def potential(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """``f(x, y)``: ``(batch,)``."""
        return self.f(y) if x is None else self.f(x, y)

    def forward_map(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """``∇_y f(x, y)``, differentiable when gradients are enabled: ``(batch, D)``."""
        return gradient_map(self.f)(y, x)

    def inverse_predict(self, z: Tensor, x: Tensor | None = None) -> Tensor:
        """``∇g(z)`` (ICNN ``g``) or the amortised prediction ``g(z)`` (MLP ``g``): ``(batch, D)``."""
        if self.config.g_kind == "icnn":
            return gradient_map(self.g)(z, x)
        return self.g(z, x)


@torch.no_grad()
def _start(potential: nn.Module, source: Tensor | None, target: Tensor | None):
    """:func:`icnn.potentials.gaussian_map_init` of ``potential``, exact with a :class:`QuadraticOutput`.

    The inner ICNN's output unit takes the rank-``R`` part of the map's matrix ``A`` (and ``b``);
    the full-rank term takes the PSD rest ``A - μI - 2M`` (``M``: the output unit's quadratic, read
    back as the Hessian of ``h`` minus ``μI`` with the network part scaled away), so that
    ``∇f(y) = A y + b`` up to the network's ``1e-3`` share. Returns the init's record with the
    error re-measured on ``f``.
    """
    from ..potentials.gaussian_init import _map_error, gaussian_map_init

    if not isinstance(potential, QuadraticOutput):
        return gaussian_map_init(potential, source, target)
    inner = potential.inner
    record = gaussian_map_init(inner, source, target)
    dim = record.matrix.shape[0]
    matrix = record.matrix.double()
    # what the inner output unit holds: the Gaussian map's A restricted as gaussian_map_init did
    held = _held_matrix(inner, matrix).double()
    values, vectors = torch.linalg.eigh(0.5 * ((matrix - held) + (matrix - held).T))
    factor = vectors * values.clamp_min(0.0).sqrt()
    potential.factor.copy_(factor.to(potential.factor.dtype))
    potential.linear.zero_()
    probe = source if source is not None else torch.randn(256, dim, dtype=matrix.dtype)
    probe = probe.to(device=potential.factor.device, dtype=potential.factor.dtype)
    record.error = _map_error(potential, probe, record.matrix.to(probe.dtype), record.offset.to(probe.dtype))
    return record


def _held_matrix(inner: nn.Module, matrix: Tensor) -> Tensor:
    """``μI + 2(Fᵀ F + diag(d))``: the matrix of the gradient of the inner output unit's quadratic.

    Read back from the output unit's factors ``F (R, D)`` and non-negative diagonal ``d (D,)``
    (``(D, D)``, float64), plus the model's own strong convexity ``μ``.
    """
    quadratic = inner.quadratic
    full = quadratic.factors.view(quadratic.rank, quadratic.out_features, quadratic.in_features)
    factors = full[:, -1].double()  # (R, D)
    diagonal = quadratic.diagonal.weight.detach()[-1].double()  # (D,)
    eye = torch.eye(matrix.shape[0], dtype=torch.float64, device=factors.device)
    return float(inner.strong_convexity) * eye + 2.0 * (factors.T @ factors + torch.diag(diagonal))

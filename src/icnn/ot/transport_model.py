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
    """

    dim: int
    context_dim: int = 0
    hidden: tuple[int, ...] = (64, 64, 32)
    activation: str = "celu"
    strong_convexity: float = 1e-3
    g_kind: str = "icnn"
    quadratic_rank: int = 0

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


def _potential(config: PotentialConfig) -> nn.Module:
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
        from ..potentials.gaussian_init import gaussian_map_init

        forward = gaussian_map_init(self.f, source, target)
        if self.config.g_kind == "icnn":
            return max(forward.error, gaussian_map_init(self.g, target, source).error)
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

"""Verification that a model is convex in its convex input: structure plus sampled Jensen."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .energy import energy_traits
from .input_checks import validation


@dataclass
class ConvexityReport:
    """Outcome of :func:`check_convexity`.

    Attributes:
        ok: True when the structural check passed and no sampled violation exceeded ``tol``.
        structural_ok: every constrained weight is ``>= 0`` and every activation is allowed.
        issues: human-readable problems found by the structural check.
        worst_violation: largest ``f(t a + (1-t) b) - [t f(a) + (1-t) f(b)]`` seen (<= 0 is fine),
            relative to ``1 + |t f(a) + (1-t) f(b)|``.
        where: the pair and mixing weight of the worst violation (``y_a``, ``y_b``, ``t``,
            ``index`` into the batch), or None.
        pairs_checked: number of sampled (pair, t) checks.
    """

    ok: bool
    structural_ok: bool
    issues: list[str] = field(default_factory=list)
    worst_violation: float = float("-inf")
    where: dict | None = None
    pairs_checked: int = 0

    def __str__(self) -> str:
        status = "convex" if self.ok else "NOT convex"
        lines = [f"{status}: worst relative Jensen violation {self.worst_violation:.3e} over "
                 f"{self.pairs_checked} checks"]
        lines += [f"  - {issue}" for issue in self.issues]
        return "\n".join(lines)


def structural_issues(model: nn.Module) -> list[str]:
    """Why ``model`` is not convex by construction now, as it declares (empty list: none).

    Reads only the model's :meth:`icnn.ConvexEnergy.energy_traits`.
    """
    return list(energy_traits(model).issues)


@torch.no_grad()
def check_convexity(
    model: nn.Module, x: Tensor | None = None, *, n_pairs: int = 256, n_mix: int = 5,
    scale: float = 2.0, tol: float = 1e-8, generator: torch.Generator | None = None,
    y_points: tuple[Tensor, Tensor] | None = None,
) -> ConvexityReport:
    """Check a model's convexity in ``y``: structure, then Jensen's inequality on random pairs.

    The sampled check runs on a float64 copy of the model, so rounding does not hide or fake a
    violation. For each pair ``(a, b)`` and mixing weights ``t`` it measures
    ``f(t a + (1 - t) b) - t f(a) - (1 - t) f(b)``, which is ``<= 0`` for a convex ``f``.

    Args:
        model: an icnn model, or any module implementing :class:`icnn.ConvexEnergy`.
        x: ``(n_pairs, *context)`` contexts for partially convex models; random normal if None.
        n_pairs: number of random pairs (ignored when ``y_points`` is given).
        n_mix: mixing weights per pair, uniform in (0, 1).
        scale: standard deviation of the random points.
        tol: allowed relative violation.
        generator: for reproducible sampling.
        y_points: explicit ``(a, b)`` pairs, each ``(n_pairs, *shape)``.

    Returns:
        A :class:`ConvexityReport`.

    Raises:
        ValueError: ``x`` or ``y_points`` whose shapes do not match ``n_pairs`` and the model.
    """
    issues = structural_issues(model)
    structural_ok = not issues
    shape = tuple(model.convex_input_shape)
    probe = copy.deepcopy(model).to(torch.float64)
    if y_points is not None:
        a, b = (p.to(torch.float64) for p in y_points)
        n_pairs = a.shape[0]
    else:
        device = next(probe.parameters()).device
        a = torch.randn(n_pairs, *shape, generator=generator, dtype=torch.float64) * scale
        b = torch.randn(n_pairs, *shape, generator=generator, dtype=torch.float64) * scale
        a, b = a.to(device), b.to(device)
    if tuple(a.shape) != tuple(b.shape) or tuple(a.shape[1:]) != shape:
        raise ValueError(f"expected y_points as two (n_pairs, {', '.join(map(str, shape))}) tensors, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    context = model.context_shape
    if context is not None:
        if x is None:
            x = torch.randn(n_pairs, *context, generator=generator, dtype=torch.float64) * scale
        if tuple(x.shape) != (n_pairs, *context):
            raise ValueError(f"expected x of shape {(n_pairs, *context)} (one context per pair: "
                             f"n_pairs={n_pairs}), got {tuple(x.shape)}")
        x = x.to(device=a.device, dtype=torch.float64)

    def energy(y: Tensor) -> Tensor:
        with validation(False):
            return probe(y) if context is None else probe(x, y)

    f_a, f_b = energy(a), energy(b)
    t = torch.rand(n_mix, n_pairs, generator=generator, dtype=torch.float64).to(a.device)
    worst, where = float("-inf"), None
    for row in t:
        mix = row.view(-1, *([1] * len(shape)))
        chord = row * f_a + (1 - row) * f_b
        gap = (energy(mix * a + (1 - mix) * b) - chord) / (1 + chord.abs())
        index = int(gap.argmax())
        if float(gap[index]) > worst:
            worst = float(gap[index])
            where = {"index": index, "t": float(row[index]), "y_a": a[index].cpu(),
                     "y_b": b[index].cpu()}
    sampled_ok = worst <= tol
    if not sampled_ok:
        issues.append(f"Jensen's inequality violated by {worst:.3e} (relative) at pair "
                      f"{where['index']}, t={where['t']:.3f}")
    return ConvexityReport(
        ok=not issues, structural_ok=structural_ok, issues=issues,
        worst_violation=worst, where=where, pairs_checked=n_pairs * n_mix,
    )

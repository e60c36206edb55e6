"""What a user would pick instead of a neural potential, measured beside it.

- :class:`LinearGaussianMap`: the optimal map between the Gaussians with the samples' moments
  (the benchmark paper's "linear" baseline);
- :class:`DiscreteOTMap`: an exact discrete plan between ``n`` source and ``n`` target samples
  (POT's network-simplex EMD), its barycentric projection on the training points, and a
  nearest-neighbour extension to new points (the optional extra ``ot``: ``pip install icnn-torch[ot]``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .samples import check_pair, check_samples

__all__ = ["DiscreteOTMap", "LinearGaussianMap"]


class LinearGaussianMap:
    r"""``T(x) = A x + b``, the OT map between the Gaussians fitted to the samples.

    The Gaussians have the samples' means and covariances
    (:func:`icnn.potentials.gaussian_init.gaussian_map`, computed in float64);
    ``inverse(y) = A⁻¹(y − b)``.

    Args:
        source: ``(N, D)`` samples of P; target: ``(M, D)`` samples of Q; ``N, M > D``.

    Raises:
        ValueError: samples refused by :func:`icnn.ot.samples.check_samples`/``check_pair``, fewer
            samples than dimensions, or a singular source covariance.
    """

    def __init__(self, source: Tensor, target: Tensor) -> None:
        from ..potentials.gaussian_init import gaussian_map

        check_pair(check_samples(source, "source"), check_samples(target, "target"))
        self.matrix, self.offset = gaussian_map(source.detach().double().cpu(),
                                                target.detach().double().cpu())

    def __call__(self, x: Tensor) -> Tensor:
        """``T(x)``: ``(n, D)`` -> ``(n, D)`` of x's dtype and device."""
        matrix, offset = self.matrix.to(x.device), self.offset.to(x.device)
        return (x.double() @ matrix.T + offset).to(x.dtype)

    def inverse(self, y: Tensor) -> Tensor:
        """``T⁻¹(y)``: ``(n, D)`` -> ``(n, D)``."""
        matrix, offset = self.matrix.to(y.device), self.offset.to(y.device)
        return torch.linalg.solve(matrix, (y.double() - offset).T).T.to(y.dtype)


class DiscreteOTMap:
    """Exact discrete OT between two equal-weight sample sets, extended to new points.

    ``plan = ot.emd(1/n, 1/m, ‖x_i − y_j‖²)``; the barycentric projection sends ``x_i`` to
    ``Σ_j plan_ij y_j / Σ_j plan_ij`` (and ``y_j`` back likewise); a new point takes the image of
    its nearest training point.

    Args:
        source: ``(n, D)``, target: ``(m, D)`` samples (float64 inside; ``n·m`` entries of memory).
        max_iter: network-simplex iterations allowed to POT.

    Raises:
        ImportError: POT is not installed (``pip install 'icnn-torch[ot]'``).
        ValueError: refused samples, or POT stops before an optimal plan.
    """

    def __init__(self, source: Tensor, target: Tensor, *, max_iter: int = 10_000_000) -> None:
        check_pair(check_samples(source, "source"), check_samples(target, "target"))
        try:
            import ot
        except ImportError as error:
            raise ImportError("DiscreteOTMap needs POT: pip install 'icnn-torch[ot]'") from error
        xs, ys = source.detach().double().cpu(), target.detach().double().cpu()
        cost = torch.cdist(xs, ys).square().numpy()
        a = torch.full((xs.shape[0],), 1.0 / xs.shape[0], dtype=torch.float64).numpy()
        b = torch.full((ys.shape[0],), 1.0 / ys.shape[0], dtype=torch.float64).numpy()
        plan, log = ot.emd(a, b, cost, numItermax=max_iter, log=True)
        if log.get("warning"):
            raise ValueError(f"expected an optimal discrete plan, got POT's warning: {log['warning']}")
        plan = torch.from_numpy(plan)
        self.source, self.target = xs, ys
        self.forward_images = (plan @ ys) / plan.sum(dim=1, keepdim=True)
        self.inverse_images = (plan.T @ xs) / plan.sum(dim=0).unsqueeze(1)
        self.cost = float(log["cost"])

    @staticmethod
    def _nearest(points: Tensor, anchors: Tensor, images: Tensor) -> Tensor:
        index = torch.cat([torch.cdist(part.double().cpu(), anchors).argmin(dim=1)
                           for part in points.split(4096)])
        return images[index].to(device=points.device, dtype=points.dtype)

    def __call__(self, x: Tensor) -> Tensor:
        """Image of each new point's nearest source sample: ``(n, D)`` -> ``(n, D)``."""
        return self._nearest(x, self.source, self.forward_images)

    def inverse(self, y: Tensor) -> Tensor:
        """Preimage of each new point's nearest target sample: ``(n, D)`` -> ``(n, D)``."""
        return self._nearest(y, self.target, self.inverse_images)

r"""Closed-form benchmark: two Gaussians whose optimal transport map is linear.

For ``P = N(m_p, Σ_p)`` and ``Q = N(m_q, Σ_q)`` the W2-optimal map is
``T*(x) = m_q + A (x − m_p)`` with the symmetric positive definite

.. math:: A = Σ_p^{-1/2} (Σ_p^{1/2} Σ_q Σ_p^{1/2})^{1/2} Σ_p^{-1/2},

the gradient of the convex ``½ (x − m_p)ᵀA(x − m_p) + m_qᵀx``; its inverse is ``A⁻¹``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .metrics import GroundTruth

MAX_DIM = 256
TRUTH_SEED = 12345
"""Seed of the test points of :meth:`GaussianPair.truth` (a training seed must differ)."""

__all__ = ["TRUTH_SEED", "GaussianPair", "sqrtm_psd"]


def sqrtm_psd(matrix: Tensor) -> Tensor:
    """Principal square root of a symmetric positive semi-definite ``(D, D)`` matrix (eigh)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


@dataclass(frozen=True)
class GaussianPair:
    """Two Gaussians and the linear optimal map between them (float64 parameters).

    Attributes:
        mean_p, cov_p: ``(D,)``, ``(D, D)`` of P.
        mean_q, cov_q: ``(D,)``, ``(D, D)`` of Q.
        matrix: ``(D, D)`` SPD ``A`` of ``T*(x) = mean_q + A (x − mean_p)``.
    """

    mean_p: Tensor
    cov_p: Tensor
    mean_q: Tensor
    cov_q: Tensor
    matrix: Tensor

    @classmethod
    def from_seed(cls, dim: int, seed: int, *, eigen_range: tuple[float, float] = (0.25, 4.0)
                  ) -> GaussianPair:
        """A random Gaussian pair of dimension ``dim`` from ``seed``.

        Random covariances (random rotation, eigenvalues log-uniform in ``eigen_range``) and
        means (``N(0, I)``) from ``seed``; the same seed gives the same pair on every machine.

        Raises:
            ValueError: ``dim`` outside ``1..256`` or a bad ``eigen_range``.
        """
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
            raise ValueError(f"expected a Gaussian pair dimension D in 1..{MAX_DIM}, got {dim!r}")
        low, high = eigen_range
        if not 0 < low <= high or not math.isfinite(high):
            raise ValueError(f"expected 0 < low <= high for eigen_range, got {eigen_range}")
        gen = torch.Generator().manual_seed(seed)

        def covariance() -> Tensor:
            rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
            logs = torch.empty(dim, dtype=torch.float64).uniform_(math.log(low), math.log(high),
                                                                   generator=gen)
            cov = (rotation * logs.exp()) @ rotation.T
            return (cov + cov.T) / 2

        cov_p, cov_q = covariance(), covariance()
        mean_p = torch.randn(dim, generator=gen, dtype=torch.float64)
        mean_q = torch.randn(dim, generator=gen, dtype=torch.float64)
        root = sqrtm_psd(cov_p)
        inv_root = torch.linalg.inv(root)
        matrix = inv_root @ sqrtm_psd(root @ cov_q @ root) @ inv_root
        return cls(mean_p, cov_p, mean_q, cov_q, (matrix + matrix.T) / 2)

    @property
    def dim(self) -> int:
        """Dimension ``D`` of the samples."""
        return int(self.mean_p.shape[0])

    def sample(self, n: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
               ) -> tuple[Tensor, Tensor]:
        """Independent samples ``(x ~ P, y ~ Q)``, each ``(n, D)`` of ``dtype``."""
        noise = torch.randn(2, n, self.dim, generator=generator, dtype=torch.float64)
        x = self.mean_p + noise[0] @ torch.linalg.cholesky(self.cov_p).T
        y = self.mean_q + noise[1] @ torch.linalg.cholesky(self.cov_q).T
        return x.to(dtype), y.to(dtype)

    def transport(self, x: Tensor) -> Tensor:
        """``T*(x) = mean_q + A (x − mean_p)``; ``x: (n, D)`` -> ``(n, D)`` of x's dtype."""
        out = self.mean_q + (x.double() - self.mean_p) @ self.matrix
        return out.to(x.dtype)

    def inverse(self, y: Tensor) -> Tensor:
        """``T*⁻¹(y) = mean_p + A⁻¹ (y − mean_q)``; ``y: (n, D)`` -> ``(n, D)``."""
        out = self.mean_p + torch.linalg.solve(self.matrix, (y.double() - self.mean_q).T).T
        return out.to(y.dtype)

    def cost(self) -> float:
        """``½ W2²(P, Q)`` in closed form: ``½(‖m_p − m_q‖² + tr Σ_p + tr Σ_q − 2 tr(Σ_p^½ Σ_q Σ_p^½)^½)``."""
        root = sqrtm_psd(self.cov_p)
        cross = torch.trace(sqrtm_psd(root @ self.cov_q @ root))
        w2 = (self.mean_p - self.mean_q).square().sum() + torch.trace(self.cov_p) \
            + torch.trace(self.cov_q) - 2 * cross
        return float(w2 / 2)

    def truth(self, n: int = 4096, seed: int = TRUTH_SEED, *, dtype: torch.dtype = torch.float32
              ) -> GroundTruth:
        """``n`` test points of P (from ``seed``), their exact images and the exact variances.

        The cost is ``½ mean ‖x − T*(x)‖²`` on these points (as the benchmark files estimate it), so the true
        map scores cos = 1 exactly.
        """
        x, _ = self.sample(n, torch.Generator().manual_seed(seed), dtype=torch.float64)
        mapped = self.transport(x)
        cost = float(0.5 * (mapped - x).square().sum(dim=1).mean())
        return GroundTruth(x.to(dtype), mapped.to(dtype), float(torch.trace(self.cov_p)),
                           float(torch.trace(self.cov_q)), cost)

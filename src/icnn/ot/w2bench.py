r"""The Wasserstein-2 benchmark pairs "Mix3toMix10" (Korotin et al., NeurIPS 2021), D = 2 … 64.

Re-implemented from the facts in ``/work/shared/data/w2bench/SOURCE.md`` and read with
safetensors (no pickles, no original code):

- **P**: pick ``k`` uniformly from {0, 1, 2}, ``z ~ N(0, I)``, ``x = maps[k] @ z · input_std + centers[k]``;
- **ψ(x) = s · (ψ1(x) + ψ2(x) + shiftᵀx)**, each ``ψj`` a DenseICNN with rank-1 quadratic skips:
  ``q_i(x)_o = Σ_r (Σ_d x_d A_i[d, r, o])² + (W_i x + b_i)_o``, ``z_0 = q_0(x)``,
  ``z_i = celu(C_{i−1} z_{i−1} + q_i(x))`` (i = 1, 2), ``ψj(x) = F z_2 + (μ/2)‖x‖²``;
- **T\* = ∇ψ** (Brenier) and **Q = T\*#P**.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor

from ..data.paths import DATA_DIR_ENV, default_data_dir
from .metrics import GroundTruth

DIMS = (2, 4, 8, 16, 32, 64)

__all__ = ["DIMS", "Mix3toMix10", "benchmark_path"]


def benchmark_path(dim: int, directory: str | os.PathLike | None = None) -> Path:
    """``<directory>/mix3tomix10-<dim>.safetensors``.

    The folder defaults to ``w2bench/`` of the library's data folder
    (:func:`icnn.data.paths.default_data_dir`, ``$ICNN_DATA_DIR``).

    Raises:
        ValueError: ``dim`` is not one of the benchmark's dimensions.
        FileNotFoundError: the file is missing.
    """
    if dim not in DIMS:
        raise ValueError(f"expected a Mix3toMix10 dimension in {DIMS}, got {dim!r}")
    folder = Path(directory) if directory is not None else default_data_dir() / "w2bench"
    path = folder / f"mix3tomix10-{dim}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"expected the benchmark file {path} (set {DATA_DIR_ENV} to the data "
                                "folder holding w2bench/), got no such file")
    return path


@dataclass(frozen=True)
class _DenseICNN:
    """One ψj: tensors of the quadratic layers, the non-negative convex layers, the final layer."""

    quadratic: tuple[Tensor, ...]  # A_i: (D, rank, n_i)
    weights: tuple[Tensor, ...]    # W_i: (n_i, D)
    biases: tuple[Tensor, ...]     # b_i: (n_i,)
    convex: tuple[Tensor, ...]     # C_i: (n_{i+1}, n_i)
    final: Tensor                  # F: (1, n_last)

    def __call__(self, x: Tensor, mu: float) -> Tensor:
        """``ψj(x)``: ``x (n, D)`` -> ``(n,)``."""
        def q(i: int) -> Tensor:
            squares = torch.einsum("nd,dro->nro", x, self.quadratic[i]).square().sum(dim=1)
            return squares + F.linear(x, self.weights[i], self.biases[i])

        z = q(0)
        for i, weight in enumerate(self.convex, start=1):
            z = F.celu(F.linear(z, weight) + q(i), alpha=1.0)
        return F.linear(z, self.final).squeeze(-1) + 0.5 * mu * x.square().sum(dim=1)


class Mix3toMix10:
    """One benchmark pair read from its safetensors file.

    Args:
        dim: D in (2, 4, 8, 16, 32, 64).
        directory: folder of the files (see :func:`benchmark_path`).
        dtype (torch.dtype): where the sampler and ψ compute (the files hold float32).
        device (torch.device | str): the device the sampler and ψ compute on.

    Raises:
        ValueError: unknown dimension, or a file whose metadata disagrees with ``dim``.
        FileNotFoundError: the file is missing.
    """

    def __init__(self, dim: int, directory: str | os.PathLike | None = None, *,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> None:
        path = benchmark_path(dim, directory)
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata()
            tensors = {key: handle.get_tensor(key).to(device=device, dtype=dtype) for key in handle.keys()}
        if int(meta["dim"]) != dim or meta.get("activation") != "celu" or int(meta["rank"]) != 1:
            raise ValueError(f"expected {path} to hold a D = {dim} celu rank-1 pair, got metadata "
                             f"dim={meta.get('dim')}, activation={meta.get('activation')}, "
                             f"rank={meta.get('rank')}")
        self.dim, self.path = dim, path
        self.input_std = float(meta["input_std"])
        self.scale = float(meta["potential_scale"])
        self.mu = float(meta["strong_convexity"])
        self.hidden = json.loads(meta["hidden"])
        self.output_var, self.input_var = float(meta["output_var"]), float(meta["input_var"])
        self.cost_value = float(meta["cost"])
        self.centers, self.maps = tensors["input.centers"], tensors["input.maps"]
        self.shift = tensors["potential.shift"]
        self.test_x, self.test_map = tensors["test.x"], tensors["test.map"]
        self.nets = tuple(self._net(tensors, prefix) for prefix in ("v1.", "v2."))

    def _net(self, tensors: dict[str, Tensor], prefix: str) -> _DenseICNN:
        layers = len(self.hidden)
        return _DenseICNN(
            quadratic=tuple(tensors[f"{prefix}quadratic_layers.{i}.quadratic_decomposed"]
                            for i in range(layers)),
            weights=tuple(tensors[f"{prefix}quadratic_layers.{i}.weight"] for i in range(layers)),
            biases=tuple(tensors[f"{prefix}quadratic_layers.{i}.bias"] for i in range(layers)),
            convex=tuple(tensors[f"{prefix}convex_layers.{i}.weight"] for i in range(layers - 1)),
            final=tensors[f"{prefix}final_layer.weight"],
        )

    def potential(self, x: Tensor) -> Tensor:
        """``ψ(x)``: ``x (n, D)`` -> ``(n,)``."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points of shape (n, {self.dim}), got {tuple(x.shape)}")
        total = self.nets[0](x, self.mu) + self.nets[1](x, self.mu) + x @ self.shift
        return self.scale * total

    def transport(self, x: Tensor, *, chunk: int = 8192) -> Tensor:
        """The true map ``T*(x) = ∇ψ(x)`` (autograd, detached): ``x (n, D)`` -> ``(n, D)``."""
        out = []
        for part in x.split(chunk):
            with torch.enable_grad():
                point = part.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.potential(point).sum(), point)
            out.append(grad.detach())
        return torch.cat(out)

    def sample_source(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` points of P (the 3-Gaussian mixture), ``(n, D)``."""
        cpu = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        k = torch.randint(3, (n,), generator=cpu)
        z = torch.randn(n, self.dim, generator=cpu, dtype=torch.float64).to(self.maps)
        return torch.einsum("nij,nj->ni", self.maps[k], z) * self.input_std + self.centers[k]

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Independent samples ``(x ~ P, y ~ Q)``: y pushes fresh points of P through ``T*``."""
        return self.sample_source(n, generator), self.transport(self.sample_source(n, generator))

    def truth(self) -> GroundTruth:
        """The file's 4096 test points, their true images and the file's constants."""
        return GroundTruth(self.test_x, self.test_map, self.input_var, self.output_var, self.cost_value)

"""Named OT problems for the command and the benchmark: ``gaussian:D`` and ``mix3tomix10:D``."""

from __future__ import annotations

import torch
from torch import Tensor

from .gaussian_pair import MAX_DIM, GaussianPair
from .metrics import GroundTruth
from .w2bench import DIMS, Mix3toMix10

FAMILIES = ("gaussian", "mix3tomix10")

__all__ = ["FAMILIES", "make_problem", "parse_benchmark"]


def parse_benchmark(spec: str) -> tuple[str, int]:
    """``"gaussian:8"`` -> ``("gaussian", 8)``.

    Raises:
        ValueError: not ``family:D`` with a known family and a dimension it has.
    """
    family, _, dim_text = str(spec).partition(":")
    if family not in FAMILIES or not dim_text.isdigit():
        raise ValueError(f"expected a benchmark 'gaussian:D' (D in 1..{MAX_DIM}) or 'mix3tomix10:D' "
                         f"(D in {DIMS}), got {spec!r}")
    dim = int(dim_text)
    if family == "gaussian" and not 1 <= dim <= MAX_DIM:
        raise ValueError(f"expected a Gaussian pair dimension in 1..{MAX_DIM}, got {dim}")
    if family == "mix3tomix10" and dim not in DIMS:
        raise ValueError(f"expected a Mix3toMix10 dimension in {DIMS}, got {dim}")
    return family, dim


def make_problem(spec: str, samples: int, seed: int, *, dtype: torch.dtype = torch.float32
                 ) -> tuple[Tensor, Tensor, GroundTruth]:
    """Source and target samples of the named problem, and its true map if known.

    ``samples`` independent source and target points of the named problem (from ``seed``) and
    its ground truth; the Gaussian pair itself is drawn from ``seed`` too.

    Raises:
        ValueError: bad ``spec`` (see :func:`parse_benchmark`) or ``samples < 8``.
        FileNotFoundError: a missing benchmark file.
    """
    family, dim = parse_benchmark(spec)
    if samples < 8:
        raise ValueError(f"expected at least 8 samples, got {samples}")
    generator = torch.Generator().manual_seed(seed)
    if family == "gaussian":
        pair = GaussianPair.from_seed(dim, seed)
        source, target = pair.sample(samples, generator, dtype=dtype)
        return source, target, pair.truth(dtype=dtype)
    bench = Mix3toMix10(dim, dtype=dtype)
    source, target = bench.sample(samples, generator)
    return source, target, bench.truth()

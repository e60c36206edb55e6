"""Named OT problems for the command and the benchmark: ``gaussian:D`` and ``mix3tomix10:D``."""

from __future__ import annotations

import torch
from torch import Tensor

from .gaussian_pair import MAX_DIM, TRUTH_SEED, GaussianPair
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


def make_problem(spec: str, samples: int, seed: int, *, dtype: torch.dtype = torch.float32,
                 pair_seed: int | None = None) -> tuple[Tensor, Tensor, GroundTruth]:
    """Source and target samples of the named problem, and its true map if known.

    ``samples`` independent source and target points of the named problem (from ``seed``) and
    its ground truth; the Gaussian pair itself is drawn from ``pair_seed`` (None: from ``seed``,
    the behaviour the recorded runs used). The Gaussian pair's test points come from the fixed
    seed ``TRUTH_SEED`` of :meth:`GaussianPair.truth`; a training ``seed`` equal to it would draw
    the training samples from the same stream and is refused.

    Raises:
        ValueError: bad ``spec`` (see :func:`parse_benchmark`), ``samples < 8``, or a Gaussian pair
            with ``seed`` equal to its test points' seed.
        FileNotFoundError: a missing benchmark file.
    """
    family, dim = parse_benchmark(spec)
    if samples < 8:
        raise ValueError(f"expected at least 8 samples, got {samples}")
    generator = torch.Generator().manual_seed(seed)
    if family == "gaussian":
        if seed == TRUTH_SEED:
            raise ValueError(f"expected a --seed other than {TRUTH_SEED} for a Gaussian pair (its test "
                             f"points are drawn from seed {TRUTH_SEED}: training samples from the same "
                             f"stream would be scored on themselves), got {seed}")
        pair = GaussianPair.from_seed(dim, seed if pair_seed is None else pair_seed)
        source, target = pair.sample(samples, generator, dtype=dtype)
        return source, target, pair.truth(dtype=dtype)
    bench = Mix3toMix10(dim, dtype=dtype)
    source, target = bench.sample(samples, generator)
    return source, target, bench.truth()

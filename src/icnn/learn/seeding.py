"""One way to seed a run: torch (CPU and every CUDA device), numpy's global RNG and ``random``."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed torch, numpy's legacy global RNG and Python's ``random`` with ``seed``.

    Args:
        seed: an int in ``[0, 2**64)`` (torch's range); numpy gets ``seed mod 2**32``.

    Raises:
        TypeError: ``seed`` is not an int (a float or bool would be silently truncated).
        ValueError: ``seed`` is outside ``[0, 2**64)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"expected an int seed, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"expected a seed in [0, 2**64), got {seed}")
    torch.manual_seed(seed)  # seeds every CUDA device as well
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the global RNG user code draws from)
    random.seed(seed)

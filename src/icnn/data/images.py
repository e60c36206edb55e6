"""Grayscale image stacks from ``.npy`` arrays or the Olivetti ``.mat``."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from icnn.data.olivetti import load_olivetti


def load_images(path: str | PathLike[str]) -> Tensor:
    """Load ``(N, H, W)`` grayscale images with values in ``[0, 1]`` as float32.

    Accepted files:
        * ``.npy``: a numeric or bool array of shape ``(N, H, W)`` with values in ``[0, 1]``
          (no pickles);
        * ``.mat``: the Roweis Olivetti faces file, via :func:`icnn.data.olivetti.load_olivetti`
          (scaled by 1/255).

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ValueError: for another suffix, a wrong number of dimensions, an empty array, NaN or
            infinite values, or values outside ``[0, 1]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected an image file (.npy or .mat), got no file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return load_olivetti(path)
    if suffix != ".npy":
        raise ValueError(f"{path}: expected a .npy or .mat file, got suffix {path.suffix!r}")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        message = f"{path}: expected a numeric .npy array, could not load it: {exc}"
        raise ValueError(message) from exc
    if array.ndim != 3:
        raise ValueError(f"{path}: expected images of shape (N, H, W), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{path}: expected at least one non-empty image, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{path}: expected a numeric array, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if np.isnan(array).any() or np.isinf(array).any():
        raise ValueError(
            f"{path}: expected finite values, got {int((~np.isfinite(array)).sum())} NaN/inf"
        )
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{path}: expected values in [0, 1], got range [{low}, {high}]")
    return torch.from_numpy(array).to(torch.float32)

"""Olivetti faces (Roweis's 64x64 ``olivettifaces.mat``) for the image-completion task.

Conventions follow the ICNN authors' code (locuslab/icnn ``completion/olivetti.py``, see
``shared/paper/reference-notes.md`` section 4.3):

* Layout: the ``.mat`` variable ``faces`` is ``uint8 (4096, 400)``, one column-major (MATLAB)
  image per column, so ``images = faces.T.reshape(400, 64, 64).transpose(0, 2, 1)``; image 0
  is upright (rows run top to bottom, columns left to right). This is sklearn's layout too.
* Scale: pixel values are divided by **255** (the authors' code), so the data lie in
  ``[0, 242/255]``. sklearn instead divides by the maximum, 242; do not mix the two.
* Metric: the paper's MSE is in 0-255 units, ``mean over predicted pixels of
  (255 * (y_hat - y))**2`` with ``y_hat, y`` on this 1/255 scale.
* Split: images 0..349 train, 350..399 test (10 images per person, so the test set is the
  last 5 people).
* Task: x = the right half (columns 32..63), mirrored left-right before it enters the network;
  y = the left half (columns 0..31), the part to complete. :func:`split_halves` returns exactly
  this pair and :func:`join_halves` undoes it.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

OLIVETTI_N_IMAGES = 400
OLIVETTI_SIDE = 64
OLIVETTI_N_TRAIN = 350
# Dividing by 255 (not by the data maximum 242) is what the paper's code did.
OLIVETTI_SCALE = 255.0


def load_olivetti(path: str | PathLike[str]) -> Tensor:
    """Load the Roweis ``olivettifaces.mat`` as upright images on the paper's 1/255 scale.

    Returns:
        ``(400, 64, 64)`` float32 tensor in ``[0, 1]`` (max 242/255 for the real file),
        ``images[i, row, column]`` with row 0 at the top of the face.

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ValueError: if the file is not a MATLAB file or has no ``faces`` variable of shape
            ``(4096, 400)`` with values in ``[0, 255]``.
    """
    import scipy.io
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected the Olivetti faces .mat file, got no file at {path}")
    try:
        contents = scipy.io.loadmat(path)
    except (MatReadError, ValueError, TypeError, OSError) as exc:
        raise ValueError(f"{path}: expected a MATLAB .mat file, could not read it: {exc}") from exc
    if "faces" not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(f"{path}: expected a variable 'faces', got variables {found}")
    faces = np.asarray(contents["faces"])
    expected = (OLIVETTI_SIDE * OLIVETTI_SIDE, OLIVETTI_N_IMAGES)
    if faces.shape != expected:
        raise ValueError(f"{path}: expected 'faces' of shape {expected}, got {faces.shape}")
    if not np.issubdtype(faces.dtype, np.number):
        raise ValueError(f"{path}: expected numeric 'faces', got dtype {faces.dtype}")
    faces = faces.astype(np.float64)
    if not np.isfinite(faces).all() or faces.min() < 0 or faces.max() > 255:
        raise ValueError(f"{path}: expected 'faces' values in [0, 255], got other values")
    images = faces.T.reshape(OLIVETTI_N_IMAGES, OLIVETTI_SIDE, OLIVETTI_SIDE).transpose(0, 2, 1)
    return torch.from_numpy(images / OLIVETTI_SCALE).to(torch.float32).contiguous()


def olivetti_split(images: Tensor) -> tuple[Tensor, Tensor]:
    """The paper's split: ``(images[:350], images[350:])`` of a ``(400, ...)`` tensor."""
    if images.ndim < 1 or images.shape[0] != OLIVETTI_N_IMAGES:
        raise ValueError(
            f"expected {OLIVETTI_N_IMAGES} Olivetti images along dim 0, got shape "
            f"{tuple(images.shape)}"
        )
    return images[:OLIVETTI_N_TRAIN], images[OLIVETTI_N_TRAIN:]


def split_halves(images: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``(..., H, W)`` images into the completion pair ``(x, y)``, each ``(..., H, W/2)``.

    ``x`` is the right half (columns ``W/2..W-1``) mirrored left-right, as the authors' code
    feeds it (``x[..., j] = images[..., W - 1 - j]``, so ``x``'s column 0 is the image's last
    column); ``y`` is the left half (columns ``0..W/2-1``), the target. ``W`` must be even.
    """
    if images.ndim < 2:
        raise ValueError(f"expected images of shape (..., H, W), got {tuple(images.shape)}")
    width = images.shape[-1]
    if width % 2:
        raise ValueError(f"expected an even image width, got W={width}")
    half = width // 2
    return images[..., half:].flip(-1), images[..., :half]


def join_halves(x: Tensor, y: Tensor) -> Tensor:
    """Inverse of :func:`split_halves`: ``(..., H, W/2)`` pair back to ``(..., H, W)`` images."""
    if x.shape != y.shape or x.ndim < 2:
        raise ValueError(
            "expected x and y of the same shape (..., H, W/2), got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    return torch.cat([y, x.flip(-1)], dim=-1)

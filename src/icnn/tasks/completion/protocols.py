"""Named completion protocols and the conv geometry scaled to small images.

Named completion protocols (which images train and test, at which size) and the conv geometry
scaled to the image size.

* ``"paper"``: the images as given, the first ``n_train`` train (Olivetti: 350), the rest test.
* ``"small-faces"``: a small new face set to develop recipes against, made from Olivetti:
  images 0-79 (8 people) train and 350-399 (the paper's 5 test people) test, every image
  downsampled to 24 x 24 by area averaging.

:func:`scale_geometry` shrinks the paper's kernel sizes and strides (designed for the 64 x 32
half-face) in proportion to a smaller image, so a small protocol runs at the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PROTOCOLS = ("paper", "small-faces")
SMALL_SIDE = 24
SMALL_TRAIN = 80
SMALL_TEST_FROM = 350
# the half-face the paper's geometry (8/4, 4/2, 3/1) was designed for: (H, W)
REFERENCE_SIZE = (64, 32)


def downsample(images: Tensor, side: int) -> Tensor:
    """``(n, side, side)`` area-averaged copies of ``(n, H, W)`` images."""
    return F.interpolate(images.unsqueeze(1), size=(side, side), mode="area")[:, 0]


def apply_protocol(images: Tensor, protocol: str, n_train: int | None) -> tuple[Tensor, int]:
    """The image stack and the number of training images of ``protocol``.

    Args:
        images: ``(N, H, W)`` in ``[0, 1]``.
        protocol: ``"paper"`` or ``"small-faces"``.
        n_train: ``"paper"``: the first ``n_train`` images train (None: 350); ``"small-faces"``
            fixes its own split and refuses a value.

    Returns:
        ``(images', n_train')``: ``"small-faces"`` gives ``(130, 24, 24)`` and 80.

    Raises:
        ValueError: unknown protocol, ``n_train`` given to ``"small-faces"``, or fewer than 400
            images for it.
    """
    if protocol == "paper":
        return images, 350 if n_train is None else n_train
    if protocol != "small-faces":
        raise ValueError(f"expected a protocol in {PROTOCOLS}, got {protocol!r}")
    if n_train is not None:
        raise ValueError(f"expected no --train with the small-faces protocol (it trains on images "
                         f"0-{SMALL_TRAIN - 1}), got {n_train}")
    if images.ndim != 3 or images.shape[0] < 400:
        raise ValueError(f"expected the 400 Olivetti images for the small-faces protocol, got "
                         f"{tuple(images.shape)}")
    chosen = torch.cat([images[:SMALL_TRAIN], images[SMALL_TEST_FROM:400]])
    return downsample(chosen, SMALL_SIDE), SMALL_TRAIN


def scale_geometry(kernel_sizes: Sequence[int], strides: Sequence[int], size: Sequence[int],
                   ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Kernel sizes and strides shrunk in proportion to an image smaller than 64 x 32.

    ``r = min(H / 64, W / 32)``; for ``r >= 1`` nothing changes, else ``k -> ceil(k r)`` and
    ``s -> max(1, round(s r))``, with ``s <= k`` (no skipped pixels).

    Args:
        kernel_sizes: kernel size per conv stage.
        strides: stride per conv stage.
        size: ``(H, W)`` of the network's input.
    """
    ratio = min(size[0] / REFERENCE_SIZE[0], size[1] / REFERENCE_SIZE[1])
    if ratio >= 1:
        return tuple(kernel_sizes), tuple(strides)
    kernels = tuple(max(1, math.ceil(k * ratio)) for k in kernel_sizes)
    steps = tuple(min(max(1, round(s * ratio)), k) for s, k in zip(strides, kernels, strict=True))
    return kernels, steps

"""Observation masks for image completion: ``True`` = observed (kept fixed), ``False`` = free.

A mask pairs with the observed values to pin coordinates during inference with
``icnn.argmin(model, x, fixed=(mask, values))``: coordinates where the mask is True keep
``values``, the others are optimised. Broadcast or flatten the mask to the model's convex-input
shape first, e.g. for a model over flattened 64x64 images::

    mask = left_half_mask(64, 64)                    # (64, 64), right half observed
    fixed = (mask.flatten().expand(n, -1), images.flatten(1))
    result = icnn.argmin(model, domain=icnn.Box(0.0, 1.0), fixed=fixed)

Every builder returns a ``torch.bool`` tensor on the CPU; move it with ``.to(device)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _check_size(H: int, W: int) -> None:
    for name, value in (("H", H), ("W", W)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"expected {name} to be a positive int, got {value!r}")


def left_half_mask(H: int, W: int) -> Tensor:
    """Mask for completing the LEFT half: columns ``W//2..W-1`` observed, ``0..W//2-1`` free.

    This is the Olivetti task of the paper's code (predict columns 0..31 of a 64x64 face from
    columns 32..63). Returns ``(H, W)`` bool; ``~left_half_mask(H, W)`` observes the left half.
    """
    _check_size(H, W)
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[:, W // 2 :] = True
    return mask


def block_mask(H: int, W: int, top: int, left: int, height: int, width: int) -> Tensor:
    """Everything observed except the rectangle ``[top:top+height, left:left+width]``.

    Returns ``(H, W)`` bool. The block must lie inside the image and be non-empty.
    """
    _check_size(H, W)
    if height <= 0 or width <= 0:
        raise ValueError(f"expected a non-empty block, got height={height}, width={width}")
    if top < 0 or left < 0 or top + height > H or left + width > W:
        raise ValueError(
            f"expected the block rows [{top}, {top + height}) and columns "
            f"[{left}, {left + width}) inside an image of H={H}, W={W}"
        )
    mask = torch.ones(H, W, dtype=torch.bool)
    mask[top : top + height, left : left + width] = False
    return mask


def random_pixel_mask(
    shape: Sequence[int], fraction_missing: float, generator: torch.Generator | None = None
) -> Tensor:
    """Mask with exactly ``round(fraction_missing * H * W)`` free pixels in each image.

    ``shape`` is ``(H, W)`` or ``(*batch, H, W)``; each trailing ``(H, W)`` slice gets its own
    uniformly random set of free pixels (a 1-D ``shape`` is one vector). Pass a seeded
    ``generator`` for reproducible masks; the global RNG is used otherwise.

    Returns:
        bool tensor of ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"expected a non-empty shape of positive sizes, got {shape}")
    if not 0.0 <= fraction_missing <= 1.0:
        raise ValueError(f"expected fraction_missing in [0, 1], got {fraction_missing}")
    per_image = shape[-2] * shape[-1] if len(shape) >= 2 else shape[0]
    n_images = 1
    for size in shape[: max(len(shape) - 2, 0)]:
        n_images *= size
    n_missing = round(fraction_missing * per_image)
    # The n_missing smallest of i.i.d. uniforms is a uniformly random subset of that size.
    noise = torch.rand(n_images, per_image, generator=generator)
    missing_index = noise.argsort(dim=1)[:, :n_missing]
    mask = torch.ones(n_images, per_image, dtype=torch.bool)
    mask.scatter_(1, missing_index, False)
    return mask.reshape(shape)

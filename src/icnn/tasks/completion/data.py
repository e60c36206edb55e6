"""Completion pairs from an image stack: what is observed (``x``) and what is predicted (``y``).

Two layouts:

* ``"left-half"`` (the paper's Olivetti protocol, the default): ``x`` is the right half of each
  image mirrored left-right, ``y`` the left half (:func:`icnn.data.split_halves`); every pixel
  of ``y`` is predicted. Images ``(n, H, W)`` give ``x, y: (n, 1, H, W/2)``.
* a pixel mask (``"random:F"``, ``"block:TOP,LEFT,HEIGHT,WIDTH"``, ``"center:H,W"``): ``y`` is
  the whole image and the observed pixels are pinned through ``fixed=(observed, image)`` during
  inference; ``x = (image * observed, observed)`` as two channels. ``x: (n, 2, H, W)``,
  ``y: (n, 1, H, W)``.

The paper's split is positional: the first ``n_train`` images train, the rest test (Olivetti:
350 / 50, i.e. the last five people are never seen in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...data.masks import block_mask, random_pixel_mask
from ...data.olivetti import join_halves, split_halves

LEFT_HALF = "left-half"
PIXEL_SCALE = 255.0
MASK_FORMS = ("left-half", "random:FRACTION", "block:TOP,LEFT,HEIGHT,WIDTH", "center:HEIGHT,WIDTH")


@dataclass
class CompletionSplit:
    """One side of the split.

    Attributes:
        x: ``(n, Cx, H', W')`` context (what is observed, in the network's layout).
        y: ``(n, 1, H', W')`` the convex variable's ground truth.
        observed: ``(n, 1, H', W')`` bool, True where ``y`` is known (pinned), or None when every
            coordinate of ``y`` is predicted (the left-half layout).
        images: ``(n, H, W)`` the original images.
    """

    x: Tensor
    y: Tensor
    observed: Tensor | None
    images: Tensor

    def __len__(self) -> int:
        return self.y.shape[0]

    @property
    def predicted(self) -> Tensor:
        """``(n, 1, H', W')`` bool: the coordinates scored by the MSE."""
        if self.observed is None:
            return torch.ones_like(self.y, dtype=torch.bool)
        return ~self.observed

    def fixed(self, index: Tensor | slice | None = None) -> tuple[Tensor, Tensor] | None:
        """``(mask, values)`` for ``icnn.argmin(fixed=...)``, or None (nothing pinned)."""
        if self.observed is None:
            return None
        index = slice(None) if index is None else index
        return self.observed[index], self.y[index]

    def to_images(self, y: Tensor) -> Tensor:
        """Completed images ``(n, H, W)`` from a prediction ``y`` in the network's layout."""
        if self.observed is None:
            return join_halves(self.x[:, 0], y[:, 0])
        return torch.where(self.observed, self.y, y)[:, 0]

    def observed_images(self, fill: float = 0.0) -> Tensor:
        """``(n, H, W)`` images with the predicted pixels replaced by ``fill``."""
        if self.observed is None:
            return join_halves(self.x[:, 0], torch.full_like(self.y[:, 0], fill))
        return torch.where(self.observed, self.y, torch.full_like(self.y, fill))[:, 0]


def mirrored(split: CompletionSplit) -> CompletionSplit:
    """The same examples with every image flipped left-right (a mirrored face is a face).

    In the left-half layout this swaps the roles of the halves: the flipped image's mirrored
    right half is the original left half and its left half is the original mirrored right half,
    so ``(x, y)`` becomes ``(y, x)``. With a pixel mask, images and masks are flipped together.
    """
    images = split.images.flip(-1)
    if split.observed is None:
        return CompletionSplit(split.y.clone(), split.x.clone(), None, images)
    return CompletionSplit(split.x.flip(-1), split.y.flip(-1), split.observed.flip(-1), images)


def shifted(split: CompletionSplit, down: Tensor, right: Tensor) -> CompletionSplit:
    """The same examples with image ``i`` translated by ``(down[i], right[i])`` pixels.

    Edge pixels are replicated into the uncovered border. A small translation of a face is a
    face, so this is training-set augmentation (random shifts per mini-batch, see
    ``CompletionConfig.max_shift``). In the left-half layout the halves are re-cut from the
    translated image (a horizontal shift moves a few columns across the cut); with a pixel mask
    the masks stay where they are (the same pixels are observed).

    Args:
        split: the examples to translate.
        down: ``(n,)`` integer vertical shifts, each smaller in magnitude than the image.
        right: ``(n,)`` integer horizontal shifts, each smaller in magnitude than the image.
    """
    n, height, width = split.images.shape
    if down.shape != (n,) or right.shape != (n,):
        raise ValueError(f"expected down and right of shape ({n},), got {tuple(down.shape)} "
                         f"and {tuple(right.shape)}")
    if bool((down.abs() >= height).any() or (right.abs() >= width).any()):
        raise ValueError(f"shifts must be smaller than the images ({height}, {width})")
    rows = (torch.arange(height) - down[:, None]).clamp(0, height - 1)
    cols = (torch.arange(width) - right[:, None]).clamp(0, width - 1)
    images = split.images[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if split.observed is None:
        x, y = split_halves(images)
        return CompletionSplit(x.unsqueeze(1), y.unsqueeze(1), None, images)
    y = images.unsqueeze(1)
    x = torch.cat([y * split.observed, split.observed.to(y.dtype)], dim=1)
    return CompletionSplit(x, y, split.observed, images)


def subset(split: CompletionSplit, index: Tensor) -> CompletionSplit:
    """The examples ``index`` of ``split``."""
    return CompletionSplit(split.x[index], split.y[index],
                           None if split.observed is None else split.observed[index],
                           split.images[index])


def concatenate(*splits: CompletionSplit) -> CompletionSplit:
    """Examples of several splits of the same layout, in order."""
    observed = [s.observed for s in splits]
    return CompletionSplit(
        torch.cat([s.x for s in splits]), torch.cat([s.y for s in splits]),
        None if observed[0] is None else torch.cat(observed),
        torch.cat([s.images for s in splits]),
    )


@dataclass
class CompletionData:
    """Train and test pairs of one completion task; ``mask`` is the spec string it came from.

    ``validation`` (optional) holds training images set aside for choosing hyper-parameters
    (:func:`hold_out`); it is evaluated beside the test set and never trained on.
    """

    train: CompletionSplit
    test: CompletionSplit
    mask: str
    validation: CompletionSplit | None = None

    @property
    def x_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the observed part ``x``."""
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def y_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the missing part ``y``."""
        return tuple(self.train.y.shape[1:])  # type: ignore[return-value]


def hold_out(data: CompletionData, n_validation: int) -> CompletionData:
    """Move the last ``n_validation`` training examples into ``data.validation``.

    On Olivetti (10 images per person, in order) ``n_validation = 50`` holds out the last five
    training people, so validation, like the test set, measures completion of unseen people.
    """
    n = len(data.train)
    if isinstance(n_validation, bool) or not isinstance(n_validation, int) \
            or not 1 <= n_validation < n:
        raise ValueError(f"expected a validation size in [1, {n - 1}] (some training images "
                         f"must remain), got {n_validation!r}")
    keep, held = torch.arange(n - n_validation), torch.arange(n - n_validation, n)
    return CompletionData(subset(data.train, keep), data.test, data.mask,
                          subset(data.train, held))


def make_completion_data(images: Tensor, n_train: int, mask: str = LEFT_HALF, *,
                         seed: int = 0) -> CompletionData:
    """Split ``(N, H, W)`` images in ``[0, 1]`` into completion pairs.

    Args:
        images: the stack (Olivetti: ``load_olivetti``; anything: ``icnn.data.load_images``).
        n_train: the first ``n_train`` images train, the others test.
        mask: ``"left-half"``, ``"random:F"`` (fraction ``F`` of pixels missing, a fresh random
            set per image), ``"block:TOP,LEFT,HEIGHT,WIDTH"`` or ``"center:HEIGHT,WIDTH"``.
        seed: seeds the random masks.

    Raises:
        ValueError: bad image stack, ``n_train`` outside ``[1, N - 1]``, or a bad mask spec.
    """
    if not isinstance(images, Tensor) or images.ndim != 3 or not images.is_floating_point():
        raise ValueError("expected images as a float tensor of shape (N, H, W), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    n_images, height, width = images.shape
    if isinstance(n_train, bool) or not isinstance(n_train, int) or not 1 <= n_train < n_images:
        raise ValueError(f"expected n_train in [1, {n_images - 1}] (at least one test image), "
                         f"got {n_train!r}")
    images = images.float()
    if mask == LEFT_HALF:
        if width % 2:
            raise ValueError(f"the left-half task needs an even image width, got W={width}")
        x, y = split_halves(images)
        x, y, observed = x.unsqueeze(1), y.unsqueeze(1), None
    else:
        observed = parse_mask(mask, n_images, height, width, seed=seed).unsqueeze(1)
        y = images.unsqueeze(1)
        x = torch.cat([y * observed, observed.to(y.dtype)], dim=1)

    def side(index: slice) -> CompletionSplit:
        return CompletionSplit(x[index].contiguous(), y[index].contiguous(),
                               None if observed is None else observed[index].contiguous(),
                               images[index])

    return CompletionData(side(slice(0, n_train)), side(slice(n_train, None)), mask)


def parse_mask(spec: str, n_images: int, height: int, width: int, *, seed: int = 0) -> Tensor:
    """``(n_images, H, W)`` bool observation masks (True = observed) from a spec string."""
    kind, _, args = str(spec).partition(":")
    try:
        if kind == "random":
            fraction = float(args)
            generator = torch.Generator().manual_seed(seed)
            mask = random_pixel_mask((n_images, height, width), fraction, generator=generator)
        elif kind == "block":
            top, left, block_h, block_w = (int(v) for v in args.split(","))
            mask = block_mask(height, width, top, left, block_h, block_w)
        elif kind == "center":
            block_h, block_w = (int(v) for v in args.split(","))
            mask = block_mask(height, width, (height - block_h) // 2, (width - block_w) // 2,
                              block_h, block_w)
        else:
            raise ValueError(f"unknown mask kind {kind!r}")
    except ValueError as error:
        raise ValueError(f"expected a mask spec of the form {' | '.join(MASK_FORMS)}, got "
                         f"{spec!r} ({error})") from error
    mask = mask.expand(n_images, height, width)
    if bool(mask.flatten(1).all(1).any()):
        raise ValueError(f"mask {spec!r} leaves some images with no pixel to predict")
    return mask


def paper_mse(prediction: Tensor, split: CompletionSplit) -> float:
    """``mean over predicted pixels of (255 (ŷ - y))^2``, the paper's unit.

    Args:
        prediction: ``(n, *y_shape)`` completions in ``[0, 1]``.
        split: the examples (their ``y`` and which coordinates are predicted).
    """
    predicted = split.predicted
    error = (PIXEL_SCALE * (prediction - split.y)).square()
    return float(error[predicted].mean())


def per_example_mse(prediction: Tensor, split: CompletionSplit) -> Tensor:
    """``(n,)``: each example's mean over its predicted pixels of ``(255 (ŷ - y))^2``.

    Args:
        prediction: ``(n, *y_shape)`` completions in ``[0, 1]``.
        split: the examples.
    """
    predicted = split.predicted.flatten(1)
    error = (PIXEL_SCALE * (prediction - split.y)).square().flatten(1) * predicted
    return error.sum(1) / predicted.sum(1)

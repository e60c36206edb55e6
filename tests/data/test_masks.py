"""Observation masks: True = observed/fixed, False = free for the argmin."""

from __future__ import annotations

import pytest
import torch

from icnn.data.masks import block_mask, left_half_mask, random_pixel_mask
from icnn.data.olivetti import split_halves


def test_left_half_mask_frees_the_left_half() -> None:
    mask = left_half_mask(4, 6)
    assert mask.dtype == torch.bool and mask.shape == (4, 6)
    assert not mask[:, :3].any() and mask[:, 3:].all()


def test_left_half_mask_frees_exactly_the_completion_target() -> None:
    images = torch.rand(2, 64, 64)
    _, target = split_halves(images)
    assert torch.equal(images[:, ~left_half_mask(64, 64)].reshape(2, 64, 32), target)


def test_block_mask() -> None:
    mask = block_mask(5, 6, top=1, left=2, height=3, width=2)
    expected = torch.ones(5, 6, dtype=torch.bool)
    expected[1:4, 2:4] = False
    assert torch.equal(mask, expected)


@pytest.mark.parametrize(
    ("top", "left", "height", "width"), [(3, 0, 3, 1), (0, 5, 1, 2), (-1, 0, 1, 1), (0, 0, 0, 1)]
)
def test_block_mask_must_fit(top, left, height, width) -> None:
    with pytest.raises(ValueError, match="block"):
        block_mask(5, 6, top, left, height, width)


def test_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="H to be a positive int"):
        left_half_mask(0, 4)


def test_random_mask_frees_exactly_the_fraction_per_image() -> None:
    mask = random_pixel_mask((3, 8, 10), 0.25, torch.Generator().manual_seed(0))
    assert mask.shape == (3, 8, 10) and mask.dtype == torch.bool
    assert (~mask).sum(dim=(1, 2)).tolist() == [20, 20, 20]
    assert not torch.equal(mask[0], mask[1])  # each image draws its own pixels


def test_random_mask_is_reproducible_with_a_seeded_generator() -> None:
    first = random_pixel_mask((6, 6), 0.5, torch.Generator().manual_seed(3))
    second = random_pixel_mask((6, 6), 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, second) and int((~first).sum()) == 18


def test_random_mask_extremes_and_vectors() -> None:
    assert random_pixel_mask((4, 4), 0.0).all()
    assert not random_pixel_mask((4, 4), 1.0).any()
    assert int((~random_pixel_mask((10,), 0.3)).sum()) == 3


def test_random_mask_fraction_must_be_in_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"fraction_missing in \[0, 1\]"):
        random_pixel_mask((4, 4), 1.5)

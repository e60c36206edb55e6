"""Completion data: the paper's orientation and split, and pixel masks pinned through fixed=."""

from __future__ import annotations

import pytest
import torch

from icnn.tasks.completion.data import hold_out, make_completion_data, parse_mask, shifted


@pytest.fixture(scope="module")
def olivetti(data_dir) -> torch.Tensor:
    from icnn.data import load_olivetti

    return load_olivetti(data_dir / "olivetti" / "olivettifaces.mat")


def test_olivetti_split_is_images_0_to_349_train_350_to_399_test(olivetti):
    data = make_completion_data(olivetti, 350)
    assert len(data.train) == 350 and len(data.test) == 50
    torch.testing.assert_close(data.train.images, olivetti[:350])
    torch.testing.assert_close(data.test.images, olivetti[350:])


def test_olivetti_predicts_the_left_half_from_the_mirrored_right_half(olivetti):
    data = make_completion_data(olivetti, 350)
    assert data.x_shape == (1, 64, 32) and data.y_shape == (1, 64, 32)
    face = olivetti[350]
    torch.testing.assert_close(data.test.y[0, 0], face[:, :32])  # columns 0..31 are predicted
    torch.testing.assert_close(data.test.x[0, 0, :, 0], face[:, 63])  # x column 0 = image col 63
    torch.testing.assert_close(data.test.x[0, 0], face[:, 32:].flip(-1))
    assert data.test.observed is None and bool(data.test.predicted.all())
    torch.testing.assert_close(data.test.to_images(data.test.y), data.test.images)


def test_observed_images_blank_exactly_the_predicted_half(olivetti):
    data = make_completion_data(olivetti, 350)
    shown = data.test.observed_images(fill=0.5)
    assert bool((shown[:, :, :32] == 0.5).all())
    torch.testing.assert_close(shown[:, :, 32:], data.test.images[:, :, 32:])


def test_random_mask_pins_observed_pixels_and_feeds_them_with_the_mask():
    images = torch.rand(10, 8, 6)
    data = make_completion_data(images, 7, "random:0.25", seed=3)
    assert data.x_shape == (2, 8, 6) and data.y_shape == (1, 8, 6)
    observed = data.train.observed
    assert observed.shape == (7, 1, 8, 6)
    assert int((~observed[0]).sum()) == 12  # 25% of 48 pixels missing, per image
    assert not torch.equal(observed[0], observed[1])  # a fresh set per image
    torch.testing.assert_close(data.train.x[:, 1:], observed.float())
    torch.testing.assert_close(data.train.x[:, :1], images[:7, None] * observed)
    mask, values = data.test.fixed()
    assert torch.equal(mask, data.test.observed) and torch.equal(values, data.test.y)
    again = make_completion_data(images, 7, "random:0.25", seed=3)
    assert torch.equal(again.train.observed, observed)  # seeded


def test_block_and_center_masks():
    block = parse_mask("block:1,2,3,2", 4, 8, 6)
    assert block.shape == (4, 8, 6) and int((~block[0]).sum()) == 6
    assert not bool(block[0, 1:4, 2:4].any())
    center = parse_mask("center:4,2", 1, 8, 6)
    assert not bool(center[0, 2:6, 2:4].any()) and int((~center).sum()) == 8


@pytest.mark.parametrize("spec", ["random", "random:x", "block:1,2", "ring:3", "random:0"])
def test_bad_mask_specs_are_refused(spec):
    with pytest.raises(ValueError, match="mask"):
        parse_mask(spec, 2, 8, 6)


def test_bad_train_size_and_odd_width_are_refused():
    with pytest.raises(ValueError, match="n_train"):
        make_completion_data(torch.rand(5, 4, 4), 5)
    with pytest.raises(ValueError, match="even image width"):
        make_completion_data(torch.rand(5, 4, 5), 3)


def test_shifted_translates_each_image_and_recuts_the_halves():
    images = torch.rand(3, 8, 6)
    data = make_completion_data(images, 2)
    down, right = torch.tensor([0, 2, -1]), torch.tensor([0, -1, 3])
    moved = shifted(data.train, down[:2], right[:2])
    torch.testing.assert_close(moved.images[0], images[0])  # (0, 0) is the identity
    # image 1 moved 2 down, 1 left: pixel (r, c) comes from (r - 2, c + 1), edges replicated
    torch.testing.assert_close(moved.images[1, 2:, :-1], images[1, :-2, 1:])
    torch.testing.assert_close(moved.images[1, :2, :-1], images[1, :1, 1:].expand(2, 5))
    torch.testing.assert_close(moved.images[1, 2:, -1], images[1, :-2, -1])
    torch.testing.assert_close(moved.to_images(moved.y), moved.images)  # halves re-cut


def test_shifted_keeps_pixel_masks_in_place_and_refuses_bad_shifts():
    images = torch.rand(4, 8, 8)
    data = make_completion_data(images, 3, "center:4,4")
    moved = shifted(data.train, torch.tensor([1, 0, -2]), torch.tensor([0, 1, 2]))
    assert torch.equal(moved.observed, data.train.observed)
    torch.testing.assert_close(moved.x[:, 0], (moved.y * moved.observed)[:, 0])
    with pytest.raises(ValueError, match="smaller than the images"):
        shifted(data.train, torch.tensor([8, 0, 0]), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="expected down and right of shape"):
        shifted(data.train, torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long))


def test_hold_out_moves_the_last_training_images_to_validation():
    images = torch.rand(10, 4, 6)
    data = hold_out(make_completion_data(images, 8), 3)
    torch.testing.assert_close(data.train.images, images[:5])
    torch.testing.assert_close(data.validation.images, images[5:8])
    torch.testing.assert_close(data.test.images, images[8:])
    with pytest.raises(ValueError, match="validation size"):
        hold_out(make_completion_data(images, 8), 8)

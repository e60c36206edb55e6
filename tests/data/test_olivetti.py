"""Olivetti faces: layout (upright), 1/255 scale, the paper's split and half-image pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from icnn.data.olivetti import join_halves, load_olivetti, olivetti_split, split_halves


@pytest.fixture(scope="module")
def mat_path(data_dir) -> Path:
    return data_dir / "olivetti" / "olivettifaces.mat"


@pytest.fixture(scope="module")
def images(mat_path) -> torch.Tensor:
    return load_olivetti(mat_path)


def test_shape_dtype_and_scale(images) -> None:
    assert images.shape == (400, 64, 64)
    assert images.dtype == torch.float32
    assert float(images.min()) == 0.0
    # Divided by 255 like the paper's code (sklearn divides by the max, 242).
    assert float(images.max()) == pytest.approx(242 / 255, abs=1e-7)
    # SOURCE.md: raw mean 132.384 = sklearn's 0.547042 * 242.
    assert float(images.double().mean()) == pytest.approx(0.547042 * 242 / 255, abs=1e-5)


def test_image_i_is_column_i_read_column_major(images, mat_path) -> None:
    faces = scipy.io.loadmat(mat_path)["faces"]
    for i in (0, 1, 217, 399):
        expected = faces[:, i].reshape(64, 64, order="F") / 255.0
        np.testing.assert_allclose(images[i].numpy(), expected, atol=1e-7)


def test_faces_are_upright_not_flipped_or_transposed(images) -> None:
    rows = images.double().mean(dim=(0, 2))
    # Forehead and hair at the top are brighter than chin, neck and background at the bottom.
    assert float(rows[:8].mean()) > float(rows[-8:].mean()) + 0.1
    # Faces are roughly mirror-symmetric left-right, far less so top-bottom.
    left_right = float((images - images.flip(-1)).abs().mean())
    top_bottom = float((images - images.flip(-2)).abs().mean())
    assert left_right < 0.8 * top_bottom


def test_split_is_first_350_then_last_50(images) -> None:
    train, test = olivetti_split(images)
    assert train.shape == (350, 64, 64) and test.shape == (50, 64, 64)
    assert torch.equal(train[-1], images[349]) and torch.equal(test[0], images[350])


def test_split_needs_400_images() -> None:
    with pytest.raises(ValueError, match="expected 400 Olivetti images"):
        olivetti_split(torch.zeros(399, 64, 64))


def test_halves_follow_the_authors_code() -> None:
    images = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    x, y = split_halves(images)
    assert x.shape == y.shape == (2, 3, 4)
    assert torch.equal(y, images[..., :4])  # target: left half, columns 0..3
    assert torch.equal(x, images[..., [7, 6, 5, 4]])  # right half, mirrored
    assert torch.equal(join_halves(x, y), images)


def test_halves_round_trip_on_faces(images) -> None:
    x, y = split_halves(images[:5])
    assert x.shape == y.shape == (5, 64, 32)
    assert torch.equal(join_halves(x, y), images[:5])


def test_halves_need_an_even_width() -> None:
    with pytest.raises(ValueError, match="even image width, got W=7"):
        split_halves(torch.zeros(2, 4, 7))


def test_join_needs_matching_halves() -> None:
    with pytest.raises(ValueError, match="same shape"):
        join_halves(torch.zeros(2, 4, 3), torch.zeros(2, 4, 4))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_olivetti(tmp_path / "absent.mat")


def test_mat_without_faces(tmp_path: Path) -> None:
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"pixels": np.zeros((4, 4))})
    with pytest.raises(ValueError, match=r"variable 'faces', got variables \['pixels'\]"):
        load_olivetti(path)


def test_mat_with_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "small.mat"
    scipy.io.savemat(path, {"faces": np.zeros((4096, 10), dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"shape \(4096, 400\), got \(4096, 10\)"):
        load_olivetti(path)


def test_not_a_mat_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.mat"
    path.write_text("not matlab")
    with pytest.raises(ValueError, match="expected a MATLAB .mat file"):
        load_olivetti(path)

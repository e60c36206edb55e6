"""load_images: (N, H, W) stacks in [0, 1] from .npy or the Olivetti .mat."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from icnn.data.images import load_images


def save(tmp_path: Path, array: np.ndarray, name: str = "images.npy") -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


def test_npy_stack(tmp_path: Path) -> None:
    array = np.random.default_rng(0).random((3, 5, 4))
    images = load_images(save(tmp_path, array))
    assert images.shape == (3, 5, 4) and images.dtype == torch.float32
    np.testing.assert_allclose(images.numpy(), array, rtol=1e-6)


def test_olivetti_mat(data_dir) -> None:
    images = load_images(data_dir / "olivetti" / "olivettifaces.mat")
    assert images.shape == (400, 64, 64)


@pytest.mark.parametrize("shape", [(5, 4), (2, 1, 5, 4)])
def test_wrong_ndim(tmp_path: Path, shape) -> None:
    message = f"expected images of shape (N, H, W), got shape {shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_images(save(tmp_path, np.zeros(shape)))


def test_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"values in \[0, 1\], got range \[0.0, 255.0\]"):
        load_images(save(tmp_path, np.array([[[0.0, 255.0]]])))


def test_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="finite values, got 1 NaN/inf"):
        load_images(save(tmp_path, np.array([[[0.5, np.nan]]])))


def test_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        load_images(save(tmp_path, np.zeros((0, 4, 4))))


def test_other_suffix(tmp_path: Path) -> None:
    path = tmp_path / "images.png"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="expected a .npy or .mat file, got suffix '.png'"):
        load_images(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_images(tmp_path / "absent.npy")


def test_object_array_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[[None]]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="numeric .npy array"):
        load_images(path)

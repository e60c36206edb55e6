"""Fixtures shared by the completion tests."""

import numpy as np
import pytest


@pytest.fixture
def brightness_faces(tmp_path):
    """24 images 8x8: a shared pattern times a per-image brightness, so x tells y's brightness."""
    rng = np.random.default_rng(0)
    pattern = 0.6 + 0.4 * np.outer(np.hanning(8), np.hanning(8))
    brightness = rng.uniform(0.15, 1.0, size=(24, 1, 1))
    path = tmp_path / "faces.npy"
    np.save(path, (brightness * pattern).astype(np.float32))
    return path

"""Fixtures for the data tests: the shared benchmark folder, skipped only when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from icnn.data.paths import default_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``default_data_dir()``; tests that need the real files skip if it does not exist."""
    path = default_data_dir()
    if not path.is_dir():
        pytest.skip(f"benchmark data folder not found at {path} (set ICNN_DATA_DIR)")
    return path

"""Fixtures for the multi-label task tests: the shared benchmark folder (skip if absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from icnn.data.paths import default_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if not (path / "emotions" / "emotions-train.arff").is_file():
        pytest.skip(f"benchmark data not found under {path} (set ICNN_DATA_DIR)")
    return path

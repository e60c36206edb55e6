"""Shared test settings: deterministic seeds, few threads, hypothesis profile for CI."""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

from icnn.data.paths import default_data_dir

torch.set_num_threads(1)  # tests are small; pytest-xdist runs one worker per core
settings.register_profile(
    "ci", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmark data (``default_data_dir()``). Tests that read the real files skip
    when the folder is absent on a developer's machine, and fail under CI (``.ci/run`` sets
    ``CI``), where it must be present; a file missing from a present folder is an error."""
    path = default_data_dir()
    if not path.is_dir():
        message = f"benchmark data not found under {path} (set ICNN_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path

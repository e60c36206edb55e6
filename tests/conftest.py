"""Shared test settings: deterministic seeds, few threads, hypothesis profile for CI."""

import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)  # tests are small; pytest-xdist runs one worker per core
settings.register_profile(
    "ci", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)

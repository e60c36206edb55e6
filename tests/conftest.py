"""Shared test settings: deterministic seeds, few threads, hypothesis profiles.

Hypothesis profiles, chosen by the environment variable ``ICNN_HYPOTHESIS_PROFILE``:

- ``ci`` (the default): 15 examples a property, so ``make test`` stays within CI's budget;
- ``slow``: many more examples, for the tests marked ``property``; ``.ci/run`` runs
  ``ICNN_HYPOTHESIS_PROFILE=slow pytest -m property tests`` as a step of its own.

Both are derandomized, so a CI failure reproduces with the same command.
"""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

from icnn.data.paths import default_data_dir

SLOW_EXAMPLES = 200  # tuned so that the slow step of .ci/run stays under 4 minutes on 2 cores

torch.set_num_threads(1)  # tests are small; pytest-xdist runs one worker per core
HYPOTHESIS_PROFILES = {"ci": 15, "slow": SLOW_EXAMPLES}
for _name, _examples in HYPOTHESIS_PROFILES.items():
    settings.register_profile(
        _name, max_examples=_examples, deadline=None,
        suppress_health_check=[HealthCheck.too_slow], derandomize=True,
    )
_profile = os.environ.get("ICNN_HYPOTHESIS_PROFILE", "ci")
if _profile not in HYPOTHESIS_PROFILES:
    raise ValueError(f"ICNN_HYPOTHESIS_PROFILE must be one of {sorted(HYPOTHESIS_PROFILES)}, "
                     f"got {_profile!r}")
settings.load_profile(_profile)


@pytest.fixture
def restore_threads():
    """Put torch's thread count back after a benchmark script set its own (``--threads``)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


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


@pytest.fixture
def without_sklearn(monkeypatch):
    """Imports of ``sklearn`` raise ImportError within the test, as on a core-only install."""
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)

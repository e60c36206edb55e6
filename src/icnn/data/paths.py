"""Where the benchmark data live; the library never downloads anything.

The data folder is, in order of preference:

1. the environment variable ``ICNN_DATA_DIR`` (when set and not empty);
2. ``shared/data`` beside the repository root, i.e. ``<repo>/../shared/data``.

The second rule holds for a development checkout (``src/icnn/data/paths.py`` is four levels
below the repository root) and for CI, which clones the repository into a folder that has a
copy of ``shared/`` beside it. Nothing checks that the folder exists: callers (tests, tasks)
decide whether a missing folder is an error or a reason to skip.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "ICNN_DATA_DIR"

# src/icnn/data/paths.py -> parents[3] is the repository root.
_REPO_ROOT = Path(__file__).resolve().parents[3]


def default_data_dir() -> Path:
    """Return the data folder (``$ICNN_DATA_DIR`` or ``<repo>/../shared/data``), resolved.

    The folder holds one sub-folder per data set (``bibtex/``, ``yeast/``, ``olivetti/``, ...),
    each with its ``SOURCE.md``. The path is returned whether or not it exists.
    """
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser().resolve()
    return (_REPO_ROOT / ".." / "shared" / "data").resolve()

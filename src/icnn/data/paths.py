"""Where the benchmark data live; the library never downloads anything.

The data folder is, in order of preference:

1. the environment variable ``ICNN_DATA_DIR`` (when set and not empty);
2. ``shared/data`` beside the repository root, i.e. ``<repo>/../shared/data``.

The second rule holds for a development checkout (``src/icnn/data/paths.py`` is four levels
below the repository root) and for CI, which clones the repository into a folder that has a
copy of ``shared/`` beside it. Nothing checks that the folder exists: callers (tests, tasks)
decide whether a missing folder is an error or a reason to skip.

Files that are kept (``metrics.json``, recorded commands) name data by :func:`recorded_path`:
as the user gave them, relative to the repository (``../shared/data/...``) or under
``$ICNN_DATA_DIR``, never one machine's absolute path when that can be avoided.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

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


def recorded_path(path: str | os.PathLike[str]) -> str:
    """How ``path`` is written into a kept file (``metrics.json``, recorded commands).

    Reading goes through the path itself; only the record changes:

    1. a relative path is kept as given (relative to the folder the command ran in);
    2. an absolute path inside ``$ICNN_DATA_DIR`` (when set) becomes ``$ICNN_DATA_DIR/<rest>``;
    3. an absolute path inside the repository or inside ``<repo>/../shared/data`` becomes relative
       to the repository root (``../shared/data/bibtex/...``, ``runs/...``);
    4. any other absolute path is kept: the user named it.

    Args:
        path: the path a command reads or writes.

    Returns:
        The path to record, with ``/`` separators for cases 2 and 3.
    """
    given = Path(path)
    if not given.is_absolute():
        return str(path)
    resolved = given.expanduser().resolve()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    if from_env:
        inside = _relative_to(resolved, Path(from_env).expanduser().resolve())
        if inside is not None:
            return str(PurePosixPath("$" + DATA_DIR_ENV, *inside.parts))
    inside = _relative_to(resolved, _REPO_ROOT)
    if inside is not None:
        return PurePosixPath(*inside.parts).as_posix() if inside.parts else "."
    # the shared data folder by its name beside the repository, not by where a symbolic link
    # (a CI checkout's ../shared -> the real folder) resolves to
    inside = _relative_to(resolved, (_REPO_ROOT / ".." / "shared" / "data").resolve())
    if inside is not None:
        return PurePosixPath("..", "shared", "data", *inside.parts).as_posix()
    return str(path)


def _relative_to(path: Path, base: Path) -> Path | None:
    """``path`` relative to ``base`` when it lies inside it, else None."""
    try:
        return path.relative_to(base)
    except ValueError:
        return None

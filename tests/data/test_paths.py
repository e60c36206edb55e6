"""default_data_dir: $ICNN_DATA_DIR first, else shared/data beside the repository."""

from __future__ import annotations

from pathlib import Path

from icnn.data import paths
from icnn.data.paths import default_data_dir


def test_env_var_wins(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ICNN_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path.resolve()


def test_blank_env_var_is_ignored(monkeypatch) -> None:
    monkeypatch.delenv("ICNN_DATA_DIR", raising=False)
    fallback = default_data_dir()
    for blank in ("", "  "):
        monkeypatch.setenv("ICNN_DATA_DIR", blank)
        assert default_data_dir() == fallback


def test_fallback_is_shared_data_beside_the_repository(monkeypatch) -> None:
    monkeypatch.delenv("ICNN_DATA_DIR", raising=False)
    repo_root = Path(paths.__file__).resolve().parents[3]
    assert (repo_root / "pyproject.toml").is_file()
    assert default_data_dir() == (repo_root.parent / "shared" / "data").resolve()

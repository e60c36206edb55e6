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


def test_recorded_path_keeps_a_relative_path_as_given() -> None:
    assert paths.recorded_path("data/faces.npy") == "data/faces.npy"
    assert paths.recorded_path(Path("../shared/data/x.arff")) == str(Path("../shared/data/x.arff"))


def test_recorded_path_of_the_default_data_folder_is_relative_to_the_repository(monkeypatch) -> None:
    monkeypatch.delenv("ICNN_DATA_DIR", raising=False)
    target = default_data_dir() / "bibtex" / "bibtex-train.arff"
    assert paths.recorded_path(target) == "../shared/data/bibtex/bibtex-train.arff"
    repo_root = Path(paths.__file__).resolve().parents[3]
    assert paths.recorded_path(repo_root / "runs" / "demo") == "runs/demo"


def test_recorded_path_inside_the_env_folder_names_the_variable(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ICNN_DATA_DIR", str(tmp_path))
    assert paths.recorded_path(default_data_dir() / "olivetti" / "faces.mat") == (
        "$ICNN_DATA_DIR/olivetti/faces.mat")


def test_recorded_path_keeps_another_absolute_path(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ICNN_DATA_DIR", raising=False)
    assert paths.recorded_path(tmp_path / "x.npy") == str(tmp_path / "x.npy")

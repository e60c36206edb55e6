"""Every gallery example runs at reduced size, asserts what it shows, and saves its figure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
MAX_LINES = 80
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_gallery_has_the_six_stories() -> None:
    names = {path.stem for path in EXAMPLES}
    assert names >= {"fit_convex_function", "argmin_certificate", "solver_comparison",
                     "learn_through_argmin", "picnn_conditional", "checkpoint_safety"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_is_short_and_has_a_docs_page(example: Path) -> None:
    lines = example.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"{example.name}: {len(lines)} lines, at most {MAX_LINES}"
    page = ROOT / "docs" / "gallery" / f"{example.stem}.md"
    assert page.is_file(), f"expected a gallery page {page}"
    text = page.read_text()
    assert f'--8<-- "examples/{example.name}"' in text and f"figures/{example.stem}.png" in text


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs_fast_and_saves_its_figure(example: Path, tmp_path: Path) -> None:
    env = {**os.environ, "ICNN_GALLERY_FAST": "1", "ICNN_GALLERY_OUT": str(tmp_path / "figures"),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"{example.name} failed:\n{done.stdout}\n{done.stderr}"
    figure = tmp_path / "figures" / f"{example.stem}.png"
    assert figure.is_file(), f"{example.name} wrote no {figure.name}"
    assert figure.read_bytes()[:8] == PNG_SIGNATURE and figure.stat().st_size > 10_000

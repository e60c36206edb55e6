"""benchmarks/ot.py on a tiny Gaussian pair: every row scored, the files written."""

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ot.py"


@pytest.mark.slow
def test_benchmark_rows_and_files(tmp_path, monkeypatch, restore_threads):
    pytest.importorskip("ot")
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--problems", "gaussian:2", "--solvers", "w2gn",
                                      "--epochs", "1", "--samples", "256", "--pot-samples", "64",
                                      "--hidden", "8", "--no-ott", "--out", str(tmp_path)])
    monkeypatch.setattr(sys, "path", list(sys.path))
    runpy.run_path(str(SCRIPT), run_name="__main__")
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results[0]["rows"]
    assert set(rows) == {"linear", "pot", "w2gn"}
    # the linear map is exact for a Gaussian pair up to the sample moments; POT's 64-point plan is not
    assert rows["linear"]["l2_uvp_forward"] < 5 < rows["pot"]["l2_uvp_forward"]
    assert "| gaussian:2 | w2gn |" in (tmp_path / "table.md").read_text()

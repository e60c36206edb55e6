"""`icnn demo` on a tiny budget: prints both models, the convexity report, writes its files."""

from __future__ import annotations

import argparse
import json

from icnn.tasks import demo


def test_tiny_demo_prints_scores_and_convexity_and_writes_plot(tmp_path, capsys, data_dir):
    parser = argparse.ArgumentParser(prog="icnn demo")
    demo.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--epochs", "1", "--ff-epochs", "2",
                              "--max-train", "200", "--y-hidden", "8", "--solver-iters", "2",
                              "--no-progress"])
    assert demo.run(args) == 0
    printed = capsys.readouterr().out
    assert "example F1" in printed and "PICNN" in printed and "convex:" in printed
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["ff"]) >= {"example_f1", "macro_f1", "micro_f1", "hamming"}
    assert metrics["convexity"]["ok"] is True
    assert (tmp_path / "demo.png").stat().st_size > 10_000

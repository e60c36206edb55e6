"""``icnn benchmark NAME``: run one of the ratio benchmarks in the repository's ``benchmarks/``."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

HELP = "run a benchmark from benchmarks/ (overhead, init_comparison, inference, latency)"
DESCRIPTION = (
    "Run a benchmark script from the source checkout's benchmarks/ folder. Each prints ratios "
    "against a named baseline measured in the same run. Flags after NAME go to the script "
    "(e.g. `icnn benchmark overhead -- --repeats 50`)."
)
NAMES = ("overhead", "init_comparison", "inference", "latency")


def benchmarks_dir() -> Path:
    """The checkout's ``benchmarks/`` folder (the scripts ship with the source, not the wheel)."""
    return Path(__file__).resolve().parents[3] / "benchmarks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``icnn benchmark`` to ``parser``, each with a help text."""
    parser.add_argument("name", choices=NAMES, help="which benchmark to run")
    parser.add_argument("script_args", nargs=argparse.REMAINDER,
                        help="arguments passed on to the benchmark script")


def run(args: argparse.Namespace) -> int:
    """Run ``icnn benchmark`` with the parsed ``args``; return the exit status (0 on success)."""
    script = benchmarks_dir() / f"{args.name}.py"
    if not script.is_file():
        raise FileNotFoundError(f"expected the benchmark script {script}, got no such file; "
                                "benchmarks ship with the source checkout, not the wheel")
    extra = [a for a in args.script_args if a != "--"]
    saved, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *extra]
    # as `python benchmarks/NAME.py` would: the script's folder first, for its helper modules
    sys.path.insert(0, str(script.parent))
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = saved, saved_path
    return 0

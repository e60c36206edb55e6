"""The ``icnn`` command line: one entry point, one subcommand per experiment.

Each subcommand lives in its task's ``command.py`` module, which exposes

- ``HELP``: a one-line summary shown by ``icnn --help``;
- ``add_arguments(parser)``: the flags, each with a help text;
- ``run(args) -> int``: the job itself (heavy imports happen inside it).

One error contract for every subcommand, kept here in :func:`main`: a user error
(:data:`USER_ERRORS`: a ValueError, which includes :class:`icnn.CheckpointError`, or a missing,
misplaced or unreadable file) prints ``icnn <command>: error: <message>`` on one line to stderr
and exits 2, like argparse's own errors; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

# subcommand name -> module implementing it (imported when the parser is built; keep them light)
COMMANDS: dict[str, str] = {
    "demo": "icnn.tasks.demo",
    "train": "icnn.tasks.regression.command",
    "infer": "icnn.tasks.infer_command",
    "multilabel": "icnn.tasks.multilabel.command",
    "completion": "icnn.tasks.completion.command",
    "rl": "icnn.tasks.rl.command",
    "figure": "icnn.tasks.synthetic.command",
    "benchmark": "icnn.tasks.benchmark_command",
    "ot": "icnn.ot.command",
}

# errors that mean "the input was wrong", not "the code is wrong": reported in one line, exit 2
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="icnn",
        description="Input convex neural networks: train, evaluate, infer, benchmark and plot.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icnn`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except USER_ERRORS as error:
        print(f"icnn {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (newlines and the indentation after them folded)."""
    message = str(error) or type(error).__name__
    return re.sub(r"\s*\n\s*", " ", message).strip()


if __name__ == "__main__":
    sys.exit(main())

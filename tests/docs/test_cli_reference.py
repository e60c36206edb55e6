"""The generated CLI reference (docs/hooks/generated.py) lists every subcommand and every flag."""

import argparse
import importlib.util
from pathlib import Path

from icnn.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("docs_hook", ROOT / "docs" / "hooks" / "generated.py")
hook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hook)


def _walk(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(prefix, parser)]
    for name, sub in hook._sub_parsers(parser).items():
        found += _walk(sub, f"{prefix} {name}")
    return found


def test_every_subcommand_and_flag_is_in_the_reference() -> None:
    text = hook.cli_reference()
    parsers = _walk(build_parser(), "icnn")
    assert {p.split()[1] for p, _ in parsers if len(p.split()) > 1} == set(COMMANDS)
    for prefix, parser in parsers[1:]:
        section = text.split(f"`{prefix}`", 1)
        assert len(section) == 2, f"no section for {prefix}"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            shown = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
            assert f"`{shown}" in section[1], f"{prefix}: {shown} is missing"


def test_table_cells_cannot_break_the_markdown() -> None:
    assert hook._cell("a|b\nc <env>") == "a\\|b c &lt;env&gt;"

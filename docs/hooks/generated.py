"""MkDocs hook: pages and pictures made from the repository at build time, never committed twice.

- ``reference/cli.md``: the CLI reference, written from the argparse parsers of ``icnn.cli``
  (every subcommand, sub-mode and flag, with its default and help text).
- ``assets/experiments/...``: the result figures recorded under ``experiments/`` (PNG, GIF).
- ``gallery/figures/*.png``: the gallery's figures, written by ``make gallery`` into
  ``build/gallery`` (``$ICNN_GALLERY_OUT``); a missing figure fails the strict build with the
  command that makes it.

After the build, every name in the ``__all__`` of each public module (:data:`REFERENCE_PAGES`)
must have rendered on its reference page; a name that did not fails the build.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mkdocs is imported where it is used, so the tests need only argparse
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

ROOT = Path(__file__).resolve().parents[2]
FIGURE_SUFFIXES = (".png", ".gif")
# public module -> its API reference page (under site/)
REFERENCE_PAGES = {
    "icnn": "reference/icnn/index.html", "icnn.nn": "reference/nn/index.html",
    "icnn.solvers": "reference/solvers/index.html", "icnn.learn": "reference/learn/index.html",
    "icnn.data": "reference/data/index.html", "icnn.potentials": "reference/potentials/index.html",
    "icnn.ot": "reference/ot/index.html",
}
NOT_RENDERED = {"__version__"}


def gallery_dir() -> Path:
    """Where ``make gallery`` writes the example figures."""
    return Path(os.environ.get("ICNN_GALLERY_OUT", ROOT / "build" / "gallery"))


def _cell(text: object) -> str:
    """``text`` made safe inside a Markdown table cell."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " "))


def _flag_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | default | help |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.choices is not None:
            name += " {" + ",".join(map(str, action.choices)) + "}"
        elif action.option_strings and action.nargs != 0:
            name += f" {action.metavar or action.dest.upper()}"
        default = "" if action.default in (None, argparse.SUPPRESS) or action.required else action.default
        if isinstance(action, argparse.BooleanOptionalAction):
            name = ", ".join(action.option_strings)
        help_text = argparse.HelpFormatter(parser.prog)._expand_help(action) if action.help else ""
        shown = f"`{str(default).replace('|', '/')}`" if default != "" else ""
        rows.append(f"| `{name.replace('|', '/')}` | {shown} | {_cell(help_text)} |")
    return rows


def _sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference() -> str:
    """The Markdown of the CLI reference, from :func:`icnn.cli.build_parser`."""
    from icnn.cli import build_parser

    parser = build_parser()
    lines = ["# Command line reference", "",
             "Generated from the argparse parsers of `icnn.cli` at every docs build. A user error "
             "prints one line, `icnn COMMAND: error: ...`, and exits with status 2.", "",
             "```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in _sub_parsers(parser).items():
        lines += [f"## `icnn {name}`", "", _cell(sub.description or ""), "",
                  "```text", sub.format_usage().strip(), "```", "", *_flag_rows(sub), ""]
        for mode, mode_parser in _sub_parsers(sub).items():
            lines += [f"### `icnn {name} {mode}`", "", _cell(mode_parser.description or ""), "",
                      "```text", mode_parser.format_usage().strip(), "```", "",
                      *_flag_rows(mode_parser), ""]
    return "\n".join(lines)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated CLI page, the experiments' figures and the gallery's figures."""
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    for folder in (ROOT / "experiments",):
        for path in sorted(folder.rglob("*")):
            if path.suffix in FIGURE_SUFFIXES and "runs" not in path.relative_to(ROOT).parts:
                uri = "assets/" + path.relative_to(ROOT).as_posix()
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    gallery = gallery_dir()
    for name in sorted((ROOT / "examples").glob("*.py")):
        figure = gallery / f"{name.stem}.png"
        if not figure.is_file():
            raise PluginError(f"expected the gallery figure {figure}, got no such file; "
                              "run `make gallery` (or ICNN_GALLERY_FAST=1 make gallery) first")
    for figure in sorted(gallery.glob("*.png")):  # the examples' and the init benchmark's
        files.append(File.generated(config, f"gallery/figures/{figure.name}", abs_src_path=str(figure)))
    return files


def missing_reference(site_dir: Path) -> list[str]:
    """Public names (``module.__all__``) that rendered no heading on their reference page."""
    missing = []
    for module_name, page in REFERENCE_PAGES.items():
        html = (site_dir / page).read_text(encoding="utf-8")
        ids = set(re.findall(r'id="([A-Za-z_][\w.]*)"', html))
        tails = {identifier.rsplit(".", 1)[-1] for identifier in ids}
        for name in importlib.import_module(module_name).__all__:
            if name not in NOT_RENDERED and f"{module_name}.{name}" not in ids and name not in tails:
                missing.append(f"{module_name}.{name}")
    return missing


def on_post_build(config: MkDocsConfig) -> None:
    """Fail the build when a public name is missing from the API reference."""
    from mkdocs.exceptions import PluginError

    missing = missing_reference(Path(config.site_dir))
    if missing:
        raise PluginError(f"expected every public name in the API reference, got no entry for "
                          f"{', '.join(missing)}; add it to docs/reference/*.md")

"""Every ```python block of the documentation pages runs, page by page, in one namespace a page.

Blocks of a page share their variables in order (like a notebook), so a page can build a model
in one block and solve with it in the next. They run in a temporary working directory; the
assertions they contain are the test. A block that only includes a gallery script
(``--8<-- "examples/NAME.py"``) is skipped here: ``test_gallery.py`` runs the script.
"""

import os
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.parts)
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
SNIPPET = "--8<--"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each fenced ``python`` block, its indentation removed."""
    blocks = []
    for match in FENCE.finditer(text):
        indent = len(match.group("indent"))
        body = "".join(line[indent:] for line in match.group("body").splitlines(keepends=True))
        if all(line.startswith(SNIPPET) for line in body.splitlines() if line.strip()):
            continue  # a gallery script included whole: tests/docs/test_gallery.py runs it
        blocks.append((text.count("\n", 0, match.start()) + 2, body))
    return blocks


def test_the_extractor_finds_indented_and_plain_blocks() -> None:
    text = ("# t\n\n```python\na = 1\n```\n\n- item\n\n    ```python\n    b = a + 1\n    ```\n\n"
            "```bash\nls\n```\n")
    assert python_blocks(text) == [(4, "a = 1\n"), (10, "b = a + 1\n")]


PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p.read_text())]


def test_the_docs_have_code_to_run() -> None:
    names = {p.relative_to(ROOT / "docs").as_posix() for p in PAGES_WITH_CODE}
    assert "getting-started.md" in names and len(names) >= 5, names


@pytest.mark.parametrize("page", PAGES_WITH_CODE,
                         ids=[p.relative_to(ROOT / "docs").as_posix() for p in PAGES_WITH_CODE])
def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for line, code in python_blocks(page.read_text()):
        compiled = compile(code, f"{page.relative_to(ROOT)}:{line}", "exec")
        exec(compiled, namespace)  # noqa: S102 - the docs' own code is what is tested
    assert os.getcwd() == str(tmp_path)

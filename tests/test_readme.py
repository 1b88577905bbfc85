"""The README's copy-paste runtime example is the file the tests run, and its two commands are real targets."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_runtime_example_is_the_tested_handler() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Protect your function", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    handler = (ROOT / "examples" / "runtime" / "aws" / "handler.py").read_text()
    body = handler.split('"""', 2)[2].lstrip("\n")  # the module docstring is not repeated in the README
    assert block.group(1) == body


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("\n\n", 3)[1]
    assert "make demo" in head and "make test" in head
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)

"""docs/runtime.md shows the example files verbatim (the files are what the platform tests run)."""

from __future__ import annotations

import re

from runtime_harness import REPO


def test_documented_examples_are_the_tested_files() -> None:
    doc = (REPO / "docs" / "runtime.md").read_text()
    blocks = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)\n```", doc, flags=re.S)
    assert {path for path, _ in blocks} == {
        "examples/runtime/aws/sas.toml",
        "examples/runtime/aws/handler.py",
        "examples/runtime/aws/handler_powertools.py",
        "examples/runtime/gcp/main.py",
        "examples/runtime/azure/function_app.py",
    }
    for path, code in blocks:
        assert code == (REPO / path).read_text().rstrip(), path

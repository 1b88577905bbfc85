"""Hostile or damaged function packages found by mutation fuzzing: archives, templates and handler code.

Every fixture is built in code. Each test is named after the bug it guards against.
"""

from __future__ import annotations

import ast

from sas.scan.code import checks
from sas.scan.code.analyzer import check_source


def test_reversed_assignment_chain_is_solved_in_one_pass_not_twenty(monkeypatch):
    # a0 = event is the last line, so the old fixpoint needed one full pass over every binding per link
    chain = "".join(f"    a{i} = a{i - 1}\n" for i in range(30, 0, -1))
    filler = "".join(f"    u{i} = {i}\n" for i in range(300))
    source = f"import os\n\ndef handler(event, context):\n{filler}{chain}    a0 = event\n    os.system(a30)\n"
    calls = [0]
    real = checks.Taint._expr

    def counting(self: checks.Taint, node: ast.AST) -> bool:
        calls[0] += 1
        return real(self, node)

    monkeypatch.setattr(checks.Taint, "_expr", counting)
    findings = check_source(source.encode(), "app.py")
    assert "SAS-CODE-003" in {f.rule_id for f in findings}  # a chain longer than the old 20-pass cap
    assert calls[0] < 4 * 332  # each binding checked about once, not once per pass

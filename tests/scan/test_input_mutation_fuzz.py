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


def _alias_levels(levels: int, indent: str = "") -> str:
    """YAML anchors l0..l<levels>, each a list of ten aliases of the one before: 10**levels leaves."""
    lines = [f'{indent}l0: &l0 ["*", "*", "*", "*", "*", "*", "*", "*", "*", "*"]']
    lines += [f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_intrinsic_with_wrong_arity_over_an_alias_bomb_is_not_rendered_in_full():
    from sas.scan.iac import yamlsrc
    from sas.scan.iac.intrinsics import Evaluator

    # str() of the argument in the Unknown's message expanded every alias: 10**9 leaves never returned
    doc = yamlsrc.load(
        _alias_levels(5) + "x: !Join [*l5, *l5, *l5]\ny: !GetAtt [*l5, a, b]\nz: !Select [*l5, *l5, *l5]\n"
    )
    evaluator = Evaluator({})
    for key in ("x", "y", "z"):
        assert len(str(evaluator.value(doc[key]))) < 1000


def test_yaml_mapping_key_that_aliases_a_bomb_is_not_rendered_in_full():
    from sas.scan.iac import yamlsrc

    doc = yamlsrc.load(_alias_levels(5) + "? *l5\n: v\n")
    assert all(len(str(key)) < 1000 for key in doc)


def test_billion_laughs_template_with_tagged_alias_finishes():
    import time
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from sas.scan.engine import scan
    from sas.scan.iac.analyzer import IacAnalyzer

    # the !Join tag on a shared list made the evaluator render 10**6 leaves into each Unknown's message
    lines = ['    l0: &l0 ["*", "*", "*", "*", "*", "*", "*", "*", "*", "*"]']
    for i in range(1, 8):
        tag = "!Join " if i == 3 else ""
        lines.append(f"    l{i}: {tag}&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    text = (
        "AWSTemplateFormatVersion: '2010-09-09'\nMappings:\n  M:\n" + "\n".join(lines) + "\nResources:\n  F:\n"
        "    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Handler: a.h\n"
        "      Environment: {Variables: {A: *l7}}\n"
    )
    with TemporaryDirectory() as tmp:
        Path(tmp, "template.yaml").write_text(text)
        started = time.perf_counter()
        result = scan(tmp, analyzers=[IacAnalyzer()])
        assert time.perf_counter() - started < 5
    assert result.findings


def test_serverless_billion_laughs_is_not_copied_out_alias_by_alias():
    import time

    from sas.scan.iac import serverless, yamlsrc

    # resolving ${...} variables copied the document node by node, following every alias: 10**9 statements
    text = "service: s\ncustom:\n" + _alias_levels(9, "  ") + "provider: {name: aws, iam: {role: {statements: *l9}}}\n"
    text += "functions: {g: {handler: h.h}}\n"
    small = yamlsrc.load("service: s\nprovider: {name: aws}\ncustom:\n" + _alias_levels(3, "  "))
    copied = serverless._Vars(small, "serverless.yml", {}).value(small)
    assert copied["custom"]["l3"][0] is copied["custom"]["l3"][1]  # one copy per shared node
    started = time.perf_counter()
    deployment = serverless.parse(yamlsrc.load(text), "serverless.yml", {})
    assert time.perf_counter() - started < 5
    assert [f.name for f in deployment.functions] == ["g"]


def test_serverless_http_event_that_aliases_a_bomb_is_reported_not_rendered():
    from sas.scan.iac import serverless, yamlsrc

    # str() of a non-mapping http event (and of method, path, authorizer) expanded every alias of it
    text = "service: s\nprovider: {name: aws}\ncustom:\n" + _alias_levels(4, "  ")
    text += "functions: {f: {handler: h.h, events: [{http: *l4}, {httpApi: {method: *l4, path: *l4}}]}}\n"
    deployment = serverless.parse(yamlsrc.load(text), "serverless.yml", {})
    triggers = deployment.functions[0].triggers
    assert len(triggers) == 2
    assert all(len(str(t)) < 2000 for t in triggers)

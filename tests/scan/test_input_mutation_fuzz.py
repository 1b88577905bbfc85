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


_HANDLER = b"""import os, subprocess, pickle
API_KEY = "AKIAIOSFODNN7EXAMPLE"
def handler(event, context):
    subprocess.run(event["cmd"], shell=True)
    return pickle.loads(event["body"].encode())
"""
_SAM = b"""AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.7
      Environment: {Variables: {A: !Sub "arn:${AWS::Region}:${Bucket}", B: !GetAtt Role.Arn}}
      Policies:
        - Statement: [{Effect: Allow, Action: "*", Resource: !Join ["", ["arn:", !Ref Bucket]]}]
      FunctionUrlConfig: {AuthType: NONE}
      Events: {Api: {Type: Api, Properties: {Path: /x, Method: post}}}
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Statement: [{Effect: Allow, Principal: {AWS: "*"}, Action: sts:AssumeRole}]}
  Bucket: {Type: AWS::S3::Bucket}
"""
_SLS = b"""service: svc
provider:
  name: aws
  runtime: python3.7
  iam: {role: {statements: [{Effect: Allow, Action: ["*"], Resource: "*"}]}}
functions:
  hello:
    handler: handler.hello
    url: true
    environment: {TOKEN: "${self:custom.t}"}
    events: [{http: {path: /x, method: post}}, {httpApi: "*"}]
custom: {t: sk_live_abcdefghijklmnopqrstuvwx}
"""
_FUNCTION_JSON = b'{"bindings": [{"authLevel": "anonymous", "type": "httpTrigger", "direction": "in", "name": "req"}]}'
_TF = b"""resource "aws_lambda_function_url" "u" {
  function_name = aws_lambda_function.f.function_name
  authorization_type = "NONE"
}
resource "aws_lambda_function" "f" { runtime = "python3.7" }
"""


def _packages() -> dict[str, bytes]:
    import gzip
    import io
    import tarfile
    import zipfile

    files = {"app.py": _HANDLER, "template.yaml": _SAM, "serverless.yml": _SLS, "main.tf": _TF}
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return {
        "pkg.zip": zipped.getvalue(),
        "pkg.tar.gz": gzip.compress(tarred.getvalue()),
        "template.yaml": _SAM,
        "serverless.yml": _SLS,
        "function.json": _FUNCTION_JSON,
        "main.tf": _TF,
        "app.py": _HANDLER,
    }


_TEXT_JUNK = [b"!Ref", b"!Sub [", b"!GetAtt", b"!Foo", b"&a", b"*a", b"<<: *a", b"${", b"\x00", b"[" * 300, b"{", b"'"]
_BYTE_JUNK = [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f", b"../", b"/"]


def _mutant(rng, name: str, data: bytes) -> bytes:
    out = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif kind == 1:
        del out[rng.randrange(len(out)) :]
    elif kind == 2:
        at = rng.randrange(len(out))
        junk = _BYTE_JUNK if name.endswith((".zip", ".gz")) else _TEXT_JUNK
        out[at : at + 4 * rng.randrange(2)] = rng.choice(junk)
    elif kind == 3:
        at = rng.randrange(len(out))
        out[at:at] = out[at : at + rng.randint(1, 40)] * rng.randint(2, 20)
    else:
        at = rng.randrange(len(out))
        del out[at : at + rng.randint(1, 32)]
    return bytes(out)


def test_seeded_mutants_of_packages_templates_and_handlers_are_scanned_or_reported(tmp_path, capsys):
    import json
    import random

    from sas.cli import main

    rng = random.Random(20261121)
    seeds = _packages()
    names = sorted(seeds)
    for index in range(300):
        name = names[index % len(names)]
        target = tmp_path / str(index) / name
        target.parent.mkdir()
        target.write_bytes(_mutant(rng, name, seeds[name]))
        code = main(["scan", str(target), "-f", "json", "--no-progress"])
        out, err = capsys.readouterr()
        assert code in (0, 1), (index, name, err)
        assert "Traceback" not in err, (index, name)
        report = json.loads(out)
        assert report["summary"]["files"] >= 1 or report["errors"], (index, name)


def test_handler_named_through_site_packages_dotdot_is_checked_not_skipped_as_vendored(tmp_path):
    import io
    import zipfile

    from sas.scan.engine import scan

    # "site-packages/../app.py" extracts to the package root; the vendored-path test read it as a library
    evil = b"import os\ndef handler(event, context):\n    os.system(event['cmd'])\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("site-packages/../app.py", evil)
    package = tmp_path / "pkg.zip"
    package.write_bytes(buffer.getvalue())
    assert "SAS-CODE-003" in {f.rule_id for f in scan(package).findings}


def test_getatt_with_a_mapping_or_number_does_not_hide_the_templates_other_findings(tmp_path):
    from sas.scan.engine import scan
    from sas.scan.iac.analyzer import IacAnalyzer

    # refers_to indexed the GetAtt argument as a list: KeyError 0 stopped every check of the template,
    # leaving one medium "stopped early" finding where an admin role was
    (tmp_path / "template.yaml").write_text(
        "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  F:\n    Type: AWS::Lambda::Function\n"
        "    Properties:\n      Runtime: python3.12\n      Handler: a.h\n      Role: !GetAtt R.Arn\n"
        '      Environment: {Variables: {X: {"Fn::GetAtt": 5}}}\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n'
        "      AssumeRolePolicyDocument: {Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com},"
        " Action: sts:AssumeRole}]}\n"
        "      Policies: [{PolicyName: p, PolicyDocument:"
        ' {Statement: [{Effect: Allow, Action: "*", Resource: "*"}]}}]\n'
        "  U:\n    Type: AWS::Lambda::Url\n"
        '    Properties: {TargetFunctionArn: {"Fn::GetAtt": {a: 1}}, AuthType: NONE}\n'
    )
    ids = {f.rule_id for f in scan(tmp_path, analyzers=[IacAnalyzer()]).findings}
    assert "SAS-IAM-001" in ids
    assert "SAS-IAC-000" not in ids


def test_many_token_matches_on_one_long_line_are_located_in_linear_time():
    import time

    from sas.scan.code.secrets import token_hits

    # each match's line and column were counted from the top of the text: quadratic in the matches
    started = time.perf_counter()
    hits = list(token_hits("xoxb-" * 600_000))
    assert time.perf_counter() - started < 2
    assert hits and all(hit.line == 1 for hit in hits)
    located = list(token_hits('a\nb = "xoxb-1234567890abc"\n  c = "xoxb-1234567890abd" xoxb-1234567890abe\n'))
    assert [(h.line, h.column) for h in located] == [(2, 6), (3, 8), (3, 28)]


def test_serverless_with_tens_of_thousands_of_unresolved_variables_is_not_quadratic():
    import time

    from sas.scan.iac import serverless, yamlsrc

    # each unresolved ${...} searched the whole file for its line: 34,000 of them in 1 MB took 11 s
    text = "service: s\nprovider: {name: aws}\nfunctions:\n  f:\n    handler: h.h\n    environment:\n"
    text += "".join(f"      V{i}: ${{ssm:/x{i}}}\n" for i in range(30_000))
    doc = yamlsrc.load(text)
    started = time.perf_counter()
    deployment = serverless.parse(doc, "serverless.yml", {"serverless.yml": text})
    assert time.perf_counter() - started < 3
    assert len(deployment.issues) == 30_000
    assert deployment.issues[0].src.line == 7  # the first ones still point at their line


def test_zip_member_with_an_empty_name_is_scanned_not_raised(tmp_path):
    import io
    import zipfile

    from sas.cli import main

    # a central-directory name length flipped to 0: zipfile's ZipInfo.is_dir() raised IndexError out of the scan
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a", b"import os\nos.system('id')\n")
    data = bytearray(buffer.getvalue())
    central = data.index(b"PK\x01\x02")
    data[central + 28 : central + 30] = b"\x00\x00"  # name length 0, and the name dropped
    del data[central + 46]
    end = data.index(b"PK\x05\x06")
    data[end + 12 : end + 16] = (int.from_bytes(data[end + 12 : end + 16], "little") - 1).to_bytes(4, "little")
    package = tmp_path / "pkg.zip"
    package.write_bytes(bytes(data))
    assert zipfile.ZipFile(package).infolist()[0].filename == ""
    assert main(["scan", str(package), "-f", "json", "--no-progress"]) in (0, 1)

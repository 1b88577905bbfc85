"""Hostile and malformed deployment files: every parser answers with findings or issues, never a traceback."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sas.scan.iac import azure, cloudformation, serverless, terraform
from sas.scan.iac.checks import Checker

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.text(max_size=6),
    st.sampled_from(["*", "NONE", "AWS_IAM", "python3.8", "Allow", "Deny", "iam:PassRole", "anonymous"]),
)
_KEYS = st.sampled_from(
    [
        "Type", "Properties", "Runtime", "Policies", "Events", "Role", "Layers", "Environment", "Variables",
        "FunctionUrlConfig", "AuthType", "Statement", "Effect", "Action", "Resource", "Condition", "Ref",
        "Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::Join", "Auth", "Authorizer", "RestApiId", "ManagedPolicyArns",
        "PolicyDocument", "Roles", "S3ReadPolicy", "Principal", "FunctionName", "TargetFunctionArn", "Function",
        "provider", "functions", "iam", "role", "statements", "events", "http", "httpApi", "url", "authorizer",
        "environment", "layers", "runtime", "bindings", "authLevel", "type", "Values",
    ]
)  # fmt: skip
_TREE = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(_KEYS, st.text(max_size=3)), inner, max_size=5)
    ),
    max_leaves=30,
)
_TYPES = st.sampled_from(
    [
        "AWS::Serverless::Function", "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::IAM::Policy",
        "AWS::Lambda::Url", "AWS::Lambda::Permission", "AWS::ApiGateway::Method", "AWS::ApiGatewayV2::Route",
        "AWS::Lambda::EventInvokeConfig", "AWS::Serverless::Api", "AWS::IAM::ManagedPolicy",
    ]
)  # fmt: skip
_CFN = st.fixed_dictionaries(
    {
        "Transform": st.just("AWS::Serverless-2016-10-31"),
        "Globals": _TREE,
        "Parameters": _TREE,
        "Resources": st.dictionaries(
            st.sampled_from(["A", "F", "FRole", "Role"]),
            st.one_of(st.fixed_dictionaries({"Type": _TYPES, "Properties": _TREE}), _TREE),
            max_size=4,
        ),
    }
)
_SLS = st.fixed_dictionaries(
    {"service": st.just("s"), "provider": _TREE, "functions": _TREE, "custom": _TREE, "resources": _TREE}
)
_FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@_FAST
@given(_CFN)
def test_cloudformation_parser_never_raises(doc):
    Checker().run(cloudformation.parse(doc, "t.yaml"))


@_FAST
@given(_SLS)
def test_serverless_parser_never_raises(doc):
    Checker().run(serverless.parse(doc, "serverless.yml", {}))


@_FAST
@given(st.dictionaries(st.sampled_from(["bindings", "Values", "IsEncrypted"]), _TREE, max_size=3))
def test_azure_json_never_raises(doc):
    Checker().run(azure.parse_json_file(json.dumps(doc), "F/function.json", "function.json"))
    Checker().run(azure.parse_json_file(json.dumps(doc), "local.settings.json", "local.settings.json"))


@_FAST
@given(st.text(max_size=300))
def test_terraform_text_never_raises(text):
    Checker().run(terraform.parse("", [("main.tf", 'resource "aws_lambda_function" "f" {\n' + text)]))


@_FAST
@given(st.binary(max_size=400))
def test_random_bytes_named_like_templates(scan_files, data):
    res = scan_files({"template.yaml": b"AWSTemplateFormatVersion: x\n" + data, "main.tf": data})
    assert res.result.errors == () or all(e.message for e in res.result.errors)


def test_deeply_nested_yaml(scan_files):
    res = scan_files({"t.yaml": "AWSTemplateFormatVersion: x\nResources: " + "[" * 5000 + "]" * 5000 + "\n"})
    assert res.rule("SAS-IAC-000") or res.result.findings == ()


def test_deeply_nested_json(scan_files):
    res = scan_files({"t.json": '{"AWSTemplateFormatVersion": "x", "Resources": ' + "[" * 100000 + "]" * 100000 + "}"})
    assert res.rule("SAS-IAC-000") or res.result.findings == ()


def test_template_too_large_is_reported(scan_files):
    big = "AWSTemplateFormatVersion: x\n# " + "x" * (17 * 1024 * 1024) + "\n"
    (hit,) = scan_files({"template.yaml": big}).rule("SAS-IAC-000")
    assert "too large" in hit.message


def test_not_utf8_template(scan_files):
    res = scan_files({"template.yaml": b"AWSTemplateFormatVersion: '2010-09-09'\nResources: \xff\xfe\n"})
    assert res.rule("SAS-IAC-000")


def test_encrypted_local_settings_are_not_flagged(scan_files):
    doc = {"IsEncrypted": True, "Values": {"MODEL_API_TOKEN": "CfDJ8AAAAAAAAAAAAAAAAAAAAAAQzX2bV9yK3mN8pR1tU"}}
    assert scan_files({"local.settings.json": json.dumps(doc)}).result.findings == ()


def test_deeply_nested_template_does_not_crash_full_scan(tmp_path):
    """libyaml segfaulted and pure-Python YAML raised RecursionError out of a cross-file check."""
    from sas.scan.engine import scan

    (tmp_path / "template.yaml").write_text("AWSTemplateFormatVersion: x\nResources: " + "[" * 20000 + "]" * 20000)
    result = scan(tmp_path)  # every analyzer, as `sas scan` runs them
    assert any(f.rule_id == "SAS-IAC-000" for f in result.findings)

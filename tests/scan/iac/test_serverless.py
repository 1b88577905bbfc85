"""serverless.yml: both IAM keys, per-function roles, variables, http/httpApi/url events."""

from __future__ import annotations

import os

from sas.scan.iac import serverless, yamlsrc
from sas.scan.iac.model import Unknown
from sas.taxonomy import Severity

BAD = """
service: predictor
provider:
  name: aws
  runtime: python3.12
  iam:
    role:
      statements:
        - Effect: Allow
          Action: '*'
          Resource: '*'
functions:
  predict:
    handler: handler.predict
    url: true
"""

GOOD = """
service: predictor
provider:
  name: aws
  runtime: python3.12
  tracing:
    lambda: true
  iam:
    role:
      statements:
        - Effect: Allow
          Action: [dynamodb:GetItem]
          Resource: arn:aws:dynamodb:us-east-1:123456789012:table/predictions
functions:
  predict:
    handler: handler.predict
    reservedConcurrency: 10
    timeout: 10
    url:
      authorizer: aws_iam
"""


def test_v3_iam_role_statements_admin_is_found(scan_files):
    """checkov bypass: only the old iamRoleStatements key was read; v3's provider.iam.role.statements passed."""
    res = scan_files({"serverless.yml": BAD})
    assert {"SAS-IAM-001", "SAS-IAC-001", "SAS-IAM-010"} <= set(res.ids())
    assert res.worst() == Severity.CRITICAL


def test_old_iam_role_statements_key(scan_files):
    text = """
    service: s
    provider:
      name: aws
      runtime: python3.12
      iamRoleStatements:
        - Effect: Allow
          Action: [iam:PassRole, lambda:CreateFunction, lambda:InvokeFunction]
          Resource: '*'
    functions:
      f: {handler: h.f}
    """
    res = scan_files({"serverless.yml": text})
    assert any("lambda-001" in f.message for f in res.rule("SAS-IAM-004"))


def test_fixed_serverless_has_nothing_high(scan_files):
    res = scan_files({"serverless.yml": GOOD})
    assert res.ids("medium") == [], res.text()


def _parse(text: str, files: dict[str, str] | None = None):
    import textwrap

    return serverless.parse(yamlsrc.load(textwrap.dedent(text)), "serverless.yml", files or {})


def test_variables_self_file_and_defaults():
    dep = _parse(
        """
        service: s
        custom:
          table: preds-${sls:stage}
          cfg: ${file(./config/${opt:stage, 'prod'}.yml)}
        provider:
          name: aws
          stage: prod
          runtime: ${self:custom.cfg.runtime}
          environment:
            TABLE: ${self:custom.table}
            REGION: ${opt:region, 'eu-west-1'}
            HOME_DIR: ${env:HOME}
            DB: ${ssm:/prod/db}
        functions:
          f: {handler: h.f}
        """,
        {"config/prod.yml": "runtime: python3.11\n"},
    )
    (fn,) = dep.functions
    assert fn.runtime is not None and fn.runtime.value == "python3.11"
    env = {e.name: e.value for e in fn.environment}
    assert env["TABLE"] == "preds-prod"
    assert env["REGION"] == "eu-west-1"
    assert isinstance(env["HOME_DIR"], Unknown)  # never read from the scanner's environment
    assert isinstance(env["DB"], Unknown)
    assert any("${ssm:/prod/db}" in i.message for i in dep.issues)


def test_env_variable_is_never_read_from_scanner_environment(monkeypatch):
    monkeypatch.setenv("SAS_TEST_AUTH", "NONE")
    dep = _parse(
        """
        service: s
        provider: {name: aws, runtime: python3.12}
        functions:
          f:
            handler: h.f
            environment: {MODE: '${env:SAS_TEST_AUTH}'}
        """
    )
    assert os.environ["SAS_TEST_AUTH"] == "NONE"
    assert isinstance(dep.functions[0].environment[0].value, Unknown)


def test_http_events_with_and_without_authorizer(scan_files):
    text = """
    service: s
    provider: {name: aws, runtime: python3.12}
    functions:
      open:
        handler: h.open
        events:
          - http: {path: /open, method: post}
          - httpApi: 'GET /also-open'
      closed:
        handler: h.closed
        events:
          - http: {path: /c, method: post, authorizer: aws_iam}
          - httpApi: {method: get, path: /c, authorizer: {name: jwtAuth}}
      keyed:
        handler: h.keyed
        events:
          - http: {path: /k, method: get, private: true}
    """
    public = scan_files({"serverless.yml": text}).rule("SAS-IAC-001")
    assert sorted(f.message.split(":", 1)[0] for f in public) == ["open", "open"]


def test_per_function_role_from_resources(scan_files):
    text = """
    service: s
    provider: {name: aws, runtime: python3.12}
    functions:
      f:
        handler: h.f
        role: FRole
    resources:
      Resources:
        FRole:
          Type: AWS::IAM::Role
          Properties:
            Policies:
              - PolicyName: p
                PolicyDocument:
                  Statement:
                    - {Effect: Allow, Action: 'lambda:UpdateFunctionCode', Resource: '*'}
    """
    res = scan_files({"serverless.yml": text})
    assert any("lambda-003" in f.message for f in res.rule("SAS-IAM-004"))


def test_per_function_iam_role_statements_plugin(scan_files):
    text = """
    service: s
    provider: {name: aws, runtime: python3.12}
    functions:
      f:
        handler: h.f
        iamRoleStatements:
          - {Effect: Allow, Action: 'secretsmanager:GetSecretValue', Resource: '*'}
    """
    assert "SAS-IAM-005" in scan_files({"serverless.yml": text}).ids()


def test_external_role_arn_is_not_judged_but_noted(scan_files):
    text = """
    service: s
    provider:
      name: aws
      runtime: python3.12
      iam:
        role: arn:aws:iam::123456789012:role/shared
    functions:
      f: {handler: h.f}
    """
    res = scan_files({"serverless.yml": text})
    assert "SAS-IAM-006" in res.ids()
    assert "SAS-IAM-001" not in res.ids()


def test_non_aws_provider_is_noted(scan_files):
    res = scan_files({"serverless.yml": "service: s\nprovider:\n  name: google\nfunctions:\n  f: {handler: h}\n"})
    assert "SAS-IAC-002" in res.ids()


def test_self_reference_loop_terminates(scan_files):
    text = """
    service: s
    custom:
      a: ${self:custom.b}
      b: ${self:custom.a}
    provider: {name: aws, runtime: python3.12, environment: {X: '${self:custom.a}'}}
    functions:
      f: {handler: h.f}
    """
    res = scan_files({"serverless.yml": text})
    assert res.result.errors == ()


def test_provider_secret_reported_once(scan_files):
    text = """
    service: s
    provider:
      name: aws
      runtime: python3.12
      environment: {GITHUB_TOKEN: ghp_abcdefghijklmnopqrstuvwxyz0123456789}
    functions:
      a: {handler: h.a}
      b: {handler: h.b}
    """
    assert len(scan_files({"serverless.yml": text}).rule("SAS-IAC-003")) == 1

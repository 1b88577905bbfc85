"""SAM and CloudFormation templates: parser details and the classic mistakes with their fixed versions."""

from __future__ import annotations

import json

from sas.scan.iac import cloudformation, yamlsrc
from sas.scan.iac.model import Unknown
from sas.scan.settings import ScanSettings
from sas.taxonomy import Severity

SAM_HEAD = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
"""

BAD_SAM = (
    SAM_HEAD
    + """
Resources:
  Predict:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      FunctionUrlConfig:
        AuthType: NONE
      Policies:
        - AdministratorAccess
"""
)

GOOD_SAM = (
    SAM_HEAD
    + """
Parameters:
  TableName:
    Type: String
    Default: predictions
Resources:
  Predict:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      MemorySize: 1024
      Timeout: 10
      Tracing: Active
      ReservedConcurrentExecutions: 20
      FunctionUrlConfig:
        AuthType: AWS_IAM
      Environment:
        Variables:
          TABLE: !Ref TableName
          API_KEY: '{{resolve:secretsmanager:prod/api-key}}'
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref TableName
"""
)


def _parse(text: str) -> cloudformation.Deployment:
    return cloudformation.parse(yamlsrc.load(text), "template.yaml")


def test_public_url_with_admin_role_is_critical(scan_files):
    res = scan_files({"template.yaml": BAD_SAM})
    assert {"SAS-IAC-001", "SAS-IAM-001", "SAS-IAM-010"} <= set(res.ids())
    combo = res.rule("SAS-IAM-010")[0]
    assert combo.severity == Severity.CRITICAL
    assert combo.location.line == 11  # the AuthType line


def test_fixed_template_has_nothing_high(scan_files):
    res = scan_files({"template.yaml": GOOD_SAM})
    assert res.ids("high") == [], res.text()
    assert res.ids("medium") == [], res.text()


def test_function_fields_keep_lines_and_resolve_parameters():
    dep = _parse(GOOD_SAM)
    (fn,) = dep.functions
    assert fn.runtime is not None and fn.runtime.value == "python3.12" and fn.runtime.src.line == 13
    assert fn.reserved_concurrency is not None and fn.reserved_concurrency.value == 20
    env = {e.name: e for e in fn.environment}
    assert env["TABLE"].value == "predictions"
    assert fn.role is not None
    resources = [r for st in fn.role.statements for r in st.resources]
    assert any(r.endswith("table/predictions") for r in resources)


def test_resource_without_properties_keeps_globals():
    """checkov bypass: a function without Properties silently disabled Globals there."""
    dep = _parse(
        SAM_HEAD
        + """
Globals:
  Function:
    Runtime: python3.8
    Layers: [arn:aws:lambda:us-east-1:999999999999:layer:shared:1]
Resources:
  Bare:
    Type: AWS::Serverless::Function
"""
    )
    (fn,) = dep.functions
    assert fn.runtime is not None and fn.runtime.value == "python3.8"
    assert fn.layers and fn.layers[0].account == "999999999999"


def test_globals_merge_maps_and_override_scalars():
    dep = _parse(
        SAM_HEAD
        + """
Globals:
  Function:
    Timeout: 30
    Environment:
      Variables: {A: global, B: global}
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 5
      Environment:
        Variables: {B: local}
"""
    )
    (fn,) = dep.functions
    assert fn.timeout_s is not None and fn.timeout_s.value == 5
    assert {e.name: e.value for e in fn.environment} == {"A": "global", "B": "local"}


def test_short_form_intrinsics():
    dep = _parse(
        """
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Stage: {Type: String, Default: prod}
  Size: {Type: Number, Default: 512}
Mappings:
  Runtimes:
    prod: {name: python3.12}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  F:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: !FindInMap [Runtimes, !Ref Stage, name]
      MemorySize: !Ref Size
      Handler: !Select [1, !Split [',', 'a,app.handler,c']]
      Timeout: !If [IsProd, 10, 60]
      Role: arn:aws:iam::123456789012:role/external
      Environment:
        Variables:
          NAME: !Sub '${Stage}-model'
          JOINED: !Join ['-', [a, !Ref Stage]]
          REGION: !Sub '${AWS::Region}'
          OTHER: !ImportValue shared-thing
"""
    )
    (fn,) = dep.functions
    assert fn.runtime is not None and fn.runtime.value == "python3.12"
    assert fn.memory_mb is not None and fn.memory_mb.value == 512
    assert fn.handler is not None and fn.handler.value == "app.handler"
    assert fn.timeout_s is not None and fn.timeout_s.value == 10
    env = {e.name: e.value for e in fn.environment}
    assert env["NAME"] == "prod-model" and env["JOINED"] == "a-prod"
    assert env["REGION"] == "${AWS::Region}"
    assert isinstance(env["OTHER"], Unknown)
    assert fn.role is not None and fn.role.external


def test_json_template_has_lines(scan_files):
    doc = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Url": {
                "Type": "AWS::Lambda::Url",
                "Properties": {"AuthType": "NONE", "TargetFunctionArn": {"Fn::GetAtt": ["F", "Arn"]}},
            },
            "F": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Runtime": "python3.12", "Handler": "a.b", "Role": "arn:aws:iam::1:role/r"},
            },
        },
    }
    res = scan_files({"stack.json": json.dumps(doc, indent=2)})
    (hit,) = res.rule("SAS-IAC-001")
    assert hit.location.path == "stack.json" and hit.location.line is not None


def test_parameter_without_default_is_unknown_not_guessed(scan_files):
    res = scan_files(
        {
            "template.yaml": SAM_HEAD
            + """
Parameters:
  Auth: {Type: String}
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      FunctionUrlConfig:
        AuthType: !Ref Auth
"""
        }
    )
    assert "SAS-IAC-001" not in res.ids()
    assert "SAS-IAC-002" in res.ids()


def test_parameter_default_none_is_public(scan_files):
    res = scan_files(
        {
            "template.yaml": SAM_HEAD
            + """
Parameters:
  Auth: {Type: String, Default: NONE}
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      FunctionUrlConfig:
        AuthType: !Ref Auth
"""
        }
    )
    assert "SAS-IAC-001" in res.ids()


def test_sam_policy_template_with_star_bucket_reaches_all_data(scan_files):
    bad = SAM_HEAD + (
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n"
        "      Handler: a.b\n      Policies:\n        - S3ReadPolicy:\n            BucketName: '{bucket}'\n"
    )
    assert "SAS-IAM-005" in scan_files({"t.yaml": bad.replace("{bucket}", "*")}).ids()


def test_sam_policy_template_with_named_bucket_is_clean(scan_files):
    bad = SAM_HEAD + (
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n"
        "      Handler: a.b\n      Policies:\n        - S3ReadPolicy:\n            BucketName: models-bucket\n"
    )
    assert "SAS-IAM-005" not in scan_files({"t.yaml": bad}).ids()


def test_escalation_split_across_policies_is_found(scan_files):
    res = scan_files(
        {
            "stack.yaml": """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      Policies:
        - PolicyName: pass
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: iam:PassRole, Resource: '*'}
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: extra
      Roles: [!Ref Role]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: ['lambda:CreateFunction', 'lambda:InvokeFunction'], Resource: '*'}
  F:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      Role: !GetAtt Role.Arn
"""
        }
    )
    esc = [f for f in res.rule("SAS-IAM-004") if "lambda-001" in f.message]
    assert esc and "different policies" in esc[0].message


def test_escalation_only_with_both_halves(scan_files):
    res = scan_files(
        {
            "stack.yaml": """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: only-create
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: ['lambda:CreateFunction', 'lambda:InvokeFunction'], Resource: '*'}
  F:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: a.b, Role: !GetAtt Role.Arn}
"""
        }
    )
    assert not [f for f in res.rule("SAS-IAM-004") if "lambda-001" in f.message]


def test_permission_principal_star_is_public_unless_scoped(scan_files):
    tmpl = """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  F:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: a.b, Role: arn:aws:iam::1:role/r}
  Perm:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref F
      Principal: '*'
"""
    assert "SAS-IAC-001" in scan_files({"a/t.yaml": tmpl}).ids()
    scoped = tmpl + "      SourceArn: arn:aws:execute-api:us-east-1:1:abc/*\n"
    assert "SAS-IAC-001" not in scan_files({"b/t.yaml": scoped}).ids()


def test_rest_api_method_without_authorizer(scan_files):
    tmpl = """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  F:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: a.b, Role: arn:aws:iam::1:role/r}
  Method:
    Type: AWS::ApiGateway::Method
    Properties:
      HttpMethod: POST
      AuthorizationType: AUTH
      Integration:
        Type: AWS_PROXY
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${F.Arn}/invocations
"""
    assert "SAS-IAC-001" in scan_files({"a/t.yaml": tmpl.replace("AUTH", "NONE")}).ids()
    assert "SAS-IAC-001" not in scan_files({"b/t.yaml": tmpl.replace("AUTH", "COGNITO_USER_POOLS")}).ids()


def test_sam_api_event_uses_api_default_authorizer(scan_files):
    tmpl = (
        SAM_HEAD
        + """
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        DefaultAuthorizer: {auth}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      Events:
        Post:
          Type: Api
          Properties: {{Path: /p, Method: post, RestApiId: !Ref Api}}
"""
    )
    assert "SAS-IAC-001" not in scan_files({"a/t.yaml": tmpl.format(auth="AWS_IAM")}).ids()
    assert "SAS-IAC-001" in scan_files({"b/t.yaml": tmpl.format(auth="NONE")}).ids()


def test_http_api_event_without_auth_is_public(scan_files):
    res = scan_files(
        {
            "t.yaml": SAM_HEAD
            + """
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      Events:
        Get: {Type: HttpApi, Properties: {Path: /x, Method: get}}
"""
        }
    )
    assert any(f.message.startswith("F: HttpApi event") for f in res.rule("SAS-IAC-001"))


def test_layers_foreign_own_and_trusted(scan_files):
    tmpl = (
        SAM_HEAD
        + """
Resources:
  Own:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      Layers:
        - !Ref Own
        - !Sub arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:layer:mine:4
        - arn:aws:lambda:us-east-1:222222222222:layer:vendor:7
"""
    )
    res = scan_files({"t.yaml": tmpl})
    foreign = res.rule("SAS-IAC-007")
    assert len(foreign) == 1 and "222222222222" in foreign[0].message
    assert not res.rule("SAS-IAC-008")
    trusted = ScanSettings(raw={"scan": {"iac": {"trusted_accounts": ["222222222222"]}}})
    assert not scan_files({"t.yaml": tmpl}, trusted).rule("SAS-IAC-007")


def test_code_signing_warn_and_enforce(scan_files):
    tmpl = """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Signing:
    Type: AWS::Lambda::CodeSigningConfig
    Properties:
      AllowedPublishers: {SigningProfileVersionArns: [arn:aws:signer:us-east-1:1:/signing-profiles/p/v]}
      CodeSigningPolicies: {UntrustedArtifactOnDeployment: MODE}
  F:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      Role: arn:aws:iam::1:role/r
      CodeSigningConfigArn: !Ref Signing
"""
    warn = scan_files({"a/t.yaml": tmpl.replace("MODE", "Warn")}).rule("SAS-IAC-009")
    assert warn and "only warns" in warn[0].message
    assert not scan_files({"b/t.yaml": tmpl.replace("MODE", "Enforce")}).rule("SAS-IAC-009")


def test_access_key_secret_wired_into_environment(scan_files):
    res = scan_files(
        {
            "t.yaml": """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Key:
    Type: AWS::IAM::AccessKey
    Properties: {UserName: deployer}
  F:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      Role: arn:aws:iam::1:role/r
      Environment:
        Variables:
          AWS_SECRET: !GetAtt Key.SecretAccessKey
"""
        }
    )
    hits = res.rule("SAS-IAC-003")
    assert hits and "access key" in hits[0].message


def test_malformed_yaml_is_a_finding_with_line(scan_files):
    res = scan_files({"template.yaml": "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  F: [unclosed\n"})
    (hit,) = res.rule("SAS-IAC-000")
    assert hit.location.line is not None and hit.location.line >= 3


def test_truncated_json_template_is_a_finding(scan_files):
    res = scan_files({"stack.json": '{"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"F": {"Type": '})
    assert res.rule("SAS-IAC-000")


def test_unsafe_yaml_tag_is_never_constructed(scan_files, tmp_path):
    marker = tmp_path / "pwned"
    text = (
        f"AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  F: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    res = scan_files({"t.yaml": text})
    assert not marker.exists()
    assert res.rule("SAS-IAC-000")


def test_alias_bomb_finishes(scan_files):
    lines = ["AWSTemplateFormatVersion: '2010-09-09'", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines += [
        "Resources:",
        "  F:",
        "    Type: AWS::Lambda::Function",
        "    Properties:",
        "      Runtime: python3.12",
        "      Handler: a.b",
        "      Role: arn:aws:iam::1:role/r",
        "      Environment: {Variables: {BOMB: *a11}}",
    ]
    res = scan_files({"t.yaml": "\n".join(lines) + "\n"})
    assert res.result.errors == ()


def test_unknown_resource_type_is_noted(scan_files):
    res = scan_files(
        {
            "t.yaml": """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  F:
    Type: AWS::Lambda::Funtion
    Properties: {Runtime: python3.8}
  G:
    Properties: {}
"""
        }
    )
    messages = [f.message for f in res.rule("SAS-IAC-002")]
    assert any("AWS::Lambda::Funtion" in m for m in messages)
    assert any("has no Type" in m for m in messages)


def test_large_json_template(scan_files):
    resources = {
        f"Bucket{i}": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": f"bucket-{i}-" + "x" * 40}}
        for i in range(50_000)
    }
    resources["F"] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Runtime": "python3.8", "Handler": "a.b", "Role": "arn:aws:iam::1:role/r"},
    }
    text = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})
    assert len(text) > 5 * 1024 * 1024
    res = scan_files({"big.json": text})
    assert res.rule("SAS-IAC-005")


def test_recognised_by_content_not_name(scan_files):
    res = scan_files({"infra/stack-definition.yml": BAD_SAM})
    assert "SAS-IAM-010" in res.ids()


def test_yaml_that_is_not_a_template_is_ignored(scan_files):
    res = scan_files({".github/workflows/ci.yml": "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"})
    assert res.result.findings == ()


def test_deprecated_runtime_message_states_table_date(scan_files):
    res = scan_files({"t.yaml": BAD_SAM.replace("python3.12", "nodejs14.x")})
    (hit,) = res.rule("SAS-IAC-005")
    assert "2023-12-04" in hit.message and "table dated" in hit.message


def test_concurrency_cost_bound_is_computed(scan_files):
    res = scan_files({"t.yaml": BAD_SAM})
    (hit,) = res.rule("SAS-IAC-006")
    assert hit.severity == Severity.MEDIUM  # public function
    assert "1000 instances" in hit.message and "per hour" in hit.message


def test_policy_attached_to_sam_implicit_role(scan_files):
    res = scan_files(
        {
            "t.yaml": SAM_HEAD
            + """
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: a.b}
  Extra:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      Roles: [!Ref FRole]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: 'iam:AttachRolePolicy', Resource: '*'}
"""
        }
    )
    assert any("iam-attach-policy" in f.message for f in res.rule("SAS-IAM-004"))


def test_resource_condition_false_is_not_deployed(scan_files):
    tmpl = """
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Stage: {Type: String, Default: STAGE}
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
Resources:
  F:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: a.b, Role: arn:aws:iam::1:role/r}
  DevUrl:
    Type: AWS::Lambda::Url
    Condition: IsDev
    Properties: {AuthType: NONE, TargetFunctionArn: !GetAtt F.Arn}
"""
    assert "SAS-IAC-001" not in scan_files({"a/t.yaml": tmpl.replace("STAGE", "prod")}).ids()
    assert "SAS-IAC-001" in scan_files({"b/t.yaml": tmpl.replace("STAGE", "dev")}).ids()

"""IAM reasoning: wildcard expansion, NotAction/NotResource, Deny, conditions, escalation catalogue."""

from __future__ import annotations

import pytest

from sas.scan import iam
from sas.scan.iac.actiondb import table
from sas.scan.iac.model import RoleSpec, Src, Statement
from sas.taxonomy import Severity


def allow(actions, resources=("*",), *, origin="p1", conditions="", not_actions=(), not_resources=()):
    acts = (actions,) if isinstance(actions, str) else tuple(actions)
    return Statement(
        "Allow",
        acts if not not_actions else (),
        tuple(not_actions),
        tuple(resources) if not not_resources else (),
        tuple(not_resources),
        conditions,
        Src("t.yaml", 1),
        origin,
    )


def deny(actions, resources=("*",), conditions=""):
    acts = (actions,) if isinstance(actions, str) else tuple(actions)
    return Statement("Deny", acts, (), tuple(resources), (), conditions, Src("t.yaml", 2), "deny")


def judge(*statements):
    judgements, _ = iam.judge(RoleSpec("R", Src("t.yaml"), tuple(statements)))
    return judgements


def rules(judgements):
    return {j.rule_id for j in judgements}


def paths(judgements):
    return {j.evidence.split(":", 1)[0] for j in judgements if j.rule_id == iam.ESCALATION.id}


def test_action_table_classifies_levels():
    assert table().level("iam:PassRole") == "Permissions management"
    assert table().level("s3:GetObject") == "Read"
    assert "iam:putrolepolicy" in table().expand("iam:Put*Policy")


def test_admin_statement():
    assert iam.ADMIN.id in rules(judge(allow("*")))


def test_not_action_with_few_exclusions_is_admin():
    assert iam.ADMIN.id in rules(judge(allow((), not_actions=("iam:*",))))


def test_deny_without_condition_removes_passrole():
    base = [allow("iam:PassRole"), allow(["lambda:CreateFunction", "lambda:InvokeFunction"], origin="p2")]
    assert "lambda-001" in paths(judge(*base))
    assert "lambda-001" not in paths(judge(*base, deny("iam:PassRole")))


def test_conditional_deny_does_not_remove():
    base = [allow("iam:PassRole"), allow(["lambda:CreateFunction", "lambda:InvokeFunction"])]
    assert "lambda-001" in paths(judge(*base, deny("iam:PassRole", conditions='{"Bool": {"aws:x": "true"}}')))


def test_conditional_grant_lowers_severity():
    js = judge(allow("lambda:UpdateFunctionCode", conditions='{"StringEquals": {"aws:ResourceTag/x": "y"}}'))
    esc = [j for j in js if j.rule_id == iam.ESCALATION.id and j.evidence.startswith("lambda-003")]
    assert esc and esc[0].severity == Severity.MEDIUM


def test_wildcard_actions_are_expanded_for_escalation():
    assert "iam-put-policy" in paths(judge(allow("iam:Put*")))
    assert "lambda-003" in paths(judge(allow("lambda:Update*")))


@pytest.mark.parametrize(
    ("actions", "path"),
    [
        (["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], "lambda-001"),
        (["iam:PassRole", "lambda:CreateFunction", "lambda:CreateEventSourceMapping"], "lambda-002"),
        (["lambda:UpdateFunctionCode"], "lambda-003"),
        (["lambda:UpdateFunctionCode", "lambda:InvokeFunction"], "lambda-004"),
        (["lambda:UpdateFunctionCode", "lambda:AddPermission"], "lambda-005"),
        (["iam:PassRole", "lambda:CreateFunction", "lambda:AddPermission"], "lambda-006"),
        (["lambda:UpdateFunctionConfiguration", "lambda:PublishLayerVersion"], "lambda-layers"),
        (["iam:CreatePolicyVersion"], "iam-create-policy-version"),
        (["iam:SetDefaultPolicyVersion"], "iam-set-default-policy-version"),
        (["iam:CreateAccessKey"], "iam-create-access-key"),
        (["iam:AttachRolePolicy"], "iam-attach-policy"),
        (["iam:PutUserPolicy"], "iam-put-policy"),
        (["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"], "iam-update-assume-role-policy"),
        (["sts:AssumeRole"], "sts-assume-any-role"),
        (["iam:PassRole", "cloudformation:CreateStack"], "cloudformation-001"),
        (["iam:PassRole", "ec2:RunInstances"], "ec2-001"),
        (["iam:PassRole", "glue:CreateDevEndpoint"], "glue-001"),
        (["iam:PassRole", "sagemaker:CreateTrainingJob"], "sagemaker-001"),
    ],
)
def test_escalation_catalogue(actions, path):
    # one action per policy: the path only exists when policies are combined
    statements = [allow(a, origin=f"policy-{i}") for i, a in enumerate(actions)]
    assert path in paths(judge(*statements))


def test_passrole_on_named_role_is_not_escalation():
    js = judge(
        allow("iam:PassRole", ("arn:aws:iam::123456789012:role/worker",)),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction"]),
    )
    assert "lambda-001" not in paths(js)


def test_assume_role_on_named_role_is_not_escalation():
    assert "sts-assume-any-role" not in paths(judge(allow("sts:AssumeRole", ("arn:aws:iam::1:role/reader",))))


def test_update_code_on_one_function_is_scoped_medium():
    js = judge(allow("lambda:UpdateFunctionCode", ("arn:aws:lambda:us-east-1:1:function:other",)))
    esc = [j for j in js if j.evidence.startswith("lambda-003")]
    assert esc and esc[0].severity == Severity.MEDIUM


def test_not_resource_counts_as_every_other_resource():
    js = judge(allow("secretsmanager:GetSecretValue", not_resources=("arn:aws:secretsmanager:*:*:secret:x",)))
    assert iam.EXFILTRATION.id in rules(js)


def test_service_wide_on_star_is_high_and_on_resource_is_medium():
    high = [j for j in judge(allow("dynamodb:*")) if j.rule_id == iam.SERVICE_WIDE.id]
    assert high and high[0].severity == Severity.HIGH
    med = [
        j
        for j in judge(allow("dynamodb:*", ("arn:aws:dynamodb:us-east-1:1:table/t",)))
        if j.rule_id == iam.SERVICE_WIDE.id
    ]
    assert med and med[0].severity == Severity.MEDIUM


def test_basic_execution_role_is_clean():
    js = judge(allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]))
    assert js == []


def test_least_privilege_role_is_clean():
    js = judge(
        allow(["dynamodb:GetItem", "dynamodb:PutItem"], ("arn:aws:dynamodb:us-east-1:1:table/predictions",)),
        allow("s3:GetObject", ("arn:aws:s3:::models/*",)),
    )
    assert js == []


def test_unresolved_managed_policy_is_reported_not_guessed():
    from sas.scan.iac.model import Sourced, Unknown

    role = RoleSpec("R", Src("t"), (), (Sourced(Unknown("managed policy arn:aws:iam::1:policy/custom"), Src("t")),))
    js, _ = iam.judge(role)
    assert [j.rule_id for j in js] == [iam.UNRESOLVED_POLICY.id]


@pytest.mark.parametrize(
    ("resource", "broad"),
    [
        ("*", True),
        ("arn:aws:s3:::*", True),
        ("arn:aws:s3:::*/*", True),
        ("arn:aws:s3:::models/*", False),
        ("arn:aws:iam::123456789012:role/*", True),
        ("arn:aws:iam::123456789012:role/app-*", False),
        ("arn:aws:lambda:us-east-1:1:function:*", True),
        ("arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/t", False),
        ("arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*", True),
    ],
)
def test_is_broad(resource, broad):
    assert iam.is_broad(resource) is broad


def test_permissions_boundary_is_noted():
    from sas.scan.iac.model import Sourced

    role = RoleSpec("R", Src("t"), (allow("*"),), boundary=Sourced("arn:aws:iam::1:policy/cap", Src("t")))
    js, _ = iam.judge(role)
    assert js and "permissions boundary" in js[0].message

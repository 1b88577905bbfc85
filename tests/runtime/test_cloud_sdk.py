"""The cloud-SDK monitor: sensitive AWS calls and calls outside the expected set."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from inprocess import active, attempt, events, make_shield
from runtime_harness import AWS_ENV, Moto

from sas.runtime.monitors.cloud_sdk import SdkMonitor
from sas.runtime.policy import parse_policy


def judge(config: dict[str, object], service: str, operation: str, params: dict[str, object]) -> list[str]:
    seen: list[str] = []
    monitor = SdkMonitor(
        parse_policy({"runtime": {"mode": "monitor", "sdk": config}}, env={}),
        lambda v: seen.append(v.details["reason"]),
    )
    monitor.judge(service, operation, params)
    return seen


@pytest.mark.parametrize(
    ("config", "call", "reasons"),
    [
        ({}, ("s3", "GetObject", {}), []),
        ({}, ("iam", "CreateAccessKey", {}), ["sensitive call"]),
        ({}, ("sts", "AssumeRoleWithWebIdentity", {}), ["sensitive call"]),
        ({}, ("lambda", "UpdateFunctionCode", {}), ["sensitive call"]),
        ({"expected": ["sts:AssumeRole"]}, ("sts", "AssumeRole", {}), []),
        ({"expected": ["s3:Get*"]}, ("s3", "PutObject", {}), ["call outside the expected set"]),
        ({"expected": ["s3:Get*"]}, ("s3", "GetObject", {}), []),
        ({"secrets": ["prod/db"]}, ("secretsmanager", "GetSecretValue", {"SecretId": "prod/db"}), []),
        (
            {"secrets": ["prod/db"]},
            (
                "secretsmanager",
                "GetSecretValue",
                {"SecretId": "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf"},
            ),
            [],
        ),
        (
            {"secrets": ["prod/db"]},
            ("secretsmanager", "GetSecretValue", {"SecretId": "prod/root"}),
            ["secret outside the expected secrets"],
        ),
    ],
)
def test_judgement(config: dict[str, object], call: tuple[str, str, dict[str, object]], reasons: list[str]) -> None:
    assert judge(config, *call) == reasons


def test_client_created_before_the_shield_is_watched(
    tmp_path: Path, moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    sts = boto3.client("sts", endpoint_url=moto.endpoint, region_name="us-east-1")  # before the Shield
    shield = make_shield(
        tmp_path,
        extra={
            "runtime": {"egress": {"allow": [f"127.0.0.1:{moto.port}"]}, "sdk": {"expected": ["sts:GetCallerIdentity"]}}
        },
    )
    iam = boto3.client("iam", endpoint_url=moto.endpoint, region_name="us-east-1")  # and after
    with active(shield):
        fine = attempt(sts.get_caller_identity)
        escalate = attempt(iam.create_user, UserName="backdoor")
    assert (fine, escalate) == ("ok", "PolicyViolation")
    [event] = events(shield, "sdk-call")
    assert event["details"]["action"] == "iam:CreateUser" and event["verdict"] == "block"
    assert event["category"] == "infrastructure" and event["threat"] == "privilege-escalation"

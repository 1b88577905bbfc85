"""Configuration of the Shield and client identity across platforms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sas.errors import ConfigError
from sas.runtime.platforms import aws
from sas.runtime.platforms.identity import client_identity, client_ip
from sas.runtime.policy import EgressRule, parse_policy


def test_defaults_and_required_keys() -> None:
    policy = parse_policy({}, env={})
    assert policy.mode == "monitor" and policy.ledger == "stdout" and not policy.allow_subprocess
    assert policy.identity_order == ("principal", "api_key", "source_ip")


def test_environment_overrides_the_file() -> None:
    policy = parse_policy({"runtime": {"mode": "monitor"}}, env={"SAS_MODE": "enforce", "SAS_LEDGER": "memory"})
    assert policy.enforce and policy.ledger == "memory"


@pytest.mark.parametrize(
    "config",
    [
        {"runtime": {"mode": "block-everything"}},
        {"runtime": {"egress": {"allow": ["example.com:99999"]}}},
        {"runtime": {"egress": {"allow": "example.com:443"}}},
        {"runtime": {"process": {"allow_subprocess": "no"}}},
        {"runtime": {"identity": {"order": ["cookie"]}}},
        {"runtime": {"identity": {"trusted_proxies": ["not-a-network"]}}},
        {"runtime": {"input": {"schema": {"shape": [0]}}}},
        {"runtime": {"input": {"schema": {"dtype": "complex"}}}},
        {"runtime": "enforce"},
    ],
)
def test_invalid_configuration_is_a_one_line_error(config: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(config, env={})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "host", "network", "port"),
    [
        ("api.example.com:443", "api.example.com", None, 443),
        ("10.0.0.0/8:5432", None, "10.0.0.0/8", 5432),
        ("[2001:db8::1]:443", None, "2001:db8::1/128", 443),
        ("*.amazonaws.com:*", "*.amazonaws.com", None, None),
        ("192.0.2.7", None, "192.0.2.7/32", None),
    ],
)
def test_egress_rules(text: str, host: str | None, network: str | None, port: int | None) -> None:
    rule = EgressRule.parse(text)
    assert rule.host == host and (str(rule.network) if rule.network else None) == network and rule.port == port


def test_from_config_reads_tool_sas_in_pyproject(tmp_path: Path) -> None:
    from sas.runtime import Shield

    (tmp_path / "pyproject.toml").write_text(
        '[tool.sas.runtime]\nmode = "enforce"\n[tool.sas.runtime.monitors]\naudit = false\nsdk = false\n'
        'contamination = false\ncold_start = false\n[tool.sas.forensics]\nledger = "memory"\n'
    )
    shield = Shield.from_config(tmp_path / "pyproject.toml")
    assert shield.mode == "enforce" and shield.sink.__class__.__name__ == "MemorySink"
    shield.close()


def test_xff_is_trusted_only_through_trusted_proxies() -> None:
    proxies = [parse_policy({"runtime": {"identity": {"trusted_proxies": ["10.0.0.0/8"]}}}, env={}).trusted_proxies[0]]
    # the client wrote "1.1.1.1" itself; the proxy appended the real peer 203.0.113.5
    assert client_ip("10.0.0.2", "1.1.1.1, 203.0.113.5", proxies) == "203.0.113.5"
    # an untrusted peer: its header proves nothing
    assert client_ip("198.51.100.9", "1.1.1.1", proxies) == "198.51.100.9"
    # chains of trusted proxies are walked from the right
    assert client_ip("10.0.0.2", "203.0.113.5, 10.0.0.7", proxies) == "203.0.113.5"
    # a platform front end that appends "ip:port" (Azure)
    assert client_ip("", "1.1.1.1, 203.0.113.5:50211", [], platform_appends=True) == "203.0.113.5"


def test_identity_order_is_configurable() -> None:
    default = parse_policy({}, env={})
    assert client_identity(default, principal="alice", api_key="k1", source_ip="1.2.3.4") == (
        "principal:alice",
        "principal",
    )
    ip_first = parse_policy({"runtime": {"identity": {"order": ["source_ip", "principal"]}}}, env={})
    assert client_identity(ip_first, principal="alice", source_ip="1.2.3.4") == ("ip:1.2.3.4", "source_ip")
    assert client_identity(default) == ("anonymous", "")


class _Context:
    aws_request_id = "req-1"
    function_name = "fn"


REST_V1 = {
    "resource": "/predict",
    "path": "/predict",
    "httpMethod": "POST",
    "headers": {"Content-Type": "application/json", "X-Forwarded-For": "9.9.9.9"},
    "requestContext": {
        "requestId": "api-1",
        "identity": {"sourceIp": "203.0.113.1", "apiKeyId": "key-id-7"},
        "authorizer": {"principalId": "user-42"},
    },
    "body": json.dumps({"features": [1, 2, 3, 4]}),
    "isBase64Encoded": False,
}


@pytest.mark.parametrize(
    ("event", "kind", "client"),
    [
        (REST_V1, "rest-api", "principal:user-42"),
        (
            {**REST_V1, "requestContext": {"identity": {"sourceIp": "203.0.113.1", "apiKeyId": "key-id-7"}}},
            "rest-api",
            "api_key:key-id-7",
        ),
        (
            {
                "version": "2.0",
                "rawPath": "/",
                "headers": {},
                "requestContext": {
                    "http": {"method": "POST", "sourceIp": "203.0.113.2"},
                    "authorizer": {"jwt": {"claims": {"sub": "jwt-sub"}}},
                    "domainName": "x.execute-api.us-east-1.amazonaws.com",
                },
                "body": "{}",
            },
            "http-api",
            "principal:jwt-sub",
        ),
        (
            {
                "version": "2.0",
                "rawPath": "/",
                "headers": {"authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJmb3JnZWQifQ."},
                "requestContext": {
                    "http": {"method": "POST", "sourceIp": "203.0.113.3"},
                    "domainName": "abc.lambda-url.us-east-1.on.aws",
                },
                "body": "{}",
            },
            "function-url",
            "ip:203.0.113.3",  # an unverified bearer token is never an identity
        ),
        (
            {
                "requestContext": {"elb": {"targetGroupArn": "arn"}},
                "httpMethod": "POST",
                "path": "/",
                "headers": {"x-forwarded-for": "6.6.6.6, 203.0.113.4"},
                "body": "{}",
            },
            "alb",
            "ip:203.0.113.4",
        ),
        ({"features": [1, 2, 3, 4]}, "direct", "anonymous"),
    ],
)
def test_aws_events_become_one_request_context(
    tmp_path: Path, event: dict[str, object], kind: str, client: str
) -> None:
    from inprocess import make_shield

    shield = make_shield(tmp_path)
    ctx = aws.build_context(shield, event, _Context())
    assert (ctx.kind, ctx.client_id, ctx.platform, ctx.request_id) == (kind, client, "aws", "req-1")
    assert ctx.size > 0
    shield.close()


def test_alb_blocked_response_shape() -> None:
    event = {"requestContext": {"elb": {}}, "httpMethod": "GET", "multiValueHeaders": {"a": ["b"]}}
    response = aws.blocked_response(event, "alb", 429, {"error": "too many requests", "request_id": "r"})
    assert response["statusDescription"] == "429 Too Many Requests"
    assert response["multiValueHeaders"] == {"Content-Type": ["application/json"]} and "headers" not in response
    assert json.loads(response["body"]) == {"error": "too many requests", "request_id": "r"}


def test_base64_bodies_are_decoded_before_checks(tmp_path: Path) -> None:
    import base64

    from inprocess import make_shield

    shield = make_shield(tmp_path)
    event = {**REST_V1, "body": base64.b64encode(b'{"features": [1]}').decode(), "isBase64Encoded": True}
    ctx = aws.build_context(shield, event, _Context())
    assert ctx.json() == {"features": [1]}
    shield.close()


@pytest.mark.parametrize(
    ("order", "source_ip", "client"),
    [
        (None, "203.0.113.9", "ip:203.0.113.9"),
        (["principal", "api_key"], "203.0.113.9", "anonymous"),  # addresses are not identities here
        (None, "2001:db8::7", "ip:2001:db8::7"),
        (None, "203.0.113.9:5500", "ip:203.0.113.9"),  # a port is stripped (the slow path)
        (None, "", "anonymous"),
    ],
)
def test_http_api_identity_fast_path_follows_the_configured_order(
    tmp_path: Path, order: list[str] | None, source_ip: str, client: str
) -> None:
    """build_context identifies address-only requests without calling client_identity; it must agree with it."""
    from inprocess import make_shield

    extra = {"runtime": {"identity": {"order": order}}} if order else None
    shield = make_shield(tmp_path, extra=extra)
    event = {
        "version": "2.0",
        "rawPath": "/p",
        "headers": {},
        "requestContext": {"http": {"method": "POST", "sourceIp": source_ip}, "requestId": "r"},
        "body": "{}",
    }
    ctx = aws.build_context(shield, event, _Context())
    assert ctx.client_id == client
    expected, _ = client_identity(shield.policy, source_ip=client_ip(source_ip, "", ()))
    assert ctx.client_id == expected
    shield.close()


def test_platform_header_classes_are_read_without_a_copy_and_in_any_case(tmp_path: Path) -> None:
    """Azure's and Werkzeug's header classes find a name whatever its case: the adapters ask them directly
    (no lower-cased copy per request) and the record still reads like lower-cased headers."""
    import azure.functions as func
    from inprocess import make_shield
    from werkzeug.datastructures import EnvironHeaders
    from werkzeug.test import EnvironBuilder

    from sas.runtime.context import Headers, folds_case
    from sas.runtime.platforms import azure

    raw_azure = func.HttpRequest(
        method="POST",
        url="https://f.azurewebsites.net/api/predict?x=1",
        headers={"X-Forwarded-For": "203.0.113.7:5555", "X-MS-Request-Id": "req-1"},
        body=b"{}",
    )
    environ = EnvironBuilder(headers={"X-Forwarded-For": "198.51.100.1", "Function-Execution-Id": "e-1"}).get_environ()
    assert folds_case(raw_azure.headers) and folds_case(EnvironHeaders(environ)) and not folds_case({"A": "b"})
    for raw in (raw_azure.headers, EnvironHeaders(environ)):
        headers = Headers(raw, folded=True)
        assert headers.get("x-forwarded-for") in {"203.0.113.7:5555", "198.51.100.1"}
        assert headers.get("absent", "-") == "-"
        assert "x-forwarded-for" in headers and all(name == name.lower() for name in headers)
    shield = make_shield(tmp_path)
    try:
        ctx = azure.build_context(shield, raw_azure, None, "f")
    finally:
        shield.close()
    assert (ctx.client_id, ctx.request_id, ctx.path) == (
        "ip:203.0.113.7",
        "req-1",
        "https://f.azurewebsites.net/api/predict",
    )
    assert dict(ctx.headers) == {"x-forwarded-for": "203.0.113.7:5555", "x-ms-request-id": "req-1"}

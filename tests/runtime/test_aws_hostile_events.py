"""A direct invocation hands the AWS adapter whatever JSON its caller sent: no event may make the Shield raise.

Each test is named after a crash the seeded mutation test below found (November 2026); the mutation test keeps
looking, over REST (v1), HTTP API (v2), ALB and direct events with hostile values in every position.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

from inprocess import make_shield

from sas.runtime.platforms import aws


class _Context:
    aws_request_id = "req-1"
    function_name = "fn"


REST_V1: dict[str, Any] = {
    "resource": "/predict",
    "path": "/predict",
    "httpMethod": "POST",
    "headers": {},
    "multiValueHeaders": {"X-Forwarded-For": ["203.0.113.1"], "Content-Type": ["application/json"]},
    "requestContext": {"requestId": "r", "identity": {"sourceIp": "203.0.113.1", "apiKeyId": "k"}},
    "body": json.dumps({"features": [1, 2, 3, 4]}),
    "isBase64Encoded": False,
}
HTTP_V2: dict[str, Any] = {
    "version": "2.0",
    "rawPath": "/predict",
    "headers": {"content-type": "application/json", "x-forwarded-for": "203.0.113.2"},
    "requestContext": {
        "requestId": "r",
        "domainName": "abc.execute-api.us-east-1.amazonaws.com",
        "http": {"method": "POST", "path": "/predict", "sourceIp": "203.0.113.2"},
        "authorizer": {"jwt": {"claims": {"sub": "user-1"}}},
    },
    "body": json.dumps({"features": [1, 2, 3, 4]}),
    "isBase64Encoded": False,
}
ALB: dict[str, Any] = {
    "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:::targetgroup/t/1"}},
    "httpMethod": "POST",
    "path": "/predict",
    "headers": {"x-forwarded-for": "203.0.113.3"},
    "body": base64.b64encode(b'{"features": [1, 2, 3, 4]}').decode(),
    "isBase64Encoded": True,
}
# JSON can carry all of these (the runtime client parses events with json.loads: NaN, huge integers and lone
# surrogates included)
HOSTILE: list[Any] = [None, 0, -1, 1.5, float("nan"), float("inf"), 2**80, "", "x", "\udc80", "a" * 5000]
HOSTILE += [[], {}, [None], ["\udc80"], {"a": 1}, {"sourceIp": ["x"]}, True, "1.2.3.4, 5.6.7.8", "[::1]:80"]


def test_malformed_multi_value_headers_do_not_crash_the_adapter(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    event = {**REST_V1, "multiValueHeaders": {"X-Forwarded-For": 5, "A": {"x": 1}, "B": ["first", "last"], "C": []}}
    ctx = aws.build_context(shield, event, _Context())
    assert ctx.kind == "rest-api" and dict(ctx.headers) == {"b": "last"}
    shield.close()


def test_base64_flagged_body_that_is_not_base64_keeps_its_lone_surrogate(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    ctx = aws.build_context(shield, {**ALB, "body": "not base64 \udc80"}, _Context())
    assert ctx.body == "not base64 \udc80".encode("utf-8", "surrogatepass")
    shield.close()


def test_direct_invocation_body_of_any_json_value_has_a_size(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    for body in ({"features": [1, float("nan")]}, [1, 2], 2**80, ["\udc80"]):
        ctx = aws.build_context(shield, {**REST_V1, "body": body}, _Context())
        assert ctx.size == len(ctx.body or b"") > 0
    shield.close()


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.random()
            if roll < 0.1:
                continue  # a key missing
            out[key] = rng.choice(HOSTILE) if roll < 0.3 else _mutate(item, rng)
        return out
    if isinstance(value, list):
        return [_mutate(item, rng) for item in value]
    return rng.choice(HOSTILE) if rng.random() < 0.2 else value


def test_mutated_events_never_make_the_shield_raise(tmp_path: Path) -> None:
    """Every mutated event gets the handler's answer or a blocked response, in enforce mode, never an error."""
    shield = make_shield(
        tmp_path, extra={"runtime": {"input": {"schema": {"field": "features", "shape": [4], "min": 0, "max": 16}}}}
    )
    served: list[Any] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        served.append(event)
        return {"statusCode": 200, "body": "{}"}

    wrapped = shield.aws_lambda(handler)
    rng = random.Random(20261121)
    answers = []
    for _ in range(3000):
        event = _mutate(rng.choice([REST_V1, HTTP_V2, ALB, {"features": [1, 2, 3, 4]}]), rng)
        answer = wrapped(event, rng.choice([_Context(), None]))
        assert isinstance(answer, dict) and isinstance(answer.get("statusCode"), int), answer
        answers.append(answer["statusCode"])
    # both outcomes occur: the mutations are not all refused, nor all let through
    assert served and answers.count(200) == len(served) and {400, 413} & set(answers)
    shield.close()

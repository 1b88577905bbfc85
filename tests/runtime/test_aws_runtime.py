"""The AWS adapter under the real awslambdaric runtime client, against a local Runtime API emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_harness import (
    ATTACK_SOURCES,
    EXAMPLES,
    LambdaEmulator,
    Ledger,
    Listener,
    Moto,
    alerts,
    apigw_v2,
    attack_config,
    example_config,
    make_function_dir,
)


class Runtime:
    def __init__(self, root: Path, emulator: LambdaEmulator, ledger: Ledger) -> None:
        self.root = root
        self.emulator = emulator
        self.ledger = ledger

    def call(self, request: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        kind, payload = self.emulator.invoke(apigw_v2(request))
        assert kind == "response", payload
        return payload, self.ledger.new()


def start(root: Path, handler: str, sources: list[Path], config: dict[str, Any], env: dict[str, str]) -> Runtime:
    fn = make_function_dir(root / "fn", sources, config)
    emulator = LambdaEmulator()
    emulator.start_runtime(fn, handler, env)
    return Runtime(root, emulator, Ledger(root / "ledger.jsonl"))


@pytest.fixture(scope="module", params=["enforce", "monitor"])
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, moto: Moto) -> Iterator[Runtime]:
    mode = request.param
    root = tmp_path_factory.mktemp(f"aws-{mode}")
    rt = start(
        root,
        "aws_function.handler",
        ATTACK_SOURCES["aws"],
        attack_config(mode, root, moto),
        {"STS_ENDPOINT": moto.endpoint},
    )
    rt.mode = mode  # type: ignore[attr-defined]
    yield rt
    rt.emulator.close()


def body(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])


def only(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [e for e in events if e["event"] == kind]
    assert len(found) == 1, events
    return found[0]


def test_benign_predictions_raise_no_alerts(runtime: Runtime) -> None:
    for features in ([5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]):
        response, events = runtime.call({"action": "predict", "features": features, "sdk": True})
        assert response["statusCode"] == 200
        assert body(response)["label"] in {0, 1, 2}
        assert alerts(events) == []
        summary = only(events, "invocation")
        assert summary["verdict"] == "allow"
        assert summary["details"]["sdk_calls"] == ["sts:GetCallerIdentity"]
        assert summary["platform"] == "aws" and summary["function"] == "shielded"
        assert summary["client_id"] == "ip:198.51.100.7"


def test_egress_outside_allow_list(runtime: Runtime, listener: Listener) -> None:
    before = listener.connections
    response, events = runtime.call({"action": "egress", "port": listener.port})
    event = only(events, "egress")
    assert event["details"]["port"] == listener.port and event["threat"] == "runtime-compromise"
    if runtime.mode == "enforce":  # type: ignore[attr-defined]
        assert response["statusCode"] == 403
        assert set(body(response)) == {"error", "request_id"}
        assert event["verdict"] == "block"
        assert listener.connections == before
    else:
        assert response["statusCode"] == 200 and body(response) == {"egress": "connected"}
        assert event["verdict"] == "alert"


def test_subprocess_spawn(runtime: Runtime) -> None:
    response, events = runtime.call({"action": "subprocess"})
    event = only(events, "subprocess")
    assert event["details"]["argv"] == ["true"]
    if runtime.mode == "enforce":  # type: ignore[attr-defined]
        assert response["statusCode"] == 403 and event["verdict"] == "block"
    else:
        assert body(response) == {"subprocess": "ran"} and event["verdict"] == "alert"


def test_write_to_code_directory(runtime: Runtime) -> None:
    target = runtime.root / "fn" / "injected.py"
    response, events = runtime.call({"action": "write_code"})
    event = only(events, "file-write")
    assert event["details"]["path"] == str(target)
    if runtime.mode == "enforce":  # type: ignore[attr-defined]
        assert response["statusCode"] == 403 and not target.exists()
    else:
        assert response["statusCode"] == 200 and target.exists()


def test_tmp_residue_reported_on_next_invocation(runtime: Runtime) -> None:
    response, events = runtime.call({"action": "tmp_residue", "name": "stash.bin"})
    assert response["statusCode"] == 200
    assert [e for e in events if e["event"] == "tmp-residue"] == []
    response, events = runtime.call({"action": "noop"})
    event = only(events, "tmp-residue")
    assert event["details"]["files"] == ["stash.bin"]
    assert event["threat"] == "cross-invocation-contamination" and event["verdict"] == "alert"


def test_unexpected_assume_role(runtime: Runtime) -> None:
    response, events = runtime.call({"action": "assume_role"})
    event = only(events, "sdk-call")
    assert event["details"]["action"] == "sts:AssumeRole"
    assert event["details"]["role"] == "arn:aws:iam::123456789012:role/admin"
    assert event["threat"] == "privilege-escalation"
    if runtime.mode == "enforce":  # type: ignore[attr-defined]
        assert response["statusCode"] == 403 and event["verdict"] == "block"
    else:
        assert body(response) == {"assumed": True} and event["verdict"] == "alert"


def test_blocked_response_reveals_nothing_internal(runtime: Runtime) -> None:
    kind, response = runtime.emulator.invoke(apigw_v2(None, raw="{not json"))
    events = runtime.ledger.new()
    detection = only(events, "detection")
    assert detection["details"]["check"] == "json"
    if runtime.mode == "enforce":  # type: ignore[attr-defined]
        assert kind == "response" and response["statusCode"] == 400
        assert body(response) == {"error": "invalid request", "request_id": detection["request_id"]}
    else:  # monitor: the handler runs and fails on the body, as it would without the Shield
        assert kind == "error" and response["errorType"] == "JSONDecodeError"
        assert detection["verdict"] == "alert" and detection["details"]["would_block"] == 400


# --- the README example, exactly as published -------------------------------------------------------------------
@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("aws-example")
    (root / "scratch").mkdir()
    config = example_config(
        "aws",
        {"runtime": {"tmp_dir": str(root / "scratch")}, "forensics": {"ledger": f"jsonl:{root / 'ledger.jsonl'}"}},
    )
    rt = start(root, "handler.handler", [EXAMPLES / "aws" / "handler.py"], config, {})
    yield rt
    rt.emulator.close()


def test_example_serves_predictions_without_alerts(example: Runtime) -> None:
    for features in ([5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]):
        response, events = example.call({"features": features})
        assert response["statusCode"] == 200 and "label" in body(response)
        assert alerts(events) == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (json.dumps({"features": [1.0, 2.0, 3.0]}), 400),  # wrong shape
        (json.dumps({"features": [1.0, 2.0, 3.0, "x"]}), 400),  # wrong dtype
        (json.dumps({"features": [1.0, 2.0, 3.0, 99.0]}), 400),  # out of range
        ('{"features": [1.0, 2.0, NaN, 1.0]}', 400),  # NaN
        ('{"features": [1.0, 2.0, Infinity, 1.0]}', 400),  # Inf
        (json.dumps({"features": [1.0] * 4, "pad": "x" * 70_000}), 413),  # too large
    ],
)
def test_example_refuses_bad_input(example: Runtime, raw: str, status: int) -> None:
    kind, response = example.emulator.invoke(apigw_v2(None, raw=raw))
    assert kind == "response" and response["statusCode"] == status
    assert set(body(response)) == {"error", "request_id"}
    [detection] = alerts(example.ledger.new())
    assert detection["verdict"] == "block" and detection["detector"] == "input-validation"

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
    read_events,
    signed_tampered_function,
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


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory, moto: Moto) -> Iterator[dict[str, Runtime]]:
    """Every runtime process of this module, started together (each one imports scikit-learn and boto3)."""
    env = {"STS_ENDPOINT": moto.endpoint}
    started: dict[str, Runtime] = {}
    try:
        for mode in ("enforce", "monitor"):
            root = tmp_path_factory.mktemp(f"aws-{mode}")
            started[mode] = start(
                root, "aws_function.handler", ATTACK_SOURCES["aws"], attack_config(mode, root, moto), env
            )
        root = tmp_path_factory.mktemp("aws-example")
        (root / "scratch").mkdir()
        overrides = {
            "runtime": {"tmp_dir": str(root / "scratch")},
            "forensics": {"ledger": f"jsonl:{root / 'ledger.jsonl'}"},
        }
        started["example"] = start(
            root, "handler.handler", [EXAMPLES / "aws" / "handler.py"], example_config("aws", overrides), {}
        )
        for mode in ("enforce",):  # monitor mode with a tampered model: the Azure and GCP tests
            root = tmp_path_factory.mktemp(f"aws-tampered-{mode}")
            fn = signed_tampered_function(
                root, ATTACK_SOURCES["aws"], attack_config(mode, root, moto), ["model.joblib", "aws_function.py"]
            )
            emulator = LambdaEmulator()
            emulator.start_runtime(fn, "aws_function.handler", env)
            started[f"tampered-{mode}"] = Runtime(root, emulator, Ledger(root / "ledger.jsonl"))
        yield started
    finally:
        for rt in started.values():
            rt.emulator.close()


@pytest.fixture(params=["enforce", "monitor"])
def runtime(request: pytest.FixtureRequest, runtimes: dict[str, Runtime]) -> Runtime:
    rt = runtimes[request.param]
    rt.mode = request.param  # type: ignore[attr-defined]
    return rt


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
@pytest.fixture
def example(runtimes: dict[str, Runtime]) -> Runtime:
    return runtimes["example"]


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


@pytest.mark.parametrize("mode", ["enforce"])
def test_tampered_model_fails_cold_start(runtimes: dict[str, Runtime], mode: str) -> None:
    rt = runtimes[f"tampered-{mode}"]
    if mode == "enforce":  # the function never serves: Lambda reports an init error
        assert rt.emulator.init_error_event.wait(90), rt.emulator.log.read_text()[-2000:]
        assert rt.emulator.init_error is not None
        assert rt.emulator.init_error["errorType"] == "ColdStartIntegrityError"
        assert "Traceback" not in rt.emulator.init_error["errorMessage"]
    else:
        assert rt.call({"action": "noop"})[0]["statusCode"] == 200
    [event] = [e for e in read_events(rt.root / "ledger.jsonl") if e["event"] == "manifest"]
    assert event["details"]["changed"] == ["model.joblib"] and event["severity"] == "critical"
    assert event["verdict"] == ("block" if mode == "enforce" else "alert")


def test_powertools_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """examples/runtime/aws/handler_powertools.py, in process, with a Lambda context like the runtime's."""
    import importlib.util

    from sas.runtime.monitors import audit, cloud_sdk

    (tmp_path / "scratch").mkdir()
    overrides = {
        "runtime": {"tmp_dir": str(tmp_path / "scratch")},
        "forensics": {"ledger": f"jsonl:{tmp_path / 'ledger.jsonl'}"},
    }
    fn = make_function_dir(
        tmp_path / "fn", [EXAMPLES / "aws" / "handler_powertools.py"], example_config("aws", overrides)
    )
    spec = importlib.util.spec_from_file_location("handler_powertools_example", fn / "handler_powertools.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class LambdaContext:
        function_name = "iris"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:iris"
        aws_request_id = "pt-example"

    try:
        good = module.handler(apigw_v2({"features": [5.1, 3.5, 1.4, 0.2]}), LambdaContext())
        bad = module.handler(apigw_v2({"features": [5.1, 3.5, 1.4]}), LambdaContext())
    finally:
        audit.deactivate()
        cloud_sdk.deactivate()
        module.shield.close()
    assert good["statusCode"] == 200 and json.loads(good["body"]) == {"label": 0}
    assert bad["statusCode"] == 400 and json.loads(bad["body"])["request_id"] == "pt-example"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(entry.get("sas", {}).get("detector") == "input-validation" for entry in logged)
    assert any(entry.get("function_request_id") == "pt-example" for entry in logged)

"""The AWS adapter under the real awslambdaric runtime client, against a local Runtime API emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platform_scenarios as scenarios
import pytest
from runtime_harness import LambdaEmulator, Ledger, Listener, Moto, alerts, apigw_v2, example_function, read_events


class Runtime:
    """One awslambdaric process behind the emulator, called with API Gateway (HTTP API) events."""

    def __init__(self, root: Path, emulator: LambdaEmulator, ledger: Ledger, mode: str) -> None:
        self.root = root
        self.emulator = emulator
        self.ledger = ledger
        self.mode = mode

    def call(self, payload: Any) -> tuple[int, Any, list[dict[str, Any]]]:
        event = apigw_v2(None, raw=payload.decode()) if isinstance(payload, bytes) else apigw_v2(payload)
        kind, response = self.emulator.invoke(event)
        assert kind == "response", response
        return response["statusCode"], body(response), self.ledger.new()


def body(response: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(response["body"])
    return decoded


def start(fn: Path, handler: str, env: dict[str, str], mode: str) -> Runtime:
    """awslambdaric serving ``handler`` from the function folder ``fn``; the ledger is beside ``fn``."""
    emulator = LambdaEmulator()
    emulator.start_runtime(fn, handler, env)
    return Runtime(fn.parent, emulator, Ledger(fn.parent / "ledger.jsonl"), mode)


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory, moto: Moto) -> Iterator[dict[str, Runtime]]:
    """Every runtime process of this module, started together (each one imports scikit-learn and boto3)."""
    env = {"STS_ENDPOINT": moto.endpoint}
    started: dict[str, Runtime] = {}
    try:
        for mode in ("enforce", "monitor"):
            fn = scenarios.attack_function("aws", tmp_path_factory.mktemp(f"aws-{mode}"), mode, moto)
            started[mode] = start(fn, "aws_function.handler", env, mode)
        fn = example_function("aws", "handler.py", tmp_path_factory.mktemp("aws-example"))
        started["example"] = start(fn, "handler.handler", {}, "enforce")
        for mode in ("enforce",):  # monitor mode with a tampered model: the Azure and GCP tests
            fn = scenarios.tampered_attack_function("aws", tmp_path_factory.mktemp(f"aws-tampered-{mode}"), mode, moto)
            started[f"tampered-{mode}"] = start(fn, "aws_function.handler", env, mode)
        yield started
    finally:
        for rt in started.values():
            rt.emulator.close()


@pytest.fixture(params=["enforce", "monitor"])
def runtime(request: pytest.FixtureRequest, runtimes: dict[str, Runtime]) -> Runtime:
    return runtimes[request.param]


def test_benign_predictions_raise_no_alerts(runtime: Runtime) -> None:
    scenarios.benign_predictions_raise_no_alerts(
        runtime, platform="aws", function="shielded", client_id="ip:198.51.100.7"
    )


def test_egress_outside_allow_list(runtime: Runtime, listener: Listener) -> None:
    scenarios.egress_outside_allow_list(runtime, listener)


def test_subprocess_spawn(runtime: Runtime) -> None:
    scenarios.subprocess_spawn(runtime)


def test_write_to_code_directory(runtime: Runtime) -> None:
    scenarios.write_to_code_directory(runtime)


def test_tmp_residue_reported_on_next_invocation(runtime: Runtime) -> None:
    scenarios.tmp_residue_reported_on_next_invocation(runtime)


def test_unexpected_assume_role(runtime: Runtime) -> None:
    scenarios.unexpected_assume_role(runtime)


def test_blocked_response_reveals_nothing_internal(runtime: Runtime) -> None:
    kind, response = runtime.emulator.invoke(apigw_v2(None, raw="{not json"))
    events = runtime.ledger.new()
    detection = scenarios.only(events, "detection")
    assert detection["details"]["check"] == "json"
    if runtime.mode == "enforce":
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
        status, payload, events = example.call({"features": features})
        assert status == 200 and "label" in payload
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
        assert rt.call({"action": "noop"})[0] == 200
    scenarios.tampered_model_recorded(read_events(rt.root / "ledger.jsonl"), mode)


def test_powertools_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """examples/runtime/aws/handler_powertools.py, in process, with a Lambda context like the runtime's."""
    import importlib.util

    from sas.runtime.monitors import audit, cloud_sdk

    fn = example_function("aws", "handler_powertools.py", tmp_path)
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

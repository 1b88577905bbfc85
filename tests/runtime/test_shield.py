"""The Shield's contract: modes, the detector interface, guard_model, events, and a cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from inprocess import events, make_shield

from sas.events.record import Verdict
from sas.runtime import Detection, Detector, RequestContext
from sas.taxonomy import Severity, Threat


class QueryBudget(Detector):
    """A toy stateful detector: scores each client's query count, blocks past a budget (429)."""

    name: ClassVar[str] = "query-budget"
    threat: ClassVar[Threat] = Threat.MODEL_EXTRACTION
    uses_baseline: ClassVar[bool] = True  # takes the baseline itself (no built-in model suite)

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.seen: dict[str, int] = {}
        self.outputs: list[Any] = []
        self.baseline: Any = None

    def bind_model(self, predict: Any, baseline: Any = None) -> None:
        self.baseline = baseline

    def on_request(self, ctx: RequestContext) -> Detection | None:
        self.seen[ctx.client_id] = self.seen.get(ctx.client_id, 0) + 1
        if self.seen[ctx.client_id] > self.budget:
            return self.block(429, score=0.9, queries=self.seen[ctx.client_id])
        return None

    def on_model_output(self, ctx: RequestContext | None, inputs: Any, outputs: Any) -> Detection | None:
        self.outputs.append((ctx.request_id if ctx else None, inputs, outputs))
        if outputs == "secret":
            return self.alert(score=0.5, severity=Severity.HIGH)
        return None


def http_event(body: Any, ip: str = "198.51.100.1") -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": {},
        "requestContext": {"http": {"method": "POST", "sourceIp": ip}, "requestId": "r"},
        "body": json.dumps(body),
    }


class Ctx:
    aws_request_id = "req"
    function_name = "fn"


@pytest.mark.parametrize("mode", ["enforce", "monitor"])
def test_detector_interface_and_modes(tmp_path: Path, mode: str) -> None:
    detector = QueryBudget(budget=2)
    shield = make_shield(tmp_path, mode=mode, detectors=[detector])
    predict = shield.guard_model(lambda x: "secret" if x == "leak" else x * 2, baseline={"mean": 0})
    assert detector.baseline == {"mean": 0}

    @shield.aws_lambda
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": json.dumps(predict(json.loads(event["body"])["x"]))}

    answers = [handler(http_event({"x": 1}), Ctx())["statusCode"] for _ in range(3)]
    assert answers == ([200, 200, 429] if mode == "enforce" else [200, 200, 200])
    assert handler(http_event({"x": 1}, ip="198.51.100.2"), Ctx())["statusCode"] == 200  # another client
    [detection] = events(shield, "detection")
    assert detection["detector"] == "query-budget" and detection["category"] == "model"
    assert detection["details"]["score"] == 0.9 and detection["client_id"] == "ip:198.51.100.1"
    assert detection["verdict"] == ("block" if mode == "enforce" else "alert")
    if mode == "monitor":
        assert detection["details"]["would_block"] == 429
    # the model guard sees the request in flight
    assert detector.outputs[0] == ("req", 1, 2)
    shield.close()


def test_output_alert_never_blocks(tmp_path: Path) -> None:
    detector = QueryBudget(budget=100)
    shield = make_shield(tmp_path, detectors=[detector])
    predict = shield.guard_model(lambda x: "secret" if x == "leak" else x)

    @shield.aws_lambda
    def handler(event: dict[str, Any], context: Any) -> Any:
        return predict(event["x"])

    assert handler({"x": "leak"}, Ctx()) == "secret"
    [detection] = events(shield, "detection")
    assert detection["verdict"] == "alert" and detection["severity"] == "high"
    summary = events(shield, "invocation")[-1]
    assert summary["verdict"] == "alert" and summary["details"]["detections"] == ["query-budget"]
    shield.close()


def test_guard_model_blocks_nan_inputs_inside_the_handler(tmp_path: Path) -> None:
    import numpy as np

    shield = make_shield(tmp_path)
    predict = shield.guard_model(lambda x: x.sum())

    @shield.aws_lambda
    def handler(event: dict[str, Any], context: Any) -> Any:
        return {"statusCode": 200, "body": str(predict(np.array(event["x"], dtype=float)))}

    assert handler({"x": [1.0, 2.0]}, Ctx())["statusCode"] == 200
    blocked = handler({"x": [1.0, None]}, Ctx())  # None -> NaN in the float array the model gets
    assert blocked["statusCode"] == 400 and blocked["error"] == "invalid request"
    shield.close()


def test_every_event_carries_the_contract_fields(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)

    @shield.aws_lambda
    def handler(event: Any, context: Any) -> Any:
        return {"statusCode": 200, "body": "{}"}

    handler(http_event({"features": [1]}), Ctx())
    handler({"version": "2.0", "requestContext": {"http": {"method": "POST"}}, "body": "{nope"}, Ctx())
    required = {"time", "event", "detector", "category", "threat", "severity", "verdict", "request_id", "client_id"}
    required |= {"instance_id", "function", "platform", "details"}
    for event in events(shield):
        assert required <= set(event)
        assert event["instance_id"] == shield.instance_id
    shield.close()


def test_handler_errors_propagate_unchanged(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)

    @shield.aws_lambda
    def handler(event: Any, context: Any) -> Any:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        handler({"a": 1}, Ctx())
    assert events(shield, "invocation")[-1]["verdict"] == Verdict.ALLOW.value
    shield.close()


def test_powertools_middleware_and_logger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aws_lambda_powertools import Logger

    logger = Logger(service="iris")
    # a fresh service name: Powertools reuses a logger (and the stream it was created with) per service
    function = f"pt-{tmp_path.name}"
    shield = make_shield(tmp_path, detectors=[QueryBudget(budget=0)], extra={"runtime": {"function": function}})

    class LambdaContext:
        function_name = "iris"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:iris"
        aws_request_id = "pt-1"

    @logger.inject_lambda_context
    @shield.aws_powertools
    def handler(event: Any, context: Any) -> Any:
        return {"statusCode": 200, "body": "{}"}

    response = handler(http_event({"features": [1]}), LambdaContext())
    assert response["statusCode"] == 429
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    alert = next(entry for entry in logged if entry.get("message", "").startswith("sas block"))
    assert alert["sas"]["detector"] == "query-budget" and alert["sas"]["request_id"] == "pt-1"
    shield.close()


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_sas_does_not_load_the_runtime() -> None:
    assert run_python("import sys, sas; print('sas.runtime' in sys.modules)") == "False"
    assert run_python("import sys; from sas import Shield; print(Shield.__module__)") == "sas.runtime.shield"


def test_runtime_never_imports_scan_cli_or_heavy_libraries() -> None:
    loaded = json.loads(
        run_python(
            "import sys, json; from sas.runtime import Shield; "
            "s = Shield({'forensics': {'ledger': 'memory'}}); print(json.dumps(sorted(sys.modules)))"
        )
    )
    forbidden = [m for m in loaded if m.startswith(("sas.scan", "sas.cli", "sas.forensics", "sas.integrity"))]
    forbidden += [m for m in loaded if m.split(".")[0] in {"numpy", "torch", "cryptography", "rich", "click", "boto3"}]
    assert forbidden == []

"""The Shield's own per-request work raises no audit event.

Every audit event calls the Shield's audit hook, a Python function, and costs more than most of the request
path's steps; some innocent-looking code raises one (``obj.__class__ = ...`` raises ``object.__setattr__``).
These tests record every event raised while benign shielded requests run and expect none. (A request that
raises an alert may log, and logging raises events of its own: ``sys._getframe``.)
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sas.events.record import Verdict
from sas.runtime.detectors.base import Detection
from sas.runtime.shield import Shield
from sas.taxonomy import Severity, Threat

_RECORDING: list[str] | None = None


def _record(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING is not None and event != "sas.test.probe":
        _RECORDING.append(event)
    elif event == "sas.test.probe":
        _PROBES.append(event)


_PROBES: list[str] = []
# Installed at import, before any Shield of these tests exists: an active Shield refuses new audit hooks.
sys.addaudithook(_record)


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Events raised inside the block (a hook cannot be removed: it records only meanwhile)."""
    global _RECORDING
    before = len(_PROBES)
    sys.audit("sas.test.probe")
    assert len(_PROBES) == before + 1, "the recording hook is not installed"
    _RECORDING = events = []
    try:
        yield events
    finally:
        _RECORDING = None


def _http_api_event(i: int, features: list[float]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/predict",
        "headers": {"content-type": "application/json", "x-forwarded-for": f"198.51.100.{i}"},
        "requestContext": {
            "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": "/predict", "sourceIp": f"198.51.100.{i}"},
            "requestId": f"r{i}",
        },
        "body": json.dumps({"features": features}),
        "isBase64Encoded": False,
    }


def test_a_shielded_request_raises_no_audit_event(tmp_path: Path) -> None:
    config = {
        "runtime": {
            "mode": "enforce",
            "tmp_dir": str(tmp_path),
            "input": {"schema": {"field": "features", "shape": [4], "min": 0, "max": 16}},
        },
        "forensics": {"ledger": "memory"},
    }
    shield = Shield(config, env={})
    predict = shield.guard_model(lambda x: np.zeros(len(x), dtype=int))

    @shield.aws_lambda
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        row = json.loads(event["body"])["features"]
        return {"statusCode": 200, "body": json.dumps({"label": int(predict(np.asarray([row]))[0])})}

    try:
        for i in range(3):  # first calls may import or compile
            handler(_http_api_event(i, [1.0, 2.0, 3.0, 4.0]), None)
        with recording() as events:
            statuses = [handler(_http_api_event(i, [1.0, 2.0, 3.0, 4.0]), None)["statusCode"] for i in range(3, 8)]
    finally:
        shield.close()
    assert statuses == [200] * 5
    assert events == []


def test_building_a_detection_raises_no_audit_event() -> None:
    """Not a mutable twin class retyped by ``__class__`` assignment (cheaper-looking, and once used): that
    assignment raises the ``object.__setattr__`` audit event, a call of the Shield's hook per flagged request."""
    args = ("extraction", Threat.MODEL_EXTRACTION, Severity.HIGH, Verdict.BLOCK, 0.9, 403, "", "detection", {})
    with recording() as events:
        made = Detection(*args)  # type: ignore[arg-type]
    assert type(made) is Detection
    assert events == []

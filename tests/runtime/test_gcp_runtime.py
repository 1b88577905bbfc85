"""The GCP adapter in a real functions-framework server (gunicorn), called over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platform_scenarios as scenarios
import pytest
from runtime_harness import AWS_ENV, FunctionsFramework, Ledger, Listener, Moto, alerts, example_function


class Server:
    def __init__(self, root: Path, server: FunctionsFramework, mode: str) -> None:
        self.root = root
        self.server = server
        self.ledger = Ledger(root / "ledger.jsonl")
        self.mode = mode

    def call(self, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, list[dict[str, Any]]]:
        status, data = self.server.post(payload, headers)
        return status, data, self.ledger.new()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, moto: Moto) -> Iterator[dict[str, Server]]:
    """Both modes and the README example, started together (each server imports scikit-learn)."""
    started: dict[str, Server] = {}
    for mode in ("enforce", "monitor"):
        root = tmp_path_factory.mktemp(f"gcp-{mode}")
        fn = scenarios.attack_function("gcp", root, mode, moto)
        ff = FunctionsFramework(fn, "gcp_function.py", "attack", env={"STS_ENDPOINT": moto.endpoint}, wait=False)
        started[mode] = Server(root, ff, mode)
    root = tmp_path_factory.mktemp("gcp-example")
    fn = example_function("gcp", "main.py", root)
    started["example"] = Server(root, FunctionsFramework(fn, "main.py", "predict_http", wait=False), "enforce")
    try:
        for each in started.values():
            each.server.wait()
        yield started
    finally:
        for each in started.values():
            each.server.close()


@pytest.fixture(params=["enforce", "monitor"])
def server(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    return servers[request.param]


def test_benign_predictions_raise_no_alerts(server: Server) -> None:
    scenarios.benign_predictions_raise_no_alerts(server, platform="gcp", function="attack", client_id="ip:127.0.0.1")


def test_egress_outside_allow_list(server: Server, listener: Listener) -> None:
    scenarios.egress_outside_allow_list(server, listener)


def test_subprocess_spawn(server: Server) -> None:
    scenarios.subprocess_spawn(server)


def test_write_to_code_directory(server: Server) -> None:
    scenarios.write_to_code_directory(server)


def test_tmp_residue_reported_on_next_invocation(server: Server) -> None:
    scenarios.tmp_residue_reported_on_next_invocation(server)


def test_unexpected_assume_role(server: Server) -> None:
    scenarios.unexpected_assume_role(server)


def test_request_id_from_platform_header(server: Server) -> None:
    status, payload, events = server.call(b"{broken", headers={"Function-Execution-Id": "exec-42"})
    detection = scenarios.only(events, "detection")
    assert detection["request_id"] == "exec-42"
    if server.mode == "enforce":
        assert status == 400 and payload == {"error": "invalid request", "request_id": "exec-42"}


# --- the README example, exactly as published -------------------------------------------------------------------
@pytest.fixture
def example(servers: dict[str, Server]) -> Server:
    return servers["example"]


def test_example_http_function(example: Server) -> None:
    status, payload, events = example.call({"features": [5.1, 3.5, 1.4, 0.2]})
    assert status == 200 and payload == {"label": 0}
    assert alerts(events) == []
    status, payload, events = example.call({"features": [5.1, 3.5, 1.4, float("nan")]})
    assert status == 400 and set(payload) == {"error", "request_id"}
    status, payload, events = example.call(json.dumps({"features": [1, 2, 3, 4], "pad": "x" * 70_000}).encode())
    assert status == 413


def test_example_cloud_event_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CloudEvent function through functions-framework's own app (in process)."""
    from functions_framework import create_app

    from sas.runtime.monitors import audit, cloud_sdk

    fn = example_function("gcp", "main.py", tmp_path, ledger="l.jsonl")
    for var in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"):  # create_app sets them: restore afterwards
        monkeypatch.setenv(var, "")
    app = create_app("predict_event", str(fn / "main.py"), "cloudevent")
    client = app.test_client()
    headers = {
        "ce-id": "evt-1",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "Content-Type": "application/json",
    }
    ledger = Ledger(tmp_path / "l.jsonl")
    try:
        good = client.post("/", json={"features": [5.1, 3.5, 1.4, 0.2]}, headers=headers)
        first = ledger.new()
        bad = client.post("/", json={"features": [1, 2]}, headers={**headers, "ce-id": "evt-2"})
        second = ledger.new()
    finally:  # the policy started at the first request, in this process: stop it before asserting
        audit.deactivate()
        cloud_sdk.deactivate()
    assert good.status_code == 200
    assert alerts(first) == []
    summary = scenarios.only(first, "invocation")
    assert summary["request_id"] == "evt-1"
    assert summary["client_id"] == "event-source://pubsub.googleapis.com/projects/p/topics/t"
    assert bad.status_code == 200  # acknowledged, so the platform does not redeliver it
    [detection] = alerts(second)
    assert detection["request_id"] == "evt-2" and detection["verdict"] == "block"


@pytest.mark.parametrize("mode", ["enforce", "monitor"])
def test_tampered_model_fails_cold_start(
    tmp_path: Path, moto: Moto, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """functions-framework loads the function (in process here): in enforce mode the load fails."""
    from functions_framework import create_app
    from functions_framework.exceptions import FunctionsFrameworkException

    from sas.runtime import ColdStartIntegrityError
    from sas.runtime.monitors import audit, cloud_sdk

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    fn = scenarios.tampered_attack_function("gcp", tmp_path, mode, moto)
    monkeypatch.syspath_prepend(str(fn))
    for var in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"):  # create_app sets them: restore afterwards
        monkeypatch.setenv(var, "")
    if mode == "enforce":
        with pytest.raises((ColdStartIntegrityError, FunctionsFrameworkException)):
            create_app("attack", str(fn / "gcp_function.py"))
    else:
        create_app("attack", str(fn / "gcp_function.py"))
    audit.deactivate()
    cloud_sdk.deactivate()
    scenarios.tampered_model_recorded(Ledger(tmp_path / "ledger.jsonl").new(), mode)

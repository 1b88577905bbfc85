"""The Azure adapter with real azure.functions request objects, through the v2 model's FunctionApp."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
from runtime_harness import (
    ATTACK_SOURCES,
    AWS_ENV,
    EXAMPLES,
    Ledger,
    Listener,
    Moto,
    alerts,
    attack_config,
    example_config,
    make_function_dir,
    signed_tampered_function,
)

from sas.runtime import ColdStartIntegrityError
from sas.runtime.monitors import audit, cloud_sdk


def deactivate() -> None:
    audit.deactivate()
    cloud_sdk.deactivate()


def load(path: Path) -> ModuleType:
    name = f"azure_fn_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class App:
    def __init__(self, root: Path, module: ModuleType, mode: str) -> None:
        self.root = root
        self.module = module
        self.mode = mode
        self.ledger = Ledger(root / "ledger.jsonl")
        [self.function] = module.app.get_functions()

    def call(self, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, list[dict[str, Any]]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        request = func.HttpRequest(
            method="POST",
            url="https://fn.azurewebsites.net/api/attack",
            body=body,
            headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9:52144", **(headers or {})},
        )
        # The policy is active only while the function runs: pytest's own reporting compiles code.
        audit.install(self.module.shield._audit)
        cloud_sdk.install(self.module.shield._sdk)
        try:
            response = self.function.get_user_function()(req=request)
        finally:
            deactivate()
        raw = response.get_body()
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw
        return response.status_code, data, self.ledger.new()


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, moto: Moto) -> Iterator[dict[str, App]]:
    loaded: dict[str, App] = {}
    patch = pytest.MonkeyPatch()
    for key, value in {**AWS_ENV, "STS_ENDPOINT": moto.endpoint}.items():
        patch.setenv(key, value)
    try:
        roots = {mode: tmp_path_factory.mktemp(f"azure-{mode}") for mode in ("enforce", "monitor")}
        for mode, root in roots.items():
            fn = make_function_dir(root / "fn", ATTACK_SOURCES["azure"], attack_config(mode, root, moto))
            loaded[mode] = App(root, load(fn / "azure_function.py"), mode)
            deactivate()  # each test activates the policy it exercises
        yield loaded
    finally:
        patch.undo()
        for app in loaded.values():
            app.module.shield.close()


@pytest.fixture(params=["enforce", "monitor"])
def app(request: pytest.FixtureRequest, apps: dict[str, App]) -> App:
    return apps[request.param]


def only(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [e for e in events if e["event"] == kind]
    assert len(found) == 1, events
    return found[0]


def test_function_indexing_survives_the_decorator(apps: dict[str, App]) -> None:
    function = apps["enforce"].function
    assert function.get_function_name() == "attack"
    bindings = json.loads(function.get_function_json())["bindings"]
    assert {b["name"] for b in bindings} == {"req", "$return"}
    assert next(b for b in bindings if b["name"] == "req")["authLevel"] == "FUNCTION"


def test_benign_predictions_raise_no_alerts(app: App) -> None:
    for features in ([5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]):
        status, payload, events = app.call({"features": features, "sdk": True})
        assert status == 200 and payload["label"] in {0, 1, 2}
        assert alerts(events) == []
        summary = only(events, "invocation")
        assert summary["platform"] == "azure" and summary["client_id"] == "ip:203.0.113.9"
        assert summary["details"]["sdk_calls"] == ["sts:GetCallerIdentity"]


def test_egress_outside_allow_list(app: App, listener: Listener) -> None:
    before = listener.connections
    status, payload, events = app.call({"action": "egress", "port": listener.port})
    event = only(events, "egress")
    if app.mode == "enforce":
        assert status == 403 and set(payload) == {"error", "request_id"} and event["verdict"] == "block"
        assert listener.connections == before
    else:
        assert status == 200 and event["verdict"] == "alert"


def test_subprocess_spawn(app: App) -> None:
    status, _, events = app.call({"action": "subprocess"})
    event = only(events, "subprocess")
    assert (status, event["verdict"]) == ((403, "block") if app.mode == "enforce" else (200, "alert"))


def test_write_to_code_directory(app: App) -> None:
    target = app.root / "fn" / "injected.py"
    status, _, events = app.call({"action": "write_code"})
    assert only(events, "file-write")["details"]["path"] == str(target)
    assert (status, target.exists()) == ((403, False) if app.mode == "enforce" else (200, True))


def test_tmp_residue_reported_on_next_invocation(app: App) -> None:
    status, _, events = app.call({"action": "tmp_residue", "name": "stash.bin"})
    assert status == 200 and not [e for e in events if e["event"] == "tmp-residue"]
    status, _, events = app.call({"action": "noop"})
    assert only(events, "tmp-residue")["details"]["files"] == ["stash.bin"]


def test_unexpected_assume_role(app: App) -> None:
    status, payload, events = app.call({"action": "assume_role"})
    event = only(events, "sdk-call")
    assert event["details"]["action"] == "sts:AssumeRole"
    if app.mode == "enforce":
        assert status == 403 and event["verdict"] == "block"
    else:
        assert payload == {"assumed": True} and event["verdict"] == "alert"


@pytest.mark.parametrize("mode", ["enforce", "monitor"])
def test_tampered_model_fails_cold_start(
    tmp_path: Path, moto: Moto, mode: str, apps: dict[str, App], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    fn = signed_tampered_function(
        tmp_path, ATTACK_SOURCES["azure"], attack_config(mode, tmp_path, moto), ["model.joblib", "azure_function.py"]
    )
    ledger = Ledger(tmp_path / "ledger.jsonl")
    if mode == "enforce":
        with pytest.raises(ColdStartIntegrityError):
            load(fn / "azure_function.py")
    else:
        module = load(fn / "azure_function.py")
        module.shield.close()
    deactivate()
    [event] = [e for e in ledger.new() if e["event"] == "manifest"]
    assert event["severity"] == "critical" and event["threat"] == "cold-start-tampering"
    assert event["details"]["changed"] == ["model.joblib"]
    assert event["verdict"] == ("block" if mode == "enforce" else "alert")


def test_example_function_app(tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    config = example_config(
        "azure",
        {
            "runtime": {"tmp_dir": str(tmp_path / "scratch")},
            "forensics": {"ledger": f"jsonl:{tmp_path / 'ledger.jsonl'}"},
        },
    )
    fn = make_function_dir(tmp_path / "fn", [EXAMPLES / "azure" / "function_app.py"], config)
    module = load(fn / "function_app.py")
    deactivate()
    ledger_events = Ledger(tmp_path / "ledger.jsonl").new()
    assert alerts(ledger_events) == []  # nothing suspicious at cold start either
    try:
        app = App(tmp_path, module, "enforce")
        status, payload, events = app.call({"features": [6.7, 3.0, 5.2, 2.3]})
        assert status == 200 and payload == {"label": 2} and alerts(events) == []
        status, payload, events = app.call({"features": [6.7, 3.0, 5.2]})
        assert status == 400 and set(payload) == {"error", "request_id"}
        assert payload["request_id"] == only(events, "detection")["request_id"]
        status, _, _ = app.call(json.dumps({"features": [1, 2, 3, 4], "pad": "x" * 70_000}).encode())
        assert status == 413
    finally:
        module.shield.close()

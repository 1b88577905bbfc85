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
import platform_scenarios as scenarios
import pytest
from runtime_harness import AWS_ENV, Ledger, Listener, Moto, alerts, example_function

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
            fn = scenarios.attack_function("azure", root, mode, moto)
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


def test_function_indexing_survives_the_decorator(apps: dict[str, App]) -> None:
    function = apps["enforce"].function
    assert function.get_function_name() == "attack"
    bindings = json.loads(function.get_function_json())["bindings"]
    assert {b["name"] for b in bindings} == {"req", "$return"}
    assert next(b for b in bindings if b["name"] == "req")["authLevel"] == "FUNCTION"


def test_benign_predictions_raise_no_alerts(app: App) -> None:
    scenarios.benign_predictions_raise_no_alerts(app, platform="azure", function="attack", client_id="ip:203.0.113.9")


def test_egress_outside_allow_list(app: App, listener: Listener) -> None:
    scenarios.egress_outside_allow_list(app, listener)


def test_subprocess_spawn(app: App) -> None:
    scenarios.subprocess_spawn(app)


def test_write_to_code_directory(app: App) -> None:
    scenarios.write_to_code_directory(app)


def test_tmp_residue_reported_on_next_invocation(app: App) -> None:
    scenarios.tmp_residue_reported_on_next_invocation(app)


def test_unexpected_assume_role(app: App) -> None:
    scenarios.unexpected_assume_role(app)


@pytest.mark.parametrize("mode", ["enforce", "monitor"])
def test_tampered_model_fails_cold_start(
    tmp_path: Path, moto: Moto, mode: str, apps: dict[str, App], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    fn = scenarios.tampered_attack_function("azure", tmp_path, mode, moto)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    if mode == "enforce":
        with pytest.raises(ColdStartIntegrityError):
            load(fn / "azure_function.py")
    else:
        module = load(fn / "azure_function.py")
        module.shield.close()
    deactivate()
    scenarios.tampered_model_recorded(ledger.new(), mode)


def test_example_function_app(tmp_path: Path) -> None:
    fn = example_function("azure", "function_app.py", tmp_path)
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
        assert payload["request_id"] == scenarios.only(events, "detection")["request_id"]
        status, _, _ = app.call(json.dumps({"features": [1, 2, 3, 4], "pad": "x" * 70_000}).encode())
        assert status == 413
    finally:
        module.shield.close()

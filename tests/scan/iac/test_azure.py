"""Azure Functions: function.json authLevel, local.settings.json secrets, Python v2 decorators (read, never run)."""

from __future__ import annotations

import json

from sas.scan.iac import azure


def _function_json(level: str | None) -> str:
    binding = {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["post"]}
    if level is not None:
        binding["authLevel"] = level
    return json.dumps(
        {"scriptFile": "__init__.py", "bindings": [binding, {"type": "http", "direction": "out", "name": "$return"}]},
        indent=2,
    )


def test_anonymous_http_trigger_is_public(scan_files):
    text = _function_json("anonymous")
    res = scan_files({"Predict/function.json": text})
    (hit,) = res.rule("SAS-IAC-001")
    expected = next(i for i, line in enumerate(text.splitlines(), 1) if "authLevel" in line)
    assert hit.location.path == "Predict/function.json" and hit.location.line == expected
    assert "Predict" in hit.message


def test_function_level_and_default_are_not_public(scan_files):
    assert "SAS-IAC-001" not in scan_files({"A/function.json": _function_json("function")}).ids()
    assert "SAS-IAC-001" not in scan_files({"B/function.json": _function_json(None)}).ids()


def test_function_json_by_content_under_other_name(scan_files):
    res = scan_files({"Predict/bindings.json": _function_json("anonymous")})
    assert "SAS-IAC-001" in res.ids()


def test_local_settings_storage_key_and_secrets(scan_files):
    settings = {
        "IsEncrypted": False,
        "Values": {
            "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
            + "A" * 30
            + "b" * 30
            + "==;EndpointSuffix=core.windows.net",
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "MODEL_API_TOKEN": "tok_8fj3k2l1m0n9b8v7c6x5",
            "KEYVAULT_REF": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/x)",
        },
    }
    res = scan_files({"local.settings.json": json.dumps(settings, indent=2)})
    assert "SAS-IAC-011" in res.ids()
    secrets = res.rule("SAS-IAC-003")
    assert [f.evidence.split(":")[0] for f in secrets] == ["MODEL_API_TOKEN"]


def test_dev_storage_is_clean(scan_files):
    settings = {"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "FUNCTIONS_WORKER_RUNTIME": "python"}}
    assert scan_files({"local.settings.json": json.dumps(settings)}).result.findings == ()


PY_V2 = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="predict", methods=["POST"])
def predict(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.function_name(name="Admin")
@app.route(route="admin", auth_level=func.AuthLevel.ADMIN)
def admin(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")
"""


def test_python_v2_app_default_anonymous(scan_files, tmp_path):
    marker = tmp_path / "imported"
    source = PY_V2 + f"\nopen({str(marker)!r}, 'w').write('x')\n"
    res = scan_files({"function_app.py": source})
    public = res.rule("SAS-IAC-001")
    assert len(public) == 1 and "predict" in public[0].message and "http_auth_level default" in public[0].message
    assert not marker.exists()  # read with ast, never imported


def test_python_v2_function_level_app_is_clean(scan_files):
    res = scan_files({"function_app.py": PY_V2.replace("ANONYMOUS", "FUNCTION")})
    assert "SAS-IAC-001" not in res.ids()


def test_python_v2_decorator_overrides_app(scan_files):
    source = PY_V2.replace("ANONYMOUS", "FUNCTION").replace(
        '@app.route(route="predict", methods=["POST"])',
        '@app.route(route="predict", methods=["POST"], auth_level="anonymous")',
    )
    assert "SAS-IAC-001" in scan_files({"function_app.py": source}).ids()


def test_python_v2_syntax_error_is_noted():
    dep = azure.parse_python_v2("import azure.functions as func\napp = func.FunctionApp(\n", "function_app.py")
    assert dep.issues and dep.functions == ()


def test_malformed_function_json(scan_files):
    res = scan_files({"F/function.json": '{"bindings": [ {"type": "httpTrigger",'})
    assert "SAS-IAC-000" in res.ids()

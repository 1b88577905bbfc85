"""Handler-code rules: for every rule, the bad code is found and the fixed code is not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sas.scan.code import check_source, is_vendored_path
from sas.scan.engine import scan
from sas.scan.findings import Finding
from sas.taxonomy import Severity


def _check(code: str) -> list[Finding]:
    return check_source(textwrap.dedent(code).encode(), "handler.py")


def _rules(code: str) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in _check(code):
        out.setdefault(f.rule_id, []).append(f)
    return out


# (id, rule, bad, fixed): the bad code gives at least one finding of the rule, the fixed code none.
PAIRS: list[tuple[str, str, str, str]] = [
    (
        "pickle-request",
        "SAS-CODE-001",
        """
        import base64, json, pickle
        def handler(event, context):
            body = json.loads(event["body"])
            return pickle.loads(base64.b64decode(body["features"]))
        """,
        """
        import json
        def handler(event, context):
            body = json.loads(event["body"])
            return [float(x) for x in body["features"]]
        """,
    ),
    (
        "joblib-request-path",
        "SAS-CODE-001",
        """
        import joblib
        def lambda_handler(event, context):
            return joblib.load(event["model_path"]).predict([[1]])
        """,
        """
        import joblib
        MODELS = {"small": "models/small.joblib"}
        def lambda_handler(event, context):
            name = event["model"]
            if name not in MODELS:
                return {"statusCode": 400}
            return {"statusCode": 200}
        """,
    ),
    (
        "torch-load-request",
        "SAS-CODE-001",
        """
        import io, torch
        def handler(event, context):
            return torch.load(io.BytesIO(event["body"].encode()))
        """,
        """
        import io, torch
        def handler(event, context):
            return torch.load(io.BytesIO(event["body"].encode()), weights_only=True)
        """,
    ),
    (
        "numpy-allow-pickle-request",
        "SAS-CODE-001",
        """
        import io
        import numpy as np
        def handler(event, context):
            return np.load(io.BytesIO(event["body"]), allow_pickle=True)
        """,
        """
        import io
        import numpy as np
        def handler(event, context):
            return np.load(io.BytesIO(event["body"]), allow_pickle=False)
        """,
    ),
    (
        "yaml-load-request",
        "SAS-CODE-001",
        """
        import yaml
        def handler(event, context):
            return yaml.load(event["body"], Loader=yaml.Loader)
        """,
        """
        import yaml
        def handler(event, context):
            return yaml.load(event["body"], Loader=yaml.SafeLoader), yaml.safe_load(event["body"])
        """,
    ),
    (
        "marshal-dill-cloudpickle-request",
        "SAS-CODE-001",
        """
        import marshal, dill, cloudpickle
        def handler(event, context):
            return marshal.loads(event["a"]), dill.loads(event["b"]), cloudpickle.loads(event["c"])
        """,
        """
        import json
        def handler(event, context):
            return json.loads(event["a"])
        """,
    ),
    (
        "pickle-model-file",
        "SAS-CODE-002",
        """
        import pickle
        with open("model.pkl", "rb") as fh:
            MODEL = pickle.load(fh)
        def handler(event, context):
            return MODEL.predict([event["x"]])
        """,
        """
        from safetensors.numpy import load_file
        WEIGHTS = load_file("model.safetensors")
        def handler(event, context):
            return WEIGHTS["w"] @ event["x"]
        """,
    ),
    (
        "os-system-request",
        "SAS-CODE-003",
        """
        import os
        def handler(event, context):
            os.system("convert " + event["file"] + " /tmp/out.png")
        """,
        """
        import subprocess, uuid
        def handler(event, context):
            out = f"/tmp/{uuid.uuid4()}.png"
            subprocess.run(["convert", "/tmp/in.png", out], check=True)
        """,
    ),
    (
        "subprocess-shell-request",
        "SAS-CODE-003",
        """
        import subprocess
        def handler(event, context):
            name = event["queryStringParameters"]["name"]
            return subprocess.check_output(f"grep {name} /data/list.txt", shell=True)
        """,
        """
        import subprocess, shlex
        def handler(event, context):
            name = event["queryStringParameters"]["name"]
            return subprocess.check_output(f"grep -- {shlex.quote(name)} /data/list.txt", shell=True)
        """,
    ),
    (
        "popen-request",
        "SAS-CODE-003",
        """
        import os
        def handler(event, context):
            return os.popen("ping -c1 %s" % event["host"]).read()
        """,
        """
        import os
        def handler(event, context):
            return os.popen("uptime").read()
        """,
    ),
    (
        "shell-dynamic",
        "SAS-CODE-004",
        """
        import os
        TARGET = os.environ.get("TARGET", "/tmp")
        def cleanup():
            os.system("rm -rf " + TARGET)
        """,
        """
        import shutil, os
        TARGET = os.environ.get("TARGET", "/tmp")
        def cleanup():
            shutil.rmtree(TARGET, ignore_errors=True)
        """,
    ),
    (
        "eval-request",
        "SAS-CODE-005",
        """
        def handler(event, context):
            expression = event["queryStringParameters"]["expr"]
            return {"result": eval(expression)}
        """,
        """
        import ast
        def handler(event, context):
            expression = event["queryStringParameters"]["expr"]
            return {"result": ast.literal_eval(expression)}
        """,
    ),
    (
        "exec-dynamic",
        "SAS-CODE-006",
        """
        def load_plugin(path):
            with open(path) as fh:
                exec(fh.read())
        """,
        """
        import importlib
        def load_plugin(name):
            return importlib.import_module("plugins." + name)
        """,
    ),
    (
        "ssrf-requests",
        "SAS-CODE-007",
        """
        import requests
        def handler(event, context):
            url = event["queryStringParameters"]["image_url"]
            return requests.get(url, timeout=5).content
        """,
        """
        import requests
        SOURCES = {"cats": "https://images.example.com/cats.jpg"}
        def handler(event, context):
            key = event["queryStringParameters"]["source"]
            return requests.get(SOURCES[key], timeout=5).content
        """,
    ),
    (
        "ssrf-session-urllib",
        "SAS-CODE-007",
        """
        import requests
        from urllib.request import urlopen
        SESSION = requests.Session()
        def handler(event, context):
            SESSION.post(event["callback"], json={})
            return urlopen(event["feed"]).read()
        """,
        """
        import requests
        from urllib.parse import quote
        SESSION = requests.Session()
        def handler(event, context):
            SESSION.post("https://hooks.example.com/done", json={"id": event["id"]})
            return requests.get(f"https://feeds.example.com/{quote(event['feed'])}").text
        """,
    ),
    (
        "path-traversal-tmp",
        "SAS-CODE-008",
        """
        import os
        def handler(event, context):
            path = os.path.join("/tmp", event["filename"])
            with open(path, "wb") as fh:
                fh.write(event["body"].encode())
        """,
        """
        import os
        def handler(event, context):
            path = os.path.join("/tmp", os.path.basename(event["filename"]))
            with open(path, "wb") as fh:
                fh.write(event["body"].encode())
        """,
    ),
    (
        "path-traversal-pathlib",
        "SAS-CODE-008",
        """
        from pathlib import Path
        def handler(event, context):
            return Path("/var/task/docs", event["page"]).read_text()
        """,
        """
        from pathlib import Path
        import uuid
        def handler(event, context):
            return Path("/tmp", str(uuid.uuid4())).write_text(event["page"])
        """,
    ),
    (
        "global-cache",
        "SAS-CODE-009",
        """
        import json
        RESULTS = {}
        SEEN = []
        def handler(event, context):
            body = json.loads(event["body"])
            RESULTS[body["user"]] = body["text"]
            SEEN.append(body)
            return RESULTS
        """,
        """
        import json
        MODEL_CACHE = {}
        def handler(event, context):
            body = json.loads(event["body"])
            if "model" not in MODEL_CACHE:
                MODEL_CACHE["model"] = object()
            results = {}
            results[body["user"]] = body["text"]
            return results
        """,
    ),
    (
        "global-rebound",
        "SAS-CODE-009",
        """
        LAST_USER = None
        def handler(event, context):
            global LAST_USER
            LAST_USER = event["user"]
        """,
        """
        LAST_USER = None
        def handler(event, context):
            last_user = event["user"]
            return last_user
        """,
    ),
    (
        "tmp-fixed-name",
        "SAS-CODE-015",
        """
        import json, numpy as np
        from pathlib import Path
        def handler(event, context):
            body = json.loads(event["body"])
            with open("/tmp/input.json", "w") as fh:
                json.dump(body, fh)
            Path("/tmp/last.txt").write_text(body["text"])
            np.save("/tmp/features.npy", body["x"])
        """,
        """
        import json, os, tempfile, uuid
        def handler(event, context):
            body = json.loads(event["body"])
            with tempfile.NamedTemporaryFile("w", dir="/tmp", suffix=".json") as fh:
                json.dump(body, fh)
            path = f"/tmp/{uuid.uuid4()}.txt"
            with open(path, "w") as out:
                out.write(body["text"])
            with open("/tmp/model-version.txt", "w") as meta:
                meta.write("v3")
            os.remove(path)
        """,
    ),
    (
        "trust-remote-code",
        "SAS-CODE-010",
        """
        from transformers import AutoModel
        MODEL = AutoModel.from_pretrained("org/model", trust_remote_code=True)
        """,
        """
        from transformers import AutoModel
        MODEL = AutoModel.from_pretrained("org/model", revision="3f2c1a9", trust_remote_code=False)
        """,
    ),
    (
        "keras-safe-mode",
        "SAS-CODE-011",
        """
        import keras
        MODEL = keras.models.load_model("model.keras", safe_mode=False)
        """,
        """
        import keras
        MODEL = keras.models.load_model("model.keras")
        """,
    ),
    (
        "aws-key",
        "SAS-CODE-012",
        """
        import boto3
        s3 = boto3.client("s3", aws_access_key_id="AKIA2E0A8F3B244C9986", aws_secret_access_key=SECRET)
        """,
        """
        import boto3
        s3 = boto3.client("s3")
        """,
    ),
    (
        "private-key-block",
        "SAS-CODE-012",
        '''
        SIGNING_KEY = """-----BEGIN RSA PRIVATE KEY-----
        MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw
        -----END RSA PRIVATE KEY-----"""
        INLINE = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n"
        ''',
        """
        import os
        SIGNING_KEY = os.environ["SIGNING_KEY_PEM"]
        PEM_HEADER = "-----BEGIN OPENSSH PRIVATE KEY-----"  # what a key parser compares against
        """,
    ),
    (
        "token-formats",
        "SAS-CODE-012",
        """
        GH = "ghp_Zq3Kx9mW2vN7pL4rT8yB1cF6hJ0sD5aE9gUo"
        SLACK = "xoxb-2048-1024-Qw8eR4tY6uI2oP9aS3dF"
        STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
        """,
        """
        import os
        GH = os.environ["GITHUB_TOKEN"]
        """,
    ),
    (
        "secret-by-name",
        "SAS-CODE-013",
        """
        DB_PASSWORD = "Tr0ub4dor&3xK9"
        def connect(client_secret="q8Zp2LmX7vR4tW1n"):
            return client_secret
        """,
        """
        import os
        DB_PASSWORD = os.environ["DB_PASSWORD"]
        password_field = "password"
        TOKEN_URL = "https://auth.example.com/oauth/token"
        def connect(client_secret=None):
            return client_secret
        """,
    ),
    (
        "print-event",
        "SAS-CODE-014",
        """
        def handler(event, context):
            print(event)
            return {"statusCode": 200}
        """,
        """
        def handler(event, context):
            print({"request_id": context.aws_request_id, "route": event.get("rawPath")})
            return {"statusCode": 200}
        """,
    ),
    (
        "log-json-event",
        "SAS-CODE-014",
        """
        import json, logging
        logger = logging.getLogger()
        def handler(event, context):
            logger.info(f"event: {json.dumps(event)}")
            logger.debug("headers %s", event["headers"])
        """,
        """
        import logging
        logger = logging.getLogger()
        def handler(event, context):
            logger.info("route %s", event.get("rawPath"))
        """,
    ),
    (
        "powertools-log-event",
        "SAS-CODE-014",
        """
        from aws_lambda_powertools import Logger
        logger = Logger()
        @logger.inject_lambda_context(log_event=True)
        def handler(event, context):
            return 1
        """,
        """
        from aws_lambda_powertools import Logger
        logger = Logger()
        @logger.inject_lambda_context
        def handler(event, context):
            return 1
        """,
    ),
]


@pytest.mark.parametrize(("rule_id", "bad", "fixed"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_rule_pair(rule_id: str, bad: str, fixed: str) -> None:
    found = _rules(bad)
    assert rule_id in found, f"{rule_id} not found; got {sorted(found)}"
    assert rule_id not in _rules(fixed), [f.message for f in _rules(fixed)[rule_id]]


def test_every_code_rule_has_a_pair() -> None:
    from sas.scan.rules import catalogue

    ids = {r.id for r in catalogue() if r.id.startswith("SAS-CODE-")}
    assert ids == {p[1] for p in PAIRS}


# ---------------------------------------------------------------- entry points of each platform


def test_azure_v1_main_httprequest() -> None:
    found = _rules(
        """
        import azure.functions as func
        import pickle
        def main(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse(pickle.loads(req.get_body()))
        """
    )
    assert found["SAS-CODE-001"][0].severity is Severity.CRITICAL


def test_azure_v2_route_and_queue_trigger() -> None:
    found = _rules(
        """
        import azure.functions as func, subprocess, pickle
        app = func.FunctionApp()
        @app.route(route="run")
        def run(r: func.HttpRequest) -> func.HttpResponse:
            subprocess.run(r.params.get("cmd"), shell=True)
        @app.queue_trigger(arg_name="item", queue_name="jobs", connection="C")
        def work(item) -> None:
            pickle.loads(item.get_body())
        """
    )
    assert "SAS-CODE-003" in found and "SAS-CODE-001" in found


def test_gcp_http_and_cloud_event() -> None:
    found = _rules(
        """
        import functions_framework, yaml
        @functions_framework.http
        def predict(r):
            return eval(r.args["q"])
        @functions_framework.cloud_event
        def on_upload(ce):
            return yaml.unsafe_load(ce.data["payload"])
        """
    )
    assert "SAS-CODE-005" in found and "SAS-CODE-001" in found


def test_flask_global_request_and_fastapi_params() -> None:
    found = _rules(
        """
        import requests, os
        from flask import request
        from fastapi import FastAPI
        api = FastAPI()
        def fetch():
            return requests.get(request.args["u"]).text
        @api.get("/files/{name}")
        def read(name: str):
            return open(os.path.join("/srv/files", name)).read()
        """
    )
    assert "SAS-CODE-007" in found and "SAS-CODE-008" in found


def test_powertools_current_event() -> None:
    found = _rules(
        """
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
        app = APIGatewayRestResolver()
        @app.post("/run")
        def run():
            return eval(app.current_event.json_body["code"])
        """
    )
    assert "SAS-CODE-005" in found


def test_taint_through_walrus_loop_and_comprehension() -> None:
    found = _rules(
        """
        import pickle
        def handler(event, context):
            parts = [p for p in event["records"]]
            for record in parts:
                if (data := record["data"]):
                    pickle.loads(data)
        """
    )
    assert "SAS-CODE-001" in found


def test_taint_passes_to_module_level_helpers() -> None:
    found = _rules(
        """
        import base64, json, pickle
        def decode(blob):
            return pickle.loads(base64.b64decode(blob))
        def parse(text, *, strict=True):
            return decode(json.loads(text)["model"])
        def dump(evt):
            print(evt)
        def handler(event, context):
            dump(event)
            return parse(event["body"])
        """
    )
    assert [f.location.line for f in found["SAS-CODE-001"]] == [4]  # in decode(), two calls from the handler
    assert [f.location.line for f in found["SAS-CODE-014"]] == [8]  # print(evt) of the whole event


def test_helper_called_with_constants_stays_untainted() -> None:
    found = _rules(
        """
        import pickle
        def load(path):
            with open(path, "rb") as fh:
                return pickle.load(fh)
        MODEL = load("model.pkl")
        def handler(event, context):
            return MODEL.predict(event["x"])
        """
    )
    assert "SAS-CODE-001" not in found and "SAS-CODE-002" in found


def test_untainted_helper_eval_is_medium_not_critical() -> None:
    found = _rules(
        """
        def compute(expression_from_config):
            return eval(expression_from_config)
        """
    )
    assert [f.severity for f in found["SAS-CODE-006"]] == [Severity.MEDIUM]
    assert "SAS-CODE-005" not in found


def test_closure_inherits_taint() -> None:
    found = _rules(
        """
        import os
        def handler(event, context):
            name = event["name"]
            def run():
                os.system("echo " + name)
            run()
        """
    )
    assert "SAS-CODE-003" in found


def test_local_shadow_of_global_is_not_cache() -> None:
    found = _rules(
        """
        CACHE = {}
        def handler(event, context):
            CACHE = {}
            CACHE[event["k"]] = event["v"]
            return CACHE
        """
    )
    assert "SAS-CODE-009" not in found


def test_private_key_inline_escapes_found_twice() -> None:
    found = _rules(
        '''
        A = """-----BEGIN RSA PRIVATE KEY-----
        MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw
        -----END RSA PRIVATE KEY-----"""
        B = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n"
        '''
    )
    assert len(found["SAS-CODE-012"]) == 2


def test_pytest_request_fixture_is_not_a_source() -> None:
    found = _rules(
        """
        import subprocess
        def test_cli(request):
            subprocess.run(["tool", request.param])
        """
    )
    assert "SAS-CODE-003" not in found


def test_aws_secret_access_key_by_name_is_high() -> None:
    found = _rules('AWS_SECRET_ACCESS_KEY = "q8Vd3n+1fUQe0LrS7XkT2mB9wYcJ4hZpG6aN5oEi"\n')
    assert [f.severity for f in found["SAS-CODE-012"]] == [Severity.HIGH] and "SAS-CODE-013" not in found


def test_secret_evidence_is_redacted() -> None:
    findings = _check('KEY = "AKIA2E0A8F3B244C9986"\n')
    assert findings and "AKIA2E0A8F3B244C9986" not in findings[0].evidence + findings[0].message


def test_documentation_example_key_is_not_a_secret() -> None:
    assert not _check('EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"\n')


def test_model_file_pickle_is_low_and_names_the_model_scanner() -> None:
    findings = _rules("import joblib\nMODEL = joblib.load('model.joblib')\n")["SAS-CODE-002"]
    assert findings[0].severity is Severity.LOW and "sas scan" in findings[0].message


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "source",
    [b"def handler(event:\n", b"x = 1\x00\n", b"(" * 300 + b"\n", b"x = " + b"+".join([b"a"] * 50_000) + b"\n"],
    ids=["syntax", "null-byte", "deep-parens", "long-chain"],
)
def test_unparseable_python_is_a_finding_not_a_traceback(source: bytes) -> None:
    findings = check_source(source, "broken.py")
    assert all(f.location.path == "broken.py" for f in findings)
    if source.startswith(b"x = a+"):
        return  # may parse and analyse fine; the point is no exception
    assert [f.rule_id for f in findings] == ["SAS-SCAN-002"]


def test_latin1_source_does_not_crash() -> None:
    findings = check_source("# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\n".encode("latin-1"), "legacy.py")
    assert findings == []


# ---------------------------------------------------------------- through the scan engine


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_vendored_code_is_skipped_function_code_is_not(tmp_path: Path) -> None:
    _write(tmp_path, "app.py", "import os\ndef handler(event, context):\n    os.system(event['cmd'])\n")
    # pip install -t . puts libraries next to the handler; only their RECORD tells them apart
    _write(tmp_path, "lib1/core.py", "def f(event):\n    return eval(event)\n")
    _write(tmp_path, "lib1-1.0.dist-info/RECORD", "lib1/core.py,sha256=x,10\nlib1-1.0.dist-info/RECORD,,\n")
    _write(tmp_path, "python/lib/python3.12/site-packages/lib2/x.py", "eval(input())\n")
    _write(tmp_path, "vendor/site-packages/lib3/y.py", "eval(input())\n")
    result = scan(tmp_path)
    paths = {f.location.path for f in result.findings if f.rule_id.startswith("SAS-CODE")}
    assert paths == {"app.py"}


def test_syntax_error_in_function_code_through_engine(tmp_path: Path) -> None:
    _write(tmp_path, "handler.py", "def handler(event, context)\n    return 1\n")
    result = scan(tmp_path)
    assert [(f.rule_id, f.location.path) for f in result.findings] == [("SAS-SCAN-002", "handler.py")]


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, ("echo owned",)


@pytest.mark.parametrize("container", ["", "torch"])
def test_loader_of_unsafe_model_is_raised_to_model_severity(tmp_path: Path, container: str) -> None:
    import pickle
    import zipfile

    (tmp_path / "model").mkdir()
    if container == "torch":  # the model scanner reports inside the archive: model.pt!archive/data.pkl
        with zipfile.ZipFile(tmp_path / "model" / "model.pt", "w") as zf:
            zf.writestr("archive/data.pkl", pickle.dumps(_Payload()))
            zf.writestr("archive/version", "3\n")
        name = "model.pt"
    else:
        (tmp_path / "model" / "model.pkl").write_bytes(pickle.dumps(_Payload()))
        name = "model.pkl"
    _write(
        tmp_path,
        "app.py",
        f"""
        import os, pickle
        from pathlib import Path
        MODEL_PATH = Path(os.environ.get("MODEL_PATH", Path(__file__).parent / "model" / "{name}"))
        MODEL = pickle.load(open(MODEL_PATH, "rb"))
        """,
    )
    result = scan(tmp_path)
    loads = [f for f in result.findings if f.rule_id == "SAS-CODE-002"]
    model = [f for f in result.findings if f.location.path.startswith(f"model/{name}") and f.severity >= Severity.HIGH]
    assert model, "the model scanner should report the os.system payload"
    assert loads[0].severity is max(f.severity for f in model)
    assert f"model/{name}" in loads[0].message


def test_loader_of_benign_model_stays_low(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    _write(tmp_path, "app.py", "import pickle\nMODEL = pickle.load(open('model.pkl', 'rb'))\n")
    loads = [f for f in scan(tmp_path).findings if f.rule_id == "SAS-CODE-002"]
    assert [f.severity for f in loads] == [Severity.LOW]


def test_python_script_without_extension_is_checked(tmp_path: Path) -> None:
    _write(tmp_path, "bootstrap", "#!/usr/bin/env python3\nimport os\nos.system(os.environ['X'] + ' run')\n")
    result = scan(tmp_path)
    assert any(f.rule_id == "SAS-CODE-004" for f in result.findings)


def test_is_vendored_path() -> None:
    assert is_vendored_path("python/lib/python3.11/site-packages/numpy/__init__.py")
    assert is_vendored_path("python/lib/python3.12/numpy/__init__.py")
    assert is_vendored_path("boto3-1.0.dist-info/METADATA")
    assert not is_vendored_path("app/handler.py")
    assert not is_vendored_path("handler.py")


@pytest.mark.parametrize(
    "example", ["aws-digits", "runtime/aws", "runtime/azure", "runtime/gcp"], ids=lambda e: e.replace("/", "-")
)
def test_clean_examples_have_no_code_finding_above_low(example: str) -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / example
    if not root.is_dir():
        pytest.skip(f"examples/{example} not in this checkout")
    findings = [f for f in scan(root).findings if f.rule_id.startswith("SAS-CODE")]
    assert all(f.severity <= Severity.LOW for f in findings), [(f.rule_id, str(f.location)) for f in findings]


def test_vendored_code_in_a_zip_is_skipped(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "function.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        # the library comes before its RECORD in the archive: its findings must wait for the RECORD
        zf.writestr("lib1/core.py", "def f(event):\n    return eval(event)\n")
        zf.writestr("app.py", "import os\ndef handler(event, context):\n    os.system(event['cmd'])\n")
        zf.writestr("lib1-1.0.dist-info/RECORD", "lib1/core.py,sha256=x,10\n")
    result = scan(archive)
    paths = {f.location.path for f in result.findings if f.rule_id.startswith("SAS-CODE")}
    assert paths == {"function.zip!app.py"}


# ---------------------------------------------------------------- known bypasses of name-based sink matching


@pytest.mark.parametrize(
    ("bypass", "code"),
    [
        ("import_alias", "import pickle as p\ndef handler(event, context):\n    return p.loads(event['b'])\n"),
        (
            "from_import_rename",
            "from pickle import loads as ld\ndef handler(event, context):\n    return ld(event['b'])\n",
        ),
        ("dunder_import", "def handler(event, context):\n    return __import__('pickle').loads(event['b'])\n"),
        (
            "importlib_import_module",
            "import importlib\n"
            "def handler(event, context):\n    return importlib.import_module('pickle').loads(event['b'])\n",
        ),
        (
            "getattr_constant",
            "import pickle\ndef handler(event, context):\n    return getattr(pickle, 'loads')(event['b'])\n",
        ),
        (
            "module_level_rebind",
            "import pickle\nL = pickle.loads\ndef handler(event, context):\n    return L(event['b'])\n",
        ),
    ],
)
def test_bypass_of_sink_names_is_caught(bypass: str, code: str) -> None:
    assert "SAS-CODE-001" in _rules(code), bypass


def test_bypass_dunder_import_os_system() -> None:
    assert "SAS-CODE-003" in _rules("def handler(event, context):\n    __import__('os').system(event['c'])\n")


def test_source_budget_reports_what_was_not_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sas.scan.code import analyzer

    monkeypatch.setattr(analyzer, "MAX_TOTAL_SOURCE_BYTES", 100)  # a setting, not our code path
    _write(tmp_path, "a.py", "x = 1\n")
    _write(tmp_path, "b.py", "y = 2\n" * 40)
    result = scan(tmp_path)
    budget = [f for f in result.findings if f.rule_id == "SAS-SCAN-002"]
    assert len(budget) == 1 and "b.py" in budget[0].message


@pytest.mark.parametrize("zipped", [False, True])
@pytest.mark.parametrize("template", ["sam", "serverless"])
@pytest.mark.parametrize("record_first", [True, False])
def test_a_fake_record_claiming_the_named_handler_does_not_hide_it(
    tmp_path: Path, template: str, record_first: bool, zipped: bool
) -> None:
    """Found by the inputs fuzzing helper: a *.dist-info/RECORD listing the handler made it vendored code, so its
    command injection passed clean. A file a deployment names as a handler is always the function's own code."""
    dangerous = "import os\ndef handler(event, context):\n    os.system(event['cmd'])\n"
    fake = "src/app.py,sha256=x,10\nfake-1.0.dist-info/RECORD,,\n"
    if record_first:  # the walk meets the RECORD before the handler, in name order
        _write(tmp_path, "aaa-1.0.dist-info/RECORD", fake)
    _write(tmp_path, "src/app.py", dangerous)
    if not record_first:
        _write(tmp_path, "zzz-1.0.dist-info/RECORD", fake)
    if template == "sam":
        _write(
            tmp_path,
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
            "    Properties:\n      Handler: src/app.handler\n      Runtime: python3.12\n      CodeUri: .\n",
        )
    else:
        _write(
            tmp_path,
            "serverless.yml",
            "service: s\nprovider:\n  name: aws\n  runtime: python3.12\n"
            "functions:\n  fn:\n    handler: src/app.handler\n",
        )
    target = tmp_path
    if zipped:  # a deployment zip, members in name order: the RECORD comes first or last, as written above
        import zipfile

        target = tmp_path.parent / f"{tmp_path.name}.zip"
        with zipfile.ZipFile(target, "w") as zf:
            for file in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
                zf.write(file, file.relative_to(tmp_path).as_posix())
    result = scan(target)
    handler = f"{target.name}!src/app.py" if zipped else "src/app.py"
    assert ("SAS-CODE-003", handler) in {(f.rule_id, f.location.path) for f in result.findings}

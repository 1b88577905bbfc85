"""CycloneDX 1.6 SBOM: valid against the schema shipped in cyclonedx-python-lib, ML models typed as such."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest

from sas.cli import main
from sas.scan.findings import Component, Finding, Location, ScanResult, ScanStats, make_finding
from sas.scan.report import render
from sas.scan.rules import INCOMPLETE_FILE


def _validate(text: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)


def _result(components: tuple[Component, ...], findings: tuple[Finding, ...] = ()) -> ScanResult:
    return ScanResult("function.zip", findings, (), ScanStats(3, 1000, 0.1), (), components)


MODEL_SHA = hashlib.sha256(b"model").hexdigest()
NUMPY_SHA = hashlib.sha256(b"numpy").hexdigest()


def test_packages_and_models_as_components() -> None:
    components = (
        Component("python-package", "NumPy", "numpy-2.1.0.dist-info", version="2.1.0", sha256=NUMPY_SHA),
        Component("python-package", "scikit_learn", "scikit_learn-1.5.dist-info", version="1.5.0"),
        Component("python-package", "boto3", "boto3", version="1.35.0", purl="pkg:pypi/boto3@1.35.0"),
        Component("model", "model.pkl", "models/model.pkl", format="pickle", sha256=MODEL_SHA, size=5),
        Component("model", "model.pkl", "models/model.pkl", format="pickle", sha256=MODEL_SHA, size=5),  # twice
        Component("layer", "deps.zip", "deps.zip", sha256="not-a-hash"),
    )
    finding = make_finding(INCOMPLETE_FILE, Location("x.py", 1), "m")
    text = render(_result(components, (finding,)), "cyclonedx")
    _validate(text)
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6" and doc["bomFormat"] == "CycloneDX"
    assert doc["metadata"]["component"]["name"] == "function.zip"
    assert doc["metadata"]["tools"]["components"][0]["name"] == "sas"
    by_name = {c["name"]: c for c in doc["components"]}
    assert len(doc["components"]) == 5
    assert by_name["NumPy"]["purl"] == "pkg:pypi/numpy@2.1.0"
    assert by_name["NumPy"]["hashes"] == [{"alg": "SHA-256", "content": NUMPY_SHA}]
    assert by_name["scikit_learn"]["purl"] == "pkg:pypi/scikit-learn@1.5.0"
    assert by_name["boto3"]["purl"] == "pkg:pypi/boto3@1.35.0"
    model = by_name["model.pkl"]
    assert model["type"] == "machine-learning-model"
    assert model["hashes"] == [{"alg": "SHA-256", "content": MODEL_SHA}]
    assert {"name": "sas:format", "value": "pickle"} in model["properties"]
    assert "hashes" not in by_name["deps.zip"]  # a malformed digest is left out, not emitted invalid
    assert "vulnerabilities" not in doc
    props = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}
    assert props["sas:findings"] == "1" and props["sas:worst-severity"] == "medium"
    root_deps = next(d for d in doc["dependencies"] if d["ref"] == "sas:target")
    assert len(root_deps["dependsOn"]) == 5


def test_decompressed_stream_is_named_after_its_file() -> None:
    component = Component("model", "[zlib]", "model/model.joblib![zlib]", format="joblib", sha256=MODEL_SHA)
    doc = json.loads(render(_result((component,)), "cyclonedx"))
    assert doc["components"][0]["name"] == "model.joblib"


def test_empty_inventory_is_still_valid() -> None:
    text = render(_result(()), "cyclonedx")
    _validate(text)
    assert json.loads(text).get("components", []) == []


def test_cli_scan_writes_valid_cyclonedx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = tmp_path / "fn"
    pkg.mkdir()
    (pkg / "handler.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
    (pkg / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    out = tmp_path / "sbom.json"
    code = main(["scan", str(pkg), "--format", "cyclonedx", "--output", str(out), "--no-progress"])
    assert code in (0, 1)
    text = out.read_text()
    _validate(text)
    doc = json.loads(text)
    assert doc["metadata"]["component"]["name"] == "fn"
    for component in doc.get("components", []):  # whatever the analyzers inventoried is well formed
        if component["type"] == "machine-learning-model":
            assert component["hashes"][0]["alg"] == "SHA-256"

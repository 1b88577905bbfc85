"""Keras analyzer: real models saved by Keras 3 (torch backend), and hand-made configs with hostile references."""

from __future__ import annotations

import base64
import io
import json
import marshal
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sas.scan.artifact import file_from_bytes, file_from_path
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.models.keras_scan import KerasAnalyzer, analyze_config, bytecode_names
from sas.taxonomy import Severity


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real models, built once: the Keras import dominates this file's run time."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    out = tmp_path_factory.mktemp("keras")
    seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    seq.compile(optimizer="adam", loss="mse", metrics=["mae"])
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation=keras.activations.gelu)(inputs)
    merged = keras.layers.Concatenate()([hidden, keras.layers.Dropout(0.1)(inputs)])
    functional = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(merged))
    with_lambda = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Lambda(lambda x: x * 2)])
    paths = {
        "sequential": out / "seq.keras",
        "functional": out / "functional.keras",
        "lambda": out / "lambda.keras",
        "legacy": out / "legacy.h5",
        "legacy_lambda": out / "legacy_lambda.h5",
        "weights": out / "only.weights.h5",
    }
    seq.save(paths["sequential"])
    functional.save(paths["functional"])
    with_lambda.save(paths["lambda"])
    seq.save(paths["legacy"])
    with_lambda.save(paths["legacy_lambda"])
    seq.save_weights(paths["weights"])
    return paths


def findings(path: Path) -> list[tuple[str, Severity, str]]:
    return [(f.rule_id, f.severity, f.message) for f in scan(path).findings]


def at_least_high(path: Path) -> list[tuple[str, Severity, str]]:
    return [f for f in findings(path) if f[1] >= Severity.HIGH]


def keras_zip(config: Any, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        archive.writestr("config.json", config if isinstance(config, str) else json.dumps(config))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buf.getvalue()


def layer(class_name: str, config: dict[str, Any], module: str | None = "keras.layers") -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def sequential(*layers: dict[str, Any]) -> dict[str, Any]:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": list(layers)}}


def fn_ref(module: str, name: str) -> dict[str, Any]:
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


def lambda_code(source: str) -> str:
    return base64.b64encode(marshal.dumps(compile(source, "<lambda>", "eval"))).decode()


def test_real_sequential_and_functional_models_are_clean(saved: dict[str, Path]) -> None:
    for key in ("sequential", "functional"):
        result = scan(saved[key])
        assert [f for f in result.findings if f.severity >= Severity.MEDIUM] == [], key
        assert [c.format for c in result.components] == ["keras"]


def test_real_lambda_layer_is_high(saved: dict[str, Path]) -> None:
    found = at_least_high(saved["lambda"])
    assert [r for r, _, _ in found] == ["SAS-KERAS-001"]


def test_legacy_h5_models(saved: dict[str, Path]) -> None:
    assert [f for f in findings(saved["legacy"]) if f[1] >= Severity.MEDIUM] == []
    assert [r for r, _, _ in at_least_high(saved["legacy_lambda"])] == ["SAS-KERAS-001"]
    result = scan(saved["weights"])  # weights only: no architecture to rebuild, not a model component
    assert result.findings == () and result.components == ()


def test_keras_zip_is_consumed_and_recognised_by_content(saved: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(saved["sequential"].read_bytes())
    analyzer = KerasAnalyzer()
    file = file_from_path(renamed, "model.bin")
    ctx = ScanContext()
    assert analyzer.claims(file) and analyzer.analyze(file, ctx) is True
    assert ctx.components[0].format == "keras"


def test_lambda_bytecode_calling_os_system_is_critical(tmp_path: Path) -> None:
    code = lambda_code("__import__('os').system('id')")
    config = sequential(
        layer("Lambda", {"name": "evil", "function": {"class_name": "__lambda__", "config": {"code": code}}})
    )
    path = tmp_path / "evil.keras"
    path.write_bytes(keras_zip(config))
    found = at_least_high(path)
    assert any(r == "SAS-KERAS-001" and s is Severity.CRITICAL and "system" in m for r, s, m in found)


def test_bytecode_names_reads_marshal_strings_without_loading() -> None:
    names = bytecode_names(lambda_code("__import__('subprocess').check_output(['id'])"))
    assert {"__import__", "subprocess", "check_output"} <= names


@pytest.mark.parametrize(
    ("node", "rule", "severity"),
    [
        (layer("system", {"command": "id"}, module="os"), "SAS-KERAS-002", Severity.CRITICAL),
        (layer("Dense", {"activation": fn_ref("builtins", "eval")}), "SAS-KERAS-002", Severity.CRITICAL),
        (layer("Dense", {"activation": fn_ref("subprocess", "check_output")}), "SAS-KERAS-002", Severity.CRITICAL),
        (layer("Dense", {"activation": fn_ref("keras.utils", "get_file")}), "SAS-KERAS-003", Severity.HIGH),
        (
            layer("Dense", {"x": fn_ref("keras.config", "enable_unsafe_deserialization")}),
            "SAS-KERAS-003",
            Severity.HIGH,
        ),
        (layer("TFSMLayer", {"filepath": "/tmp/other_model"}), "SAS-KERAS-003", Severity.HIGH),
        (layer("TFOpLambda", {"function": "io.write_file"}), "SAS-KERAS-003", Severity.HIGH),
        (layer("MyLayer", {"units": 3}, module="my_company.layers"), "SAS-KERAS-004", Severity.MEDIUM),
    ],
    ids=["os.system", "builtins.eval", "subprocess", "get_file", "unsafe-deser", "tfsmlayer", "tfop-io", "user-module"],
)
def test_module_references(tmp_path: Path, node: dict[str, Any], rule: str, severity: Severity) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes(keras_zip(sequential(layer("Dense", {"units": 1}), node)))
    found = findings(path)
    assert (rule, severity) in [(r, s) for r, s, _ in found], found


def test_keras_own_builtin_function_references_are_fine() -> None:
    config = sequential(
        layer("Dense", {"activation": fn_ref("builtins", "relu")}), layer("Dense", {"activation": "tanh"})
    )
    assert analyze_config(config) == []


def test_legacy_h5_keras2_lambda_and_module_via_h5py(tmp_path: Path) -> None:
    code = lambda_code("__import__('os').popen('id')")
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "l",
                        "function": [code, None, None],
                        "function_type": "lambda",
                        "module": "__main__",
                    },
                },
            ]
        },
    }
    path = tmp_path / "keras2.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config).encode()
        h5.attrs["training_config"] = json.dumps({"loss": fn_ref("os", "system")})
        h5.create_dataset("w", data=np.zeros(3))
    found = findings(path)
    assert ("SAS-KERAS-001", Severity.CRITICAL) in [(r, s) for r, s, _ in found]
    assert ("SAS-KERAS-002", Severity.CRITICAL) in [(r, s) for r, s, _ in found]


def test_extra_members_leave_the_archive_to_the_walker(tmp_path: Path) -> None:
    data = keras_zip(sequential(layer("Dense", {"units": 1})), {"model.weights.npz": b"PK"})
    ctx = ScanContext()
    assert KerasAnalyzer().analyze(file_from_bytes(data, "m.keras"), ctx) is False
    assert ctx.findings == []


def test_invalid_config_json_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes(keras_zip('{"class_name": "Sequential", '))
    assert [r for r, _, _ in findings(path)] == ["SAS-KERAS-005"]


def test_zip_without_config_named_keras_is_a_finding(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("metadata.json", "{}")
    path = tmp_path / "m.keras"
    path.write_bytes(buf.getvalue())
    assert "SAS-KERAS-005" in {r for r, _, _ in findings(path)}


def test_named_keras_or_h5_but_not(tmp_path: Path) -> None:
    for name in ("model.keras", "model.h5"):
        path = tmp_path / name
        path.write_bytes(b"just some text, not a model\n")
        assert [r for r, _, _ in findings(path)] == ["SAS-SCAN-003"]


def test_truncated_files_are_findings(saved: dict[str, Path], tmp_path: Path) -> None:
    for key, suffix in (("lambda", ".keras"), ("legacy_lambda", ".h5")):
        data = saved[key].read_bytes()
        path = tmp_path / f"cut{suffix}"
        path.write_bytes(data[: len(data) // 2])
        found = findings(path)
        assert found and all(r.startswith("SAS-") for r, _, _ in found), key


def test_h5py_missing_is_not_silently_passed(saved: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # the environment without the optional dependency
    assert [r for r, _, _ in findings(saved["legacy"])] == ["SAS-SCAN-001"]


def test_allow_modules_silences_own_modules_but_never_dangerous_ones(tmp_path: Path) -> None:
    from sas.scan.settings import ScanSettings

    config = sequential(
        layer("MyLayer", {"units": 3}, module="my_company.layers"),
        layer("Dense", {"activation": fn_ref("os", "system")}),
    )
    path = tmp_path / "m.keras"
    path.write_bytes(keras_zip(config))
    settings = ScanSettings.from_config({"scan": {"keras": {"allow_modules": ["my_company", "os"]}}})
    found = [(f.rule_id, f.severity) for f in scan(path, settings).findings]
    assert found == [("SAS-KERAS-002", Severity.CRITICAL)]


def test_keras_model_inside_a_function_zip(saved: dict[str, Path], tmp_path: Path) -> None:
    package = tmp_path / "function.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
        archive.write(saved["lambda"], "model/lambda.keras")
        archive.write(saved["sequential"], "model/seq.keras")
    result = scan(package)
    assert [(f.rule_id, f.location.path) for f in result.findings if f.severity >= Severity.HIGH] == [
        ("SAS-KERAS-001", "function.zip!model/lambda.keras")
    ]
    assert sorted(c.path for c in result.components if c.kind == "model") == [
        "function.zip!model/lambda.keras",
        "function.zip!model/seq.keras",
    ]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_keras_archives_never_raise(data: st.DataObject) -> None:
    config = sequential(layer("Dense", {"units": 1, "activation": fn_ref("builtins", "relu")}))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        archive.writestr("config.json", json.dumps(config) * 3)
    base = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 6))):
        base[data.draw(st.integers(4, len(base) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(30, len(base)))
    ctx = ScanContext()
    KerasAnalyzer().analyze(file_from_bytes(bytes(base[:cut]), "m.keras"), ctx)
    assert all(f.rule_id.startswith("SAS-") for f in ctx.findings)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_mutated_hdf5_never_raises(data: st.DataObject) -> None:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.attrs["model_config"] = json.dumps(sequential(layer("Dense", {"units": 1})))
    base = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 4))):
        base[data.draw(st.integers(8, len(base) - 1))] = data.draw(st.integers(0, 255))
    ctx = ScanContext()
    KerasAnalyzer().analyze(file_from_bytes(bytes(base), "m.h5"), ctx)
    assert all(f.rule_id.startswith("SAS-") for f in ctx.findings)

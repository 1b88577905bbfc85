"""ONNX analyzer: models built with onnx.helper; external data, custom domains, subgraphs, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from sas.scan.artifact import file_from_bytes
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.models.onnx_scan import ONNXAnalyzer, escapes_folder, looks_like_onnx
from sas.taxonomy import Severity

X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])
Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])


def weight(name: str = "W") -> TensorProto:
    return numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), name)


def external(tensor: TensorProto, location: str) -> TensorProto:
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def model(
    nodes: list[onnx.NodeProto],
    inits: list[TensorProto],
    opsets: list[tuple[str, int]] | None = None,
    functions: list[onnx.FunctionProto] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [X], [Y], inits)
    imports = [helper.make_opsetid(d, v) for d, v in (opsets or [("", 17)])]
    return helper.make_model(graph, opset_imports=imports, functions=functions or [], producer_name="pytorch")


def findings(
    tmp_path: Path, proto: onnx.ModelProto | bytes, name: str = "model.onnx"
) -> list[tuple[str, Severity, str]]:
    path = tmp_path / name
    path.write_bytes(proto if isinstance(proto, bytes) else proto.SerializeToString())
    return [(f.rule_id, f.severity, f.message) for f in scan(path).findings]


def test_benign_model_is_clean_and_inventoried(tmp_path: Path) -> None:
    proto = model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [weight()])
    onnx.checker.check_model(proto)
    path = tmp_path / "model.onnx"
    onnx.save(proto, str(path))
    result = scan(path)
    assert result.findings == ()
    (component,) = result.components
    assert component.format == "onnx" and len(component.sha256) == 64


def test_benign_external_data_saved_by_onnx_is_clean(tmp_path: Path) -> None:
    proto = model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [weight()])
    folder = tmp_path / "pkg"
    folder.mkdir()
    onnx.save_model(
        proto,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    result = scan(folder)
    assert [f for f in result.findings if f.severity >= Severity.MEDIUM] == []


@pytest.mark.parametrize(
    "location",
    [
        "../../../../etc/passwd",
        "/proc/self/environ",
        "C:\\Windows\\win.ini",
        "data/../../secret",
        "~/.aws/credentials",
        "file:///etc/shadow",
    ],
)
def test_external_data_leaving_the_folder_is_high(tmp_path: Path, location: str) -> None:
    proto = model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [external(weight(), location)])
    found = findings(tmp_path, proto)
    assert any(r == "SAS-ONNX-001" and s is Severity.HIGH for r, s, _ in found), found


def test_external_data_in_if_subgraph_is_found(tmp_path: Path) -> None:
    inner_out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])
    leak = external(weight("leak"), "../../home/user/.ssh/id_rsa")
    then_branch = helper.make_graph([helper.make_node("Identity", ["leak"], ["Y"])], "then", [], [inner_out], [leak])
    else_branch = helper.make_graph([helper.make_node("Identity", ["W"], ["Y"])], "else", [], [inner_out])
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["Y"], then_branch=then_branch, else_branch=else_branch)
    found = findings(tmp_path, model([node], [weight(), cond]))
    assert any(r == "SAS-ONNX-001" and "id_rsa" in m for r, _, m in found)


def test_plain_relative_location_is_fine() -> None:
    assert escapes_folder("weights/part-0.bin") == ""
    assert escapes_folder("a/../b.bin") == ""
    assert escapes_folder("../b.bin") != ""


def test_custom_domain_is_medium(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["T"]),
        helper.make_node("Backdoor", ["T"], ["Y"], domain="com.evil"),
    ]
    found = findings(tmp_path, model(nodes, [weight()], [("", 17), ("com.evil", 1)]))
    assert [(r, s) for r, s, m in found if "com.evil" in m] == [("SAS-ONNX-002", Severity.MEDIUM)]


def test_known_vendor_domain_and_local_function_are_fine(tmp_path: Path) -> None:
    fn = helper.make_function(
        "pkg.local", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])], [helper.make_opsetid("", 17)]
    )
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["T"]),
        helper.make_node("Gelu", ["T"], ["U"], domain="com.microsoft"),
        helper.make_node("Twice", ["U"], ["Y"], domain="pkg.local"),
    ]
    found = findings(tmp_path, model(nodes, [weight()], [("", 17), ("com.microsoft", 1), ("pkg.local", 1)], [fn]))
    assert found == []


def test_truncated_model_is_a_finding(tmp_path: Path) -> None:
    data = model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [weight()]).SerializeToString()
    for cut in (len(data) // 3, len(data) - 5):
        found = findings(tmp_path, data[:cut])
        assert [r for r, _, _ in found] == ["SAS-ONNX-003"]


def test_named_onnx_but_is_not(tmp_path: Path) -> None:
    assert [r for r, _, _ in findings(tmp_path, b"GIF89a not a model")] == ["SAS-SCAN-003"]
    assert [r for r, _, _ in findings(tmp_path, b"")] == ["SAS-SCAN-003"]


def test_recognised_by_content_and_analyzer_unit() -> None:
    data = model(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], [external(weight(), "/etc/passwd")]
    ).SerializeToString()
    assert looks_like_onnx(data[:512])
    analyzer = ONNXAnalyzer()
    file = file_from_bytes(data, "blob")
    ctx = ScanContext()
    assert analyzer.claims(file) and analyzer.analyze(file, ctx)
    assert [f.rule_id for f in ctx.findings] == ["SAS-ONNX-001"]


def test_allow_domains_from_configuration(tmp_path: Path) -> None:
    from sas.scan.settings import ScanSettings

    nodes = [helper.make_node("MatMul", ["X", "W"], ["T"]), helper.make_node("Op", ["T"], ["Y"], domain="com.acme")]
    path = tmp_path / "m.onnx"
    path.write_bytes(model(nodes, [weight()], [("", 17), ("com.acme", 1)]).SerializeToString())
    settings = ScanSettings.from_config({"scan": {"onnx": {"allow_domains": ["com.acme"]}}})
    assert scan(path, settings).findings == ()
    assert [f.rule_id for f in scan(path).findings] == ["SAS-ONNX-002"]


def test_models_inside_a_function_zip(tmp_path: Path) -> None:
    import zipfile

    bad = model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [external(weight(), "../../../../etc/passwd")])
    package = tmp_path / "function.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model/bad.onnx", bad.SerializeToString())
        archive.writestr(
            "model/ok.onnx", model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [weight()]).SerializeToString()
        )
    result = scan(package)
    assert [(f.rule_id, f.location.path) for f in result.findings] == [("SAS-ONNX-001", "function.zip!model/bad.onnx")]
    assert len([c for c in result.components if c.format == "onnx"]) == 2


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_models_never_raise(data: st.DataObject) -> None:
    proto = model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [external(weight(), "w.bin")])
    base = bytearray(proto.SerializeToString())
    for _ in range(data.draw(st.integers(1, 6))):
        base[data.draw(st.integers(3, len(base) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(base)))
    ctx = ScanContext()
    ONNXAnalyzer().analyze(file_from_bytes(bytes(base[:cut]), "m.onnx"), ctx)
    assert all(f.rule_id.startswith("SAS-") for f in ctx.findings)

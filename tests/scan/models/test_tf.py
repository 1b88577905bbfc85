"""TensorFlow SavedModel / GraphDef analyzer: protobufs are encoded by hand (TensorFlow is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sas.scan.artifact import file_from_bytes
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.models.tf_scan import TensorFlowAnalyzer, looks_like_graphdef, looks_like_saved_model
from sas.taxonomy import Severity


# --- a minimal protobuf encoder (wire format, field numbers from tensorflow/core/framework/*.proto) ---
def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def attr_s(key: str, value: str) -> bytes:  # NodeDef.attr map entry with AttrValue.s
    return ld(5, ld(1, key) + ld(2, ld(2, value)))


def attr_list_s(key: str, values: list[str]) -> bytes:  # AttrValue.list.s
    return ld(5, ld(1, key) + ld(2, ld(1, b"".join(ld(2, v) for v in values))))


def attr_tensor_strings(key: str, values: list[str]) -> bytes:  # AttrValue.tensor (DT_STRING = 7).string_val
    tensor = vi(1, 7) + b"".join(ld(8, v) for v in values)
    return ld(5, ld(1, key) + ld(2, ld(8, tensor)))


def node(name: str, op: str, inputs: tuple[str, ...] = (), attrs: bytes = b"") -> bytes:
    return ld(1, name) + ld(2, op) + b"".join(ld(3, i) for i in inputs) + attrs


def const_string(name: str, value: str) -> bytes:
    return node(name, "Const", attrs=attr_tensor_strings("value", [value]) + attr_s("dtype", ""))


def graph_def(nodes: list[bytes], functions: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    body = b"".join(ld(1, n) for n in nodes)
    if functions:
        body += ld(2, b"".join(ld(1, f) for f in functions))
    return body + ld(4, vi(1, 1808))


def function_def(name: str, nodes: list[bytes]) -> bytes:
    return ld(1, ld(1, name)) + b"".join(ld(3, n) for n in nodes)


def saved_model(graph: bytes, op_list: tuple[str, ...] = ()) -> bytes:
    meta_info = ld(4, "serve") + ld(5, "2.16.1")
    if op_list:
        meta_info = ld(2, b"".join(ld(1, ld(1, op)) for op in op_list)) + meta_info
    meta = ld(1, meta_info) + ld(2, graph)
    return vi(1, 1) + ld(2, meta)


BENIGN_NODES = [
    node("x", "Placeholder"),
    node("w", "VarHandleOp"),
    node("read", "ReadVariableOp", ("w",)),
    node("y", "MatMul", ("x", "read")),
    node("out", "Identity", ("y",)),
    const_string("save/Const", "model"),  # tf.train.Saver's default filename tensor, fed at restore time
    node("save/SaveV2", "SaveV2", ("save/Const", "save/names", "save/slices")),
    node("save/RestoreV2", "RestoreV2", ("save/Const", "save/names", "save/slices")),
    node("pv", "PrintV2", ("y",), attr_s("output_stream", "stderr")),
]
SAVER_FUNCTION = function_def(
    "__inference__traced_save_42",
    [node("SaveV2", "SaveV2", ("file_prefix", "names:output:0", "slices:output:0"))],
)


def run(tmp_path: Path, name: str, data: bytes) -> list[tuple[str, Severity, str]]:
    path = tmp_path / name
    path.write_bytes(data)
    result = scan(path)
    return [(f.rule_id, f.severity, f.message) for f in result.findings]


def high(findings: list[tuple[str, Severity, str]]) -> list[tuple[str, Severity, str]]:
    return [f for f in findings if f[1] >= Severity.HIGH]


def test_benign_saved_model_with_saver_and_stderr_print_is_clean(tmp_path: Path) -> None:
    data = saved_model(graph_def(BENIGN_NODES, [SAVER_FUNCTION]))
    assert looks_like_saved_model(data[:512])
    path = tmp_path / "saved_model.pb"
    path.write_bytes(data)
    result = scan(path)
    assert [f for f in result.findings if f.severity >= Severity.MEDIUM] == []
    (component,) = [c for c in result.components if c.format == "tensorflow"]
    assert component.kind == "model" and len(component.sha256) == 64 and component.size == len(data)


def test_pyfunc_in_graph_is_critical(tmp_path: Path) -> None:
    data = saved_model(graph_def([*BENIGN_NODES, node("pf", "PyFunc", ("x",), attr_s("token", "pyfunc_0"))]))
    found = run(tmp_path, "saved_model.pb", data)
    assert any(r == "SAS-TF-001" and s is Severity.CRITICAL and "pyfunc_0" in m for r, s, m in found)


def test_eager_pyfunc_hidden_in_function_library_is_critical(tmp_path: Path) -> None:
    fn = function_def("__inference_serve_7", [node("EagerPyFunc", "EagerPyFunc", ("x",))])
    found = run(tmp_path, "model.pb.bin", saved_model(graph_def(BENIGN_NODES, [SAVER_FUNCTION, fn])))
    assert any(r == "SAS-TF-001" and "__inference_serve_7" in m for r, _, m in found)


def test_pyfunc_only_in_stripped_op_list_is_critical(tmp_path: Path) -> None:
    found = run(tmp_path, "saved_model.pb", saved_model(graph_def(BENIGN_NODES), op_list=("MatMul", "PyFunc")))
    assert any(r == "SAS-TF-001" for r, _, _ in found)


def test_readfile_of_constant_path_is_high(tmp_path: Path) -> None:
    nodes = [*BENIGN_NODES, const_string("path", "/etc/passwd"), node("rf", "ReadFile", ("path:0",))]
    found = high(run(tmp_path, "saved_model.pb", saved_model(graph_def(nodes))))
    assert any(r == "SAS-TF-002" and "/etc/passwd" in m for r, _, m in found)


def test_readfile_of_runtime_path_is_medium(tmp_path: Path) -> None:
    nodes = [*BENIGN_NODES, node("rf", "ReadFile", ("x",))]
    found = run(tmp_path, "saved_model.pb", saved_model(graph_def(nodes)))
    assert ("SAS-TF-002", Severity.MEDIUM) in [(r, s) for r, s, _ in found]
    assert high(found) == []


@pytest.mark.parametrize(
    ("op", "attrs"),
    [
        ("WriteFile", b""),
        ("MatchingFiles", b""),
        ("DebugIdentityV3", attr_list_s("debug_urls", ["grpc://attacker:6064"])),
        ("RpcCall", b""),
        ("DataServiceDatasetV4", b""),
        ("ImmutableConst", attr_s("memory_region_name", "/etc/shadow")),
    ],
)
def test_file_and_network_ops_are_high(tmp_path: Path, op: str, attrs: bytes) -> None:
    nodes = [*BENIGN_NODES, node("evil", op, ("x",), attrs)]
    found = high(run(tmp_path, "saved_model.pb", saved_model(graph_def(nodes))))
    assert [r for r, _, m in found if op in m] == ["SAS-TF-002"]


def test_printv2_to_file_is_high(tmp_path: Path) -> None:
    nodes = [*BENIGN_NODES, node("p", "PrintV2", ("y",), attr_s("output_stream", "file:///tmp/leak"))]
    found = high(run(tmp_path, "saved_model.pb", saved_model(graph_def(nodes))))
    assert any("file:///tmp/leak" in m for _, _, m in found)


def test_save_to_constant_path_outside_is_high(tmp_path: Path) -> None:
    nodes = [*BENIGN_NODES, const_string("evil_path", "../../etc/cron.d/x"), node("s", "Save", ("evil_path",))]
    found = high(run(tmp_path, "saved_model.pb", saved_model(graph_def(nodes))))
    assert any("cron.d" in m for _, _, m in found)


def test_frozen_graphdef_is_recognised_by_content(tmp_path: Path) -> None:
    data = graph_def([node("input", "Placeholder"), node("pf", "PyFuncStateless", ("input",))])
    assert looks_like_graphdef(data[:512]) and not looks_like_saved_model(data[:512])
    found = run(tmp_path, "frozen_graph_no_extension", data)
    assert any(r == "SAS-TF-001" for r, _, _ in found)


def test_truncated_saved_model_is_a_finding(tmp_path: Path) -> None:
    data = saved_model(graph_def([*BENIGN_NODES, node("pf", "PyFunc", ("x",))]))
    found = run(tmp_path, "saved_model.pb", data[: len(data) // 2])
    assert any(r == "SAS-TF-003" for r, _, _ in found)


def test_saved_model_pb_that_is_not_protobuf_is_a_finding(tmp_path: Path) -> None:
    found = run(tmp_path, "saved_model.pb", b"this is not a protobuf at all\n")
    assert [r for r, _, _ in found] == ["SAS-SCAN-003"]


def test_other_pb_files_are_not_claimed() -> None:
    fingerprint = vi(1, 123456789) + vi(2, 987654321)  # fingerprint.pb: varints only
    analyzer = TensorFlowAnalyzer()
    assert not analyzer.claims(file_from_bytes(fingerprint, "m/fingerprint.pb"))


def test_hostile_lengths_do_not_crash() -> None:
    data = vi(1, 1) + varint(2 << 3 | 2) + varint(1 << 40) + b"\x0a"
    ctx = ScanContext()
    TensorFlowAnalyzer().analyze(file_from_bytes(data, "saved_model.pb"), ctx)
    assert [f.rule_id for f in ctx.findings] == ["SAS-TF-003"]


LAMBDA_METADATA = (
    '{"class_name": "Lambda", "name": "lambda", "config": {"name": "lambda", "function": '
    '["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMMAAAAdABkAYMBoAGhAFMAKQJO2gJvc9oGc3lzdGVt", null, null], '
    '"function_type": "lambda", "module": "__main__"}}'
)


def keras_metadata(layers: list[str]) -> bytes:  # SavedMetadata{nodes: SavedObject{node_id, path, id, metadata}}
    return b"".join(
        ld(1, vi(2, i + 1) + ld(3, f"root.layer-{i}") + ld(4, "_tf_keras_layer") + ld(5, meta))
        for i, meta in enumerate(layers)
    )


def test_keras_metadata_pb_lambda_is_found(tmp_path: Path) -> None:
    dense = '{"class_name": "Dense", "name": "dense", "config": {"units": 2, "activation": "relu"}}'
    folder = tmp_path / "savedmodel"
    folder.mkdir()
    (folder / "keras_metadata.pb").write_bytes(keras_metadata([dense, LAMBDA_METADATA]))
    (folder / "saved_model.pb").write_bytes(saved_model(graph_def(BENIGN_NODES)))
    found = [(f.rule_id, f.location.path) for f in scan(folder).findings if f.severity >= Severity.HIGH]
    assert found == [("SAS-KERAS-001", "keras_metadata.pb")]


def test_keras_metadata_only_benign_layers_is_clean(tmp_path: Path) -> None:
    dense = '{"class_name": "Dense", "name": "dense", "config": {"units": 2, "activation": "relu"}}'
    assert run(tmp_path, "keras_metadata.pb", keras_metadata([dense])) == []


def test_lambda_in_saved_model_object_graph_is_found(tmp_path: Path) -> None:
    # MetaGraphDef.object_graph_def (7) -> nodes -> user object -> metadata JSON; the schema is not needed
    object_graph = ld(1, ld(4, ld(1, "_tf_keras_layer") + ld(3, LAMBDA_METADATA)))
    meta = ld(1, ld(4, "serve")) + ld(2, graph_def(BENIGN_NODES)) + ld(7, object_graph)
    found = high(run(tmp_path, "saved_model.pb", vi(1, 1) + ld(2, meta)))
    assert [r for r, _, _ in found] == ["SAS-KERAS-001"]


def test_asset_path_constants_from_the_export_machine_are_not_flagged(tmp_path: Path) -> None:
    # TF1 text models: the vocabulary Const keeps the exporter's absolute path; the loader re-feeds it
    nodes = [
        *BENIGN_NODES,
        const_string("asset_path", "/home/builder/export/assets/vocab.txt"),
        node("table", "HashTableV2"),
        node("init", "InitializeTableFromTextFileV2", ("table", "asset_path")),
    ]
    asset = ld(6, ld(1, ld(1, "asset_path:0")) + ld(2, "vocab.txt"))
    meta = ld(1, ld(4, "serve")) + ld(2, graph_def(nodes)) + asset
    assert run(tmp_path, "saved_model.pb", vi(1, 1) + ld(2, meta)) == []
    unbound = ld(1, ld(4, "serve")) + ld(2, graph_def(nodes))  # the same constant, not an asset: flagged
    assert [r for r, _, _ in high(run(tmp_path, "saved_model.pb", vi(1, 1) + ld(2, unbound)))] == ["SAS-TF-002"]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_saved_models_never_raise(data: st.DataObject) -> None:
    base = bytearray(saved_model(graph_def([*BENIGN_NODES, node("pf", "PyFunc", ("x",))], [SAVER_FUNCTION])))
    for _ in range(data.draw(st.integers(1, 6))):
        base[data.draw(st.integers(3, len(base) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(base)))
    ctx = ScanContext()
    TensorFlowAnalyzer().analyze(file_from_bytes(bytes(base[:cut]), "saved_model.pb"), ctx)
    assert all(f.rule_id.startswith("SAS-") for f in ctx.findings)

"""TensorFlow SavedModel (``saved_model.pb``) and frozen GraphDef (``.pb``): ops that run Python, touch files
or talk to the network.

TensorFlow is not needed: the protobuf is walked with :mod:`sas.scan.models.protobuf_wire` (SavedModel ->
meta_graphs -> graph_def -> node, and graph_def.library -> function -> node_def, plus the stripped op list),
so a scan never imports TensorFlow (modelscan exits 2 without it) and never runs a graph.

Which ops, and why (the TensorAbuse study, ZJU-SEC 2024, found file, network and Python primitives among
TensorFlow's own ops; ModelAudit's list is wider but also flags Save/Restore, which every SavedModel uses):

- critical: ``PyFunc``, ``PyFuncStateless``, ``EagerPyFunc`` call a Python function in the loading process.
- high, whatever their inputs: ``WriteFile``; directory listing (``MatchingFiles`` and its dataset forms);
  ``ImmutableConst`` (memory-maps a file named in the graph); debug ops whose ``debug_urls`` send tensors to
  files or gRPC endpoints (``DebugIdentity`` v1-v3, ``DebugNanCount``, ``DebugNumericSummary``); RPC and
  tf.data service ops (``RpcCall``, ``RpcClient``, ``RpcServer*``, ``RegisterDataset*``,
  ``DataServiceDataset*``, ``DistributedSave``); dataset and summary writers (``SaveDataset*``,
  ``CreateSummaryFileWriter``); ``PrintV2`` with a ``file://`` output stream.
- reads of files (``ReadFile``, the record/CSV/text dataset and reader ops): high when the graph holds the
  path as a constant (an inference graph has no reason to read a fixed file such as ``/etc/passwd``),
  medium when the path arrives at run time (image pipelines do ``tf.io.read_file`` on request data).
- Keras layers saved by tf.keras inside the SavedModel (``keras_metadata.pb``, and the object graph's
  metadata JSON): checked like a ``.keras`` config, so Lambda bytecode and module references are found.
- checkpoint and vocabulary ops (``Save*``, ``Restore*``, ``MergeV2Checkpoints``, ``LoadAndRemapMatrix``,
  ``InitializeTableFromTextFile*``): normal in every SavedModel, reported only when a constant path is
  absolute, climbs out with ``..`` or is a URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.models.keras_scan import allowed_modules, analyze_config
from sas.scan.models.nonpickle_common import mismatch, record_model, stream_size
from sas.scan.models.protobuf_wire import LEN, Field, WireError, WireReader
from sas.scan.rules import Rule, rule
from sas.taxonomy import Severity, Threat

PYTHON_OP = rule(
    "SAS-TF-001",
    "TensorFlow graph calls Python",
    Severity.CRITICAL,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The graph contains PyFunc/EagerPyFunc ops, which call a Python function in the process that loads and "
    "runs the model.",
    "Do not deploy this model; re-export it without tf.py_function / tf.numpy_function.",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-94"),
)
IO_OP = rule(
    "SAS-TF-002",
    "TensorFlow graph touches files or the network",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The graph contains ops that read, write or list files, or send tensors to the network (file I/O, "
    "directory listing, debug URLs, RPC, tf.data service). Run by the serving function, they can leak "
    "secrets from the function's file system or plant files in /tmp for later invocations.",
    "Re-export the model without I/O ops in its serving graph; read inputs in the handler, not in the model.",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-22"),
)
MALFORMED = rule(
    "SAS-TF-003",
    "Malformed TensorFlow graph",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "The SavedModel or GraphDef protobuf could not be read to the end, so ops after the damage are unchecked.",
    "Re-export the model from a trusted source.",
    ("CWE-20",),
)

PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
ALWAYS_HIGH = frozenset(
    {
        "WriteFile",
        "MatchingFiles",
        "MatchingFilesDataset",
        "ExperimentalMatchingFilesDataset",
        "ImmutableConst",
        "DebugIdentity",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "DebugNanCount",
        "DebugNumericSummary",
        "DebugNumericSummaryV2",
        "RpcCall",
        "RpcClient",
        "RpcServer",
        "RpcServerRegister",
        "RpcServerStart",
        "RegisterDataset",
        "RegisterDatasetV2",
        "DataServiceDataset",
        "DataServiceDatasetV2",
        "DataServiceDatasetV3",
        "DataServiceDatasetV4",
        "DistributedSave",
        "SaveDataset",
        "SaveDatasetV2",
        "CreateSummaryFileWriter",
    }
)
FILE_READS = frozenset(
    {
        "ReadFile",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "CSVDataset",
        "CSVDatasetV2",
        "ExperimentalCSVDataset",
        "TextLineDataset",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "LoadDataset",
        "SnapshotDataset",
        "SnapshotDatasetV2",
    }
)
CHECKPOINT_OPS = frozenset(
    {
        "Save",
        "SaveV2",
        "SaveSlices",
        "Restore",
        "RestoreV2",
        "RestoreSlice",
        "MergeV2Checkpoints",
        "LoadAndRemapMatrix",
        "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2",
    }
)
MAX_STRINGS = 8
MAX_KERAS_JSON = 16 * 1024 * 1024
MAX_NESTING = 8
KERAS_METADATA = "keras_metadata.pb"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    strings: dict[str, list[str]] = field(default_factory=dict)  # attr key -> string values (Const: "value")


@dataclass
class _Scope:
    """One graph or one library function: node names resolve only within it."""

    label: str
    nodes: list[_Node] = field(default_factory=list)


class TensorFlowAnalyzer(Analyzer):
    name = "tensorflow"

    def claims(self, file: VirtualFile) -> bool:
        return (
            looks_like_saved_model(file.head)
            or looks_like_graphdef(file.head)
            or file.name in ("saved_model.pb", KERAS_METADATA)
        )

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        saved_model = looks_like_saved_model(file.head)
        if file.name == KERAS_METADATA and not saved_model:
            self._keras_metadata_file(file, ctx)
            return True
        if not saved_model and not looks_like_graphdef(file.head):
            mismatch(ctx, file, "TensorFlow SavedModel", "it does not start with a SavedModel protobuf")
            return False
        scopes: list[_Scope] = []
        op_list: set[str] = set()
        keras_configs: list[Any] = []
        assets: set[str] = set()
        with file.open_seekable() as stream:
            size = stream_size(stream)
            reader = WireReader(stream, size)
            try:
                if saved_model:
                    self._saved_model(reader, size, scopes, op_list, keras_configs, assets)
                else:
                    self._graph(reader, 0, size, "graph", scopes)
            except (WireError, RecursionError) as exc:
                ctx.add(make_finding(MALFORMED, file.path, f"graph is malformed: {exc}", evidence=str(exc)[:120]))
            self._report(file, ctx, scopes, op_list, {a.split(":", 1)[0] for a in assets})
            _report_keras(file, ctx, keras_configs)
            record_model(ctx, file, "tensorflow", stream, size)
        return True

    def _keras_metadata_file(self, file: VirtualFile, ctx: ScanContext) -> None:
        """tf.keras SavedModels keep each layer's config (Lambda bytecode included) in keras_metadata.pb."""
        configs: list[Any] = []
        with file.open_seekable() as stream:
            size = stream_size(stream)
            try:
                find_keras_json(WireReader(stream, size), 0, size, 0, configs)
            except (WireError, RecursionError) as exc:
                ctx.add(make_finding(MALFORMED, file.path, f"keras metadata is malformed: {exc}", evidence=str(exc)))
        _report_keras(file, ctx, configs)

    # SavedModel: 2 meta_graphs. MetaGraphDef: 1 meta_info_def (2 stripped_op_list -> 1 op -> 1 name), 2 graph_def
    # MetaGraphDef 7: object_graph_def, where tf.keras kept per-layer metadata JSON; 6: asset_file_def, whose
    # tensors hold the exporting machine's asset paths (often absolute) and are re-fed by the loader
    def _saved_model(
        self,
        r: WireReader,
        size: int,
        scopes: list[_Scope],
        op_list: set[str],
        keras_configs: list[Any],
        assets: set[str],
    ) -> None:
        for index, meta in enumerate(f for f in r.fields(0, size) if f.number == 2 and f.wire_type == LEN):
            for g in r.fields(meta.offset, r.message_end(meta)):
                if g.wire_type != LEN:
                    continue
                if g.number == 7:
                    find_keras_json(r, g.offset, r.message_end(g), 0, keras_configs)
                elif g.number == 6:  # AssetFileDef: 1 tensor_info (TensorInfo: 1 name), 2 filename
                    for info in _strings_of(r, g, 1):
                        assets.update(_first_string(r, info, 1))
                elif g.number == 2:
                    self._graph(r, g.offset, r.message_end(g), f"meta_graph[{index}]", scopes)
                elif g.number == 1:
                    for h in r.fields(g.offset, r.message_end(g)):
                        if h.number == 2 and h.wire_type == LEN:
                            for op in r.fields(h.offset, r.message_end(h)):
                                if op.number == 1 and op.wire_type == LEN:
                                    op_list.update(_first_string(r, op, 1))

    # GraphDef: 1 node, 2 library (FunctionDefLibrary: 1 function)
    def _graph(self, r: WireReader, start: int, end: int, label: str, scopes: list[_Scope]) -> None:
        scope = _Scope(label)
        scopes.append(scope)
        for f in r.fields(start, end):
            if f.wire_type != LEN:
                continue
            if f.number == 1:
                scope.nodes.append(self._node(r, f))
            elif f.number == 2:
                for fn in r.fields(f.offset, r.message_end(f)):
                    if fn.number == 1 and fn.wire_type == LEN:
                        self._function(r, fn, f"{label} function", scopes)

    # FunctionDef: 1 signature (OpDef: 1 name), 3 node_def
    def _function(self, r: WireReader, f: Field, parent: str, scopes: list[_Scope]) -> None:
        scope = _Scope(parent)
        scopes.append(scope)
        for g in r.fields(f.offset, r.message_end(f)):
            if g.wire_type != LEN:
                continue
            if g.number == 1:
                names = _first_string(r, g, 1)
                if names:
                    scope.label = f"function {names[0]}"
            elif g.number == 3:
                scope.nodes.append(self._node(r, g))

    # NodeDef: 1 name, 2 op, 3 input, 5 attr (map entry: 1 key, 2 AttrValue)
    def _node(self, r: WireReader, f: Field) -> _Node:
        node = _Node("", "")
        for g in r.fields(f.offset, r.message_end(f)):
            if g.wire_type != LEN:
                continue
            if g.number == 1:
                node.name = r.text(g, 512)
            elif g.number == 2:
                node.op = r.text(g, 256)
            elif g.number == 3 and len(node.inputs) < 64:
                node.inputs.append(r.text(g, 512))
            elif g.number == 5:
                key, values = self._attr(r, g)
                if values:
                    node.strings[key] = values
        return node

    # AttrValue: 1 list (ListValue: 2 s), 2 s, 8 tensor (TensorProto: 8 string_val)
    def _attr(self, r: WireReader, f: Field) -> tuple[str, list[str]]:
        key = ""
        values: list[str] = []
        for g in r.fields(f.offset, r.message_end(f)):
            if g.number == 1 and g.wire_type == LEN:
                key = r.text(g, 256)
            elif g.number == 2 and g.wire_type == LEN:
                for h in r.fields(g.offset, r.message_end(g)):
                    if h.wire_type != LEN:
                        continue
                    if h.number == 2:
                        values.append(r.text(h, 1024))
                    elif h.number == 1:
                        values.extend(_strings(r, h, 2))
                    elif h.number == 8:
                        values.extend(_strings(r, h, 8))
        return key, values[:MAX_STRINGS]

    def _report(
        self, file: VirtualFile, ctx: ScanContext, scopes: list[_Scope], op_list: set[str], assets: set[str]
    ) -> None:
        reported: set[tuple[str, str]] = set()

        def add(rule_: Rule, op: str, message: str, evidence: str, severity: Severity | None = None) -> None:
            key = (op, evidence)
            if key in reported:
                return
            reported.add(key)
            ctx.add(make_finding(rule_, file.path, message, evidence=evidence, severity=severity))

        seen_ops: set[str] = set()
        for scope in scopes:
            consts = {
                n.name: n.strings.get("value", []) for n in scope.nodes if n.op == "Const" and n.name not in assets
            }
            for node in scope.nodes:
                seen_ops.add(node.op)
                paths = _const_inputs(node, consts)
                where = f"node {node.name!r} in {scope.label}"
                if node.op in PYTHON_OPS:
                    token = ", ".join(node.strings.get("token", [])) or "?"
                    add(PYTHON_OP, node.op, f"{where} is {node.op} (Python callable {token})", f"{node.op}:{node.name}")
                elif node.op in ALWAYS_HIGH:
                    detail = _detail(node, paths)
                    add(IO_OP, node.op, f"{where} is {node.op}{detail}", f"{node.op}:{node.name}")
                elif node.op == "PrintV2":
                    stream = (node.strings.get("output_stream") or [""])[0]
                    if stream.startswith("file://"):
                        add(IO_OP, node.op, f"{where} prints tensors to {stream}", f"{node.op}:{stream}")
                elif node.op in FILE_READS:
                    if paths:
                        add(
                            IO_OP,
                            node.op,
                            f"{where} is {node.op} of the fixed path(s) {paths}",
                            f"{node.op}:{paths[0]}",
                        )
                    else:
                        add(
                            IO_OP,
                            node.op,
                            f"{where} is {node.op} of a path computed at run time",
                            f"{node.op}:{node.name}",
                            Severity.MEDIUM,
                        )
                elif node.op in CHECKPOINT_OPS:
                    for path in paths:
                        reason = _escapes(path)
                        if reason:
                            add(IO_OP, node.op, f"{where} is {node.op} on {path!r} ({reason})", f"{node.op}:{path}")
        for op in sorted(op_list - seen_ops):  # declared in the stripped op list but not seen in a node
            if op in PYTHON_OPS:
                add(PYTHON_OP, op, f"the graph's op list declares {op}", f"{op}:op_list")
            elif op in ALWAYS_HIGH:
                add(IO_OP, op, f"the graph's op list declares {op}", f"{op}:op_list")


def find_keras_json(r: WireReader, start: int, end: int, depth: int, out: list[Any]) -> None:
    """Collect Keras layer configs (JSON objects with a ``class_name``) anywhere in a message, without knowing
    its schema: a LEN field that starts with ``{`` is tried as JSON, any other is tried as a sub-message."""
    for f in r.fields(start, end):
        if f.wire_type != LEN or f.value == 0:
            continue
        first = r.read(f.offset, 1)
        if first == b"{" and f.value <= MAX_KERAS_JSON:
            try:
                value = json.loads(r.read(f.offset, f.value))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                continue
            if isinstance(value, dict) and ("class_name" in value or "config" in value):
                out.append(value)
        elif depth < MAX_NESTING:
            try:
                find_keras_json(r, f.offset, r.message_end(f), depth + 1, out)
            except WireError:
                continue  # a string or packed scalars, not a sub-message


def _report_keras(file: VirtualFile, ctx: ScanContext, configs: list[Any]) -> None:
    seen: set[tuple[str, str]] = set()
    for config in configs:
        for hit in analyze_config(config, allowed_modules(ctx)):
            if (hit.rule.id, hit.evidence) in seen:
                continue
            seen.add((hit.rule.id, hit.evidence))
            ctx.add(make_finding(hit.rule, file.path, hit.message, evidence=hit.evidence, severity=hit.severity))


def _strings_of(r: WireReader, f: Field, number: int) -> list[Field]:
    """The sub-messages numbered ``number`` inside ``f``."""
    return [g for g in r.fields(f.offset, r.message_end(f)) if g.number == number and g.wire_type == LEN]


def _first_string(r: WireReader, f: Field, number: int) -> list[str]:
    for g in r.fields(f.offset, r.message_end(f)):
        if g.number == number and g.wire_type == LEN:
            return [r.text(g, 512)]
    return []


def _strings(r: WireReader, f: Field, number: int) -> list[str]:
    out: list[str] = []
    for g in r.fields(f.offset, r.message_end(f)):
        if g.number == number and g.wire_type == LEN:
            out.append(r.text(g, 1024))
            if len(out) >= MAX_STRINGS:
                break
    return out


def _const_inputs(node: _Node, consts: dict[str, list[str]]) -> list[str]:
    """String constants wired into ``node``'s inputs (``name``, ``name:0``, ``name:output:0``, not ``^ctl``)."""
    out: list[str] = []
    for inp in node.inputs:
        if inp.startswith("^"):
            continue
        values = consts.get(inp.split(":", 1)[0])
        if values:
            out.extend(values)
    return out[:MAX_STRINGS]


def _detail(node: _Node, paths: list[str]) -> str:
    extra = paths + node.strings.get("debug_urls", []) + node.strings.get("memory_region_name", [])
    return f" ({', '.join(repr(p) for p in extra[:4])})" if extra else ""


def _escapes(path: str) -> str:
    norm = path.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "absolute path"
    if _URL.match(norm):
        return "URL"
    if ".." in norm.split("/"):
        return "climbs out with '..'"
    return ""


def _varint_at(head: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(head) and shift < 64:
        byte = head[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return -1, pos


def looks_like_saved_model(head: bytes) -> bool:
    """SavedModel: ``saved_model_schema_version`` = 1 (field 1) then a MetaGraphDef (field 2) whose first
    field is ``meta_info_def`` or ``graph_def``."""
    if not head.startswith(b"\x08\x01\x12"):
        return False
    length, pos = _varint_at(head, 3)
    return length > 0 and pos < len(head) and head[pos] in (0x0A, 0x12)


_OP_NAME = re.compile(rb"^[A-Z_][A-Za-z0-9_>]*$")


def looks_like_graphdef(head: bytes) -> bool:
    """A frozen GraphDef starts with a NodeDef (field 1) whose name (field 1) and op (field 2) are text."""
    if not head.startswith(b"\x0a"):
        return False
    length, pos = _varint_at(head, 1)
    if length <= 0 or pos >= len(head) or head[pos] != 0x0A:
        return False
    name_len, pos = _varint_at(head, pos + 1)
    if name_len <= 0 or pos + name_len >= len(head):
        return False
    name = head[pos : pos + name_len]
    pos += name_len
    if not name.isascii() or not name.strip() or head[pos] != 0x12:
        return False
    op_len, pos = _varint_at(head, pos + 1)
    op = head[pos : pos + op_len]
    return 0 < op_len < 128 and len(op) == op_len and bool(_OP_NAME.match(op))


ANALYZERS = [TensorFlowAnalyzer]

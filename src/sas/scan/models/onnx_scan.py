"""ONNX: external-data locations that leave the model folder, custom operator domains, malformed files.

ONNX graphs cannot run Python, but two things in a model reach outside it. External data: a tensor may say
"my bytes live in file X", and a loader that joins X to the model folder reads whatever X points at
(``../../../../etc/passwd``, ``/proc/self/environ``) into a tensor whose values the model may return
(CVE-2024-27318 and CVE-2024-5187 in ``onnx`` itself). Custom operator domains: nodes outside the standard
and well-known vendor domains only run with a native library registered by the host, so the model needs
code it does not carry (a team's own domains can be allowed with ``[scan.onnx] allow_domains``).
Symbolic links next to the model are reported by the tree walker (SAS-ARC-003).

The file is walked with :mod:`sas.scan.models.protobuf_wire` instead of ``onnx.load``: ``onnx`` (~15 MB) is
not needed at scan time, and it materialises every initializer, while this walk seeks past tensor payloads
and keeps memory flat for multi-gigabyte models. Subgraphs (If/Loop/Scan bodies), training graphs and
model-local functions are all visited, to a bounded depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sas.config import section, string_list
from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.models.nonpickle_common import mismatch, record_model, stream_size
from sas.scan.models.protobuf_wire import LEN, VARINT, Field, WireError, WireReader
from sas.scan.rules import rule
from sas.taxonomy import Severity, Threat

EXTERNAL_TRAVERSAL = rule(
    "SAS-ONNX-001",
    "ONNX external data points outside the model folder",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "A tensor's external-data location is absolute, climbs out with '..', or names a home or device path. "
    "Loading the model reads that file into a tensor: credentials or environment files can leak through the "
    "model's outputs, and device files can hang the loader.",
    "Keep external data files next to the model with plain relative names; rebuild the model from a trusted copy.",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-22"),
)
CUSTOM_DOMAIN = rule(
    "SAS-ONNX-002",
    "ONNX model uses a custom operator domain",
    Severity.MEDIUM,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "Nodes use an operator domain outside the ONNX standard and well-known runtime vendors. Such operators "
    "run native (or host-registered Python) code from a custom-op library that the model does not contain; "
    "the deployment must ship and trust that library.",
    "Confirm where the custom-op library comes from and pin it, or re-export the model with standard operators.",
    ("MITRE ATLAS AML.T0010.003", "CWE-94"),
)
MALFORMED = rule(
    "SAS-ONNX-003",
    "Malformed ONNX model",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "The file is not a valid ONNX protobuf (truncated, or fields running past their message), so parts of it "
    "could not be checked.",
    "Re-export the model from a trusted source.",
    ("CWE-20",),
)

# Domains served by the ONNX standard and by onnxruntime's built-in kernels.
KNOWN_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.microsoft.dml",
        "com.ms.internal.nhwc",
        "org.pytorch.aten",
    }
)
MAX_DEPTH = 32
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class _Walk:
    domains: dict[str, str] = field(default_factory=dict)  # domain -> an op_type seen with it
    local_functions: set[tuple[str, str]] = field(default_factory=set)
    locations: list[tuple[str, str]] = field(default_factory=list)  # (tensor name, location)
    nodes: int = 0
    ir_version: int = 0


class ONNXAnalyzer(Analyzer):
    name = "onnx"

    def claims(self, file: VirtualFile) -> bool:
        return looks_like_onnx(file.head) or file.name.lower().endswith(".onnx")

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        if not looks_like_onnx(file.head):
            mismatch(ctx, file, "ONNX", "it does not start with an ONNX ModelProto (ir_version)")
            return False
        with file.open_seekable() as stream:
            size = stream_size(stream)
            walk = _Walk()
            try:
                self._model(WireReader(stream, size), size, walk)
            except (WireError, RecursionError) as exc:
                ctx.add(make_finding(MALFORMED, file.path, f"ONNX model is malformed: {exc}", evidence=str(exc)[:120]))
            self._report(file, ctx, walk)
            record_model(ctx, file, "onnx", stream, size)
        return True

    def _report(self, file: VirtualFile, ctx: ScanContext, walk: _Walk) -> None:
        allow = set(string_list(section(ctx.settings.raw, "scan", "onnx"), "allow_domains", "scan.onnx"))
        seen: set[str] = set()
        for tensor, location in walk.locations:
            reason = escapes_folder(location)
            if reason and location not in seen:
                seen.add(location)
                ctx.add(
                    make_finding(
                        EXTERNAL_TRAVERSAL,
                        file.path,
                        f"tensor {tensor!r} loads its data from {location!r} ({reason})",
                        evidence=location[:200],
                    )
                )
        for domain, op_type in sorted(walk.domains.items()):
            if domain in KNOWN_DOMAINS or domain in allow or (domain, op_type) in walk.local_functions:
                continue
            if any(d == domain for d, _ in walk.local_functions):
                continue
            ctx.add(
                make_finding(
                    CUSTOM_DOMAIN,
                    file.path,
                    f"operator {op_type!r} comes from the custom domain {domain!r}",
                    evidence=f"{domain}:{op_type}"[:200],
                )
            )

    # ModelProto: 1 ir_version, 7 graph, 14 metadata_props, 20 training_info, 25 functions (onnx.proto3)
    def _model(self, r: WireReader, size: int, walk: _Walk) -> None:
        for f in r.fields(0, size):
            if f.number == 1 and f.wire_type == VARINT:
                walk.ir_version = f.value
            elif f.number == 7 and f.wire_type == LEN:
                self._graph(r, f, walk, 0)
            elif f.number == 20 and f.wire_type == LEN:
                for g in r.fields(f.offset, r.message_end(f)):  # TrainingInfoProto: 1 initialization, 2 algorithm
                    if g.number in (1, 2) and g.wire_type == LEN:
                        self._graph(r, g, walk, 1)
            elif f.number == 25 and f.wire_type == LEN:
                self._function(r, f, walk)

    # FunctionProto: 1 name, 7 node, 10 domain
    def _function(self, r: WireReader, f: Field, walk: _Walk) -> None:
        name = domain = ""
        nodes: list[Field] = []
        for g in r.fields(f.offset, r.message_end(f)):
            if g.number == 1 and g.wire_type == LEN:
                name = r.text(g)
            elif g.number == 10 and g.wire_type == LEN:
                domain = r.text(g)
            elif g.number == 7 and g.wire_type == LEN:
                nodes.append(g)
        walk.local_functions.add((domain, name))
        for node in nodes:
            self._node(r, node, walk, 1)

    # GraphProto: 1 node, 5 initializer, 15 sparse_initializer
    def _graph(self, r: WireReader, f: Field, walk: _Walk, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise WireError(f"subgraphs nested deeper than {MAX_DEPTH}")
        for g in r.fields(f.offset, r.message_end(f)):
            if g.wire_type != LEN:
                continue
            if g.number == 1:
                self._node(r, g, walk, depth)
            elif g.number == 5:
                self._tensor(r, g, walk)
            elif g.number == 15:
                self._sparse(r, g, walk)

    # NodeProto: 4 op_type, 5 attribute, 7 domain
    def _node(self, r: WireReader, f: Field, walk: _Walk, depth: int) -> None:
        walk.nodes += 1
        op_type = domain = ""
        for g in r.fields(f.offset, r.message_end(f)):
            if g.wire_type != LEN:
                continue
            if g.number == 4:
                op_type = r.text(g, 256)
            elif g.number == 7:
                domain = r.text(g, 256)
            elif g.number == 5:
                self._attribute(r, g, walk, depth)
        walk.domains.setdefault(domain, op_type)

    # AttributeProto: 5 t, 6 g, 10 tensors, 11 graphs, 22 sparse_tensor, 23 sparse_tensors
    def _attribute(self, r: WireReader, f: Field, walk: _Walk, depth: int) -> None:
        for g in r.fields(f.offset, r.message_end(f)):
            if g.wire_type != LEN:
                continue
            if g.number in (5, 10):
                self._tensor(r, g, walk)
            elif g.number in (6, 11):
                self._graph(r, g, walk, depth + 1)
            elif g.number in (22, 23):
                self._sparse(r, g, walk)

    # SparseTensorProto: 1 values, 2 indices
    def _sparse(self, r: WireReader, f: Field, walk: _Walk) -> None:
        for g in r.fields(f.offset, r.message_end(f)):
            if g.number in (1, 2) and g.wire_type == LEN:
                self._tensor(r, g, walk)

    # TensorProto: 8 name, 13 external_data (StringStringEntryProto: 1 key, 2 value)
    def _tensor(self, r: WireReader, f: Field, walk: _Walk) -> None:
        name = ""
        locations: list[str] = []
        for g in r.fields(f.offset, r.message_end(f)):
            if g.number == 8 and g.wire_type == LEN:
                name = r.text(g, 512)
            elif g.number == 13 and g.wire_type == LEN:
                key = value = ""
                for h in r.fields(g.offset, r.message_end(g)):
                    if h.number == 1 and h.wire_type == LEN:
                        key = r.text(h, 256)
                    elif h.number == 2 and h.wire_type == LEN:
                        value = r.text(h, _MAX_LOCATION)
                        if h.value > _MAX_LOCATION:
                            value += _CUT  # judged as cut, never by the prefix alone: the '..' may come after it
                if key == "location":
                    locations.append(value)
        walk.locations.extend((name, loc) for loc in locations)


_MAX_LOCATION = 4096  # PATH_MAX: no real location is longer
_CUT = "\x00[cut]"


def escapes_folder(location: str) -> str:
    """Why ``location`` leaves the model's folder, or "" when it is a plain relative path inside it."""
    if not location:
        return "empty location"
    if location.endswith(_CUT):
        return f"longer than {_MAX_LOCATION} bytes, so the part checked here is not the whole path"
    if "\x00" in location:
        return "contains a NUL byte"
    norm = location.replace("\\", "/")
    if norm.startswith("/"):
        return "absolute path"
    if _DRIVE.match(norm):
        return "absolute Windows path"
    if norm.startswith("~"):
        return "home-directory path"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", norm) or norm.lower().startswith("file:"):
        return "URL"
    depth = 0
    for part in norm.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return "climbs out of the model folder with '..'"
        elif part not in ("", "."):
            depth += 1
    return ""


def looks_like_onnx(head: bytes) -> bool:
    """A ModelProto starts with ``ir_version`` (field 1, varint, 3..20 in every released ONNX) followed by
    one of the next fields in number order (producer, domain, model version, doc, graph, opset import)."""
    if len(head) < 4 or head[0] != 0x08 or not 3 <= head[1] <= 20:
        return False
    return head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42)


ANALYZERS = [ONNXAnalyzer]

"""Keras: ``.keras`` archives (``config.json``) and legacy HDF5 models (``model_config`` attribute).

A Keras model file is a JSON description that the loader turns into objects, and three parts of it can run
code: ``Lambda`` layers carry marshalled Python bytecode (run when the layer is rebuilt, or later when it is
called); ``module``/``class_name`` pairs make the loader import modules and look up functions by name
(CVE-2025-1550: any module, even with ``safe_mode=True``, in Keras before 3.9); and functions inside Keras
itself can be abused by name (``keras.utils.get_file`` downloads to any path, CVE-2025-8747;
``keras.config.enable_unsafe_deserialization`` switches safe mode off, CVE-2025-9906; ``TFSMLayer`` loads
another model from a path). The whole config tree is walked, so the checks hold for nested models,
activations, initializers, losses and metrics alike. Function references to ``builtins`` are how Keras 3
names its own activations (``{"module": "builtins", "class_name": "function", "config": "relu"}``), so only
dangerous builtin names (``eval``, ``exec``, ``open``...) are flagged there. Lambda bytecode is never
unmarshalled: the names it uses are read from the marshal stream's string records, which is enough to tell
``x * 2`` from ``os.system``.

Reading HDF5: ``h5py`` (in the ``scan`` extra, ~5 MB with its bundled libhdf5) reads the attribute without
touching datasets and runs nothing from the file. A hand-written reader was rejected: ``model_config``
attributes above 64 KB live in HDF5 "dense" attribute storage (fractal heaps and version-2 B-trees), which is
most of the HDF5 format to get right. Without h5py the file is reported as not fully analysed (SAS-SCAN-001).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from sas.config import section, string_list
from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.magic import Kind, sniff
from sas.scan.models.nonpickle_common import incomplete, mismatch, record_model, stream_size
from sas.scan.rules import Rule, rule
from sas.taxonomy import Severity, Threat

LAMBDA = rule(
    "SAS-KERAS-001",
    "Keras Lambda layer carries Python bytecode",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "A Lambda layer stores a marshalled Python function. Loading the model with safe_mode=False (or any "
    "Keras 2 / tf.keras loader) rebuilds and later runs it: arbitrary code in the serving function. Critical "
    "when the bytecode names OS, process, file or import functions.",
    "Replace the Lambda layer with a registered custom layer whose code ships with the handler, and never "
    "load models with safe_mode=False.",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-502", "CWE-94"),
)
DANGEROUS_REFERENCE = rule(
    "SAS-KERAS-002",
    "Keras config references a dangerous module or function",
    Severity.CRITICAL,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The model config names a module or function that runs commands, evaluates code, touches files or "
    "imports code (os, subprocess, builtins.eval, importlib...). Keras imports and calls what the config names "
    "(CVE-2025-1550).",
    "Do not load this model; rebuild it from a trusted source with a current Keras (3.11 or later).",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-502", "CWE-94"),
)
KERAS_GADGET = rule(
    "SAS-KERAS-003",
    "Keras config calls a Keras function that escapes safe mode",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The config references a Keras function or layer that downloads files, loads other models from paths or "
    "disables safe deserialization (keras.utils.get_file CVE-2025-8747, "
    "keras.config.enable_unsafe_deserialization CVE-2025-9906, TFSMLayer), or a TFOpLambda that runs file or "
    "Python ops.",
    "Rebuild the model from a trusted source with a current Keras.",
    ("MITRE ATLAS AML.T0011.000", "CWE-502"),
)
CUSTOM_OBJECT = rule(
    "SAS-KERAS-004",
    "Keras config loads code from outside Keras",
    Severity.MEDIUM,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "A layer, function or object comes from a module outside Keras. The loader imports that module (running its "
    "top-level code) or resolves a registered custom object; what runs depends on code that is not in the model.",
    "Confirm the module ships with the function and is trusted; pin it, or allow it in configuration.",
    ("MITRE ATLAS AML.T0010.003", "CWE-94"),
)
MALFORMED = rule(
    "SAS-KERAS-005",
    "Malformed Keras model",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "The Keras archive or its config is missing, oversized or not valid JSON, so the model could not be checked.",
    "Re-save the model from a trusted source.",
    ("CWE-20",),
)

KERAS_FAMILY = frozenset({"keras", "keras_hub", "keras_nlp", "keras_cv", "tf_keras", "keras_rs"})
DANGEROUS_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "posixpath",
        "ntpath",
        "subprocess",
        "sys",
        "shutil",
        "importlib",
        "runpy",
        "pickle",
        "_pickle",
        "marshal",
        "ctypes",
        "_ctypes",
        "socket",
        "code",
        "codeop",
        "pty",
        "commands",
        "webbrowser",
        "pdb",
        "bdb",
        "timeit",
        "types",
        "multiprocessing",
        "asyncio",
        "urllib",
        "http",
        "requests",
        "tempfile",
        "io",
        "pathlib",
        "operator",
        "_operator",
        "functools",
        "shelve",
        "dill",
        "cloudpickle",
        "joblib",
        "pip",
        "platform",
        "signal",
        "threading",
        "_thread",
        "zipimport",
        "pkgutil",
        "glob",
        "fileinput",
        "smtplib",
        "ftplib",
        "telnetlib",
    }
)
DANGEROUS_BUILTINS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "help",
        "memoryview",
        "print",
    }
)
KERAS_GADGETS = frozenset(
    {
        "get_file",
        "enable_unsafe_deserialization",
        "load_model",
        "load_weights",
        "model_from_json",
        "model_from_yaml",
        "deserialize_keras_object",
        "save_model",
        "extract_archive",
        "TFSMLayer",
    }
)
# TFOpLambda ``function`` values (tf API paths) that read or write files, or call Python.
_TFOP_DANGEROUS = re.compile(r"(^|\.)(io|gfile|py_function|numpy_function|py_func|read_file|write_file|print)(\.|$)")
# Names in Lambda bytecode that mean it runs commands, touches files or imports code.
BYTECODE_DANGEROUS = frozenset(
    {
        "os",
        "posix",
        "nt",
        "system",
        "popen",
        "subprocess",
        "Popen",
        "check_output",
        "check_call",
        "spawnv",
        "spawnl",
        "execv",
        "execve",
        "eval",
        "exec",
        "compile",
        "__import__",
        "import_module",
        "importlib",
        "builtins",
        "__builtins__",
        "open",
        "getattr",
        "globals",
        "socket",
        "urllib",
        "urlopen",
        "requests",
        "shutil",
        "rmtree",
        "remove",
        "unlink",
        "environ",
        "getenv",
        "pickle",
        "marshal",
        "loads",
        "ctypes",
        "CDLL",
        "webbrowser",
        "pty",
        "runpy",
    }
)
MAX_CONFIG = 64 * 1024 * 1024
MAX_DEPTH = 400
_IDENT = re.compile(rb"^[A-Za-z_][A-Za-z0-9_]*$")
_KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})


@dataclass(frozen=True, slots=True)
class KerasHit:
    rule: Rule
    severity: Severity
    message: str
    evidence: str


class KerasAnalyzer(Analyzer):
    name = "keras"

    def claims(self, file: VirtualFile) -> bool:
        kind = sniff(file.head)
        if kind is Kind.HDF5:
            return True
        lower = file.name.lower()
        if kind is Kind.ZIP:
            return lower.endswith(".keras") or _first_zip_member(file.head) in _KERAS_MEMBERS
        return lower.endswith((".keras", ".h5", ".hdf5"))

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        kind = sniff(file.head)
        if kind is Kind.ZIP:
            return self._keras_zip(file, ctx)
        if kind is Kind.HDF5:
            self._hdf5(file, ctx)
            return False
        fmt = "Keras" if file.name.lower().endswith(".keras") else "HDF5"
        mismatch(ctx, file, fmt, "it is neither a zip archive nor an HDF5 file")
        return False

    def _keras_zip(self, file: VirtualFile, ctx: ScanContext) -> bool:
        with file.open_seekable() as stream:
            size = stream_size(stream)
            try:
                with zipfile.ZipFile(stream) as archive:
                    names = archive.namelist()
                    if "config.json" not in names:
                        if file.name.lower().endswith(".keras"):
                            self._malformed(ctx, file, "the archive has no config.json")
                        return False
                    config = _read_member(archive, "config.json")
            except (
                zipfile.BadZipFile,
                zipfile.LargeZipFile,
                NotImplementedError,
                RuntimeError,
                zlib.error,
                EOFError,
            ) as exc:
                self._malformed(ctx, file, f"unreadable zip: {exc}")
                return False
            if config is None:
                self._malformed(ctx, file, f"config.json is larger than {MAX_CONFIG} bytes")
                return False
            parsed = self._parse(ctx, file, config, "config.json")
            if parsed is not None:
                self._report(ctx, file, analyze_config(parsed, allowed_modules(ctx)))
            record_model(ctx, file, "keras", stream, size)
        # Consume the archive only when it holds nothing but Keras's own members; anything else (an npz of
        # weights, which Keras loads with allow_pickle, or assets) is left for the walker and other analyzers.
        return set(names) <= _KERAS_MEMBERS

    def _hdf5(self, file: VirtualFile, ctx: ScanContext) -> None:
        try:
            import h5py
        except ImportError:
            incomplete(ctx, file, "Keras HDF5", "h5py is not installed (pip install 'serverless-ai-shield[scan]')")
            return
        with file.open_seekable() as stream:
            size = stream_size(stream)
            damage = damaged_global_heap(stream, size)
            if damage is not None:
                incomplete(ctx, file, "HDF5", f"not handed to libhdf5: {damage}", evidence="global heap")
                return
            texts: dict[str, str] = {}
            try:
                with h5py.File(stream, "r") as h5:
                    for key in ("model_config", "training_config"):
                        if key in h5.attrs:
                            texts[key] = _attr_text(h5.attrs[key])
            except Exception as exc:  # libhdf5 surfaces hostile files through many exception types
                incomplete(ctx, file, "HDF5", f"h5py could not read it: {exc}", evidence=type(exc).__name__)
                return
            if not texts:
                return  # a weights-only or data HDF5 file: no architecture, nothing that Keras rebuilds
            for key, text in texts.items():
                if len(text) > MAX_CONFIG:
                    self._malformed(ctx, file, f"{key} is larger than {MAX_CONFIG} bytes")
                    continue
                parsed = self._parse(ctx, file, text.encode("utf-8", "surrogatepass"), key)
                if parsed is not None:
                    self._report(ctx, file, analyze_config(parsed, allowed_modules(ctx)))
            record_model(ctx, file, "keras", stream, size)

    def _parse(self, ctx: ScanContext, file: VirtualFile, raw: bytes, label: str) -> Any:
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            self._malformed(ctx, file, f"{label} is not valid JSON: {exc}")
            return None

    def _malformed(self, ctx: ScanContext, file: VirtualFile, reason: str) -> None:
        ctx.add(make_finding(MALFORMED, file.path, f"Keras model is malformed: {reason}", evidence=reason[:120]))

    def _report(self, ctx: ScanContext, file: VirtualFile, hits: list[KerasHit]) -> None:
        seen: set[tuple[str, str]] = set()
        for hit in hits:
            if (hit.rule.id, hit.evidence) in seen:
                continue
            seen.add((hit.rule.id, hit.evidence))
            ctx.add(make_finding(hit.rule, file.path, hit.message, evidence=hit.evidence, severity=hit.severity))


def analyze_config(config: Any, allow_modules: tuple[str, ...] = ()) -> list[KerasHit]:
    """Every finding in a Keras config tree (``config.json`` or ``model_config``), in tree order.

    ``allow_modules`` (``[scan.keras] allow_modules``) silences SAS-KERAS-004 for the user's own modules
    (``"my_company"`` covers ``my_company.layers``); it never silences a dangerous reference."""
    hits: list[KerasHit] = []
    for path, node in _dicts(config, "$", 0):
        for hit in _check_node(path, node):
            if hit.rule is CUSTOM_OBJECT and _allowed(hit.evidence, allow_modules):
                continue
            hits.append(hit)
    return hits


def allowed_modules(ctx: ScanContext) -> tuple[str, ...]:
    return string_list(section(ctx.settings.raw, "scan", "keras"), "allow_modules", "scan.keras")


def _allowed(reference: str, allow: tuple[str, ...]) -> bool:
    return any(reference == a or reference.startswith(a + ".") or reference.startswith(a + ">") for a in allow)


def _dicts(value: Any, path: str, depth: int) -> Iterator[tuple[str, dict[str, Any]]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        yield path, value
        for key, child in value.items():
            yield from _dicts(child, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _dicts(child, f"{path}[{i}]", depth + 1)


def _layer_name(node: dict[str, Any]) -> str:
    config = node.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return str(config["name"])
    return str(node.get("class_name", "?"))


def _check_node(path: str, node: dict[str, Any]) -> list[KerasHit]:
    hits: list[KerasHit] = []
    class_name = node.get("class_name")
    module = node.get("module")
    config = node.get("config")
    if class_name == "Lambda" and isinstance(config, dict):
        hits.extend(_lambda(path, _layer_name(node), config))
    if class_name in ("TFOpLambda", "SlicingOpLambda") and isinstance(config, dict):
        function = str(config.get("function", ""))
        if _TFOP_DANGEROUS.search(function):
            hits.append(
                KerasHit(KERAS_GADGET, Severity.HIGH, f"{class_name} layer at {path} calls tf.{function}", function)
            )
    if class_name in KERAS_GADGETS and not (isinstance(module, str) and module):
        hits.append(KerasHit(KERAS_GADGET, Severity.HIGH, f"{class_name} at {path} loads from a path", class_name))
    if isinstance(module, str) and module:
        hits.extend(_module(path, node, module, class_name, config))
    elif module is None and isinstance(node.get("registered_name"), str) and ">" in node["registered_name"]:
        name = node["registered_name"]
        hits.append(
            KerasHit(
                CUSTOM_OBJECT,
                Severity.LOW,
                f"custom object {name!r} at {path} must be registered by the loading code",
                name,
            )
        )
    # A Lambda layer's function is reported with the layer; bytecode anywhere else (a loss, say) on its own.
    if class_name == "__lambda__" and isinstance(config, dict) and not path.endswith(".function"):
        hits.extend(_bytecode(path, "function", str(config.get("code", ""))))
    return hits


def _module(path: str, node: dict[str, Any], module: str, class_name: Any, config: Any) -> list[KerasHit]:
    root = module.split(".", 1)[0]
    name = config if class_name == "function" and isinstance(config, str) else class_name
    name = name if isinstance(name, str) else "?"
    ref = f"{module}.{name}"
    if root in KERAS_FAMILY:
        if name in KERAS_GADGETS or "file_utils" in module:
            return [KerasHit(KERAS_GADGET, Severity.HIGH, f"{path} references {ref}", ref)]
        return []
    if root in ("builtins", "__builtin__"):
        if name in DANGEROUS_BUILTINS or name.startswith("__"):
            return [KerasHit(DANGEROUS_REFERENCE, Severity.CRITICAL, f"{path} references the builtin {name}", ref)]
        if class_name == "function":
            return []  # Keras 3 names its own activations/losses this way and resolves them in its registry
        return [KerasHit(CUSTOM_OBJECT, Severity.MEDIUM, f"{path} references {ref}", ref)]
    if root in DANGEROUS_MODULES:
        return [KerasHit(DANGEROUS_REFERENCE, Severity.CRITICAL, f"{path} references {ref}", ref)]
    return [KerasHit(CUSTOM_OBJECT, Severity.MEDIUM, f"{path} loads {ref} from outside Keras", ref)]


def _lambda(path: str, layer: str, config: dict[str, Any]) -> list[KerasHit]:
    function = config.get("function")
    if isinstance(function, dict) and function.get("class_name") == "__lambda__":
        inner = function.get("config")
        code = inner.get("code") if isinstance(inner, dict) else None
        return _bytecode(path, layer, code if isinstance(code, str) else "")
    if config.get("function_type") == "lambda":  # Keras 2 / tf.keras: [code, defaults, closure] or code
        code = function[0] if isinstance(function, list) and function else function
        return _bytecode(path, layer, code if isinstance(code, str) else "")
    if isinstance(function, str):  # a named function; Keras 2 puts its module beside it
        module = config.get("module")
        ref = f"{module}.{function}" if isinstance(module, str) else function
        root = ref.split(".", 1)[0]
        severity = Severity.CRITICAL if root in DANGEROUS_MODULES or function in DANGEROUS_BUILTINS else Severity.MEDIUM
        rule_ = DANGEROUS_REFERENCE if severity is Severity.CRITICAL else CUSTOM_OBJECT
        return [KerasHit(rule_, severity, f"Lambda layer {layer!r} at {path} calls {ref}", ref)]
    return []


def _bytecode(path: str, layer: str, code: str) -> list[KerasHit]:
    names = bytecode_names(code)
    dangerous = sorted(n for n in names if n in BYTECODE_DANGEROUS)
    shown = ", ".join(dangerous or sorted(names)[:12]) or "none readable"
    severity = Severity.CRITICAL if dangerous else Severity.HIGH
    return [
        KerasHit(
            LAMBDA,
            severity,
            f"Lambda layer {layer!r} at {path} holds Python bytecode (names: {shown})",
            f"{layer}:{','.join(dangerous) or 'bytecode'}",
        )
    ]


def bytecode_names(code: str) -> set[str]:
    """Identifiers in a base64 marshal stream (its short and long string records), without unmarshalling."""
    try:
        data = base64.b64decode(code.encode("ascii", "replace"), validate=False)[: 4 * 1024 * 1024]
    except (binascii.Error, ValueError):
        return set()
    names: set[str] = set()
    i = 0
    n = len(data)
    while i < n:
        kind = data[i] & 0x7F
        if kind in (0x7A, 0x5A) and i + 1 < n:  # 'z'/'Z' short ascii: 1-byte length
            length, start = data[i + 1], i + 2
        elif kind in (0x61, 0x41, 0x75, 0x74) and i + 4 < n:  # 'a'/'A'/'u'/'t': 4-byte length
            length, start = int.from_bytes(data[i + 1 : i + 5], "little"), i + 5
        else:
            i += 1
            continue
        word = data[start : start + length]
        if 0 < length <= 128 and len(word) == length and _IDENT.match(word):
            names.add(word.decode("ascii"))
            i = start + length
        else:
            i += 1
    return names


_HEAP_SIGNATURE = b"GCOL"
_MAX_HEAP = 64 * 1024 * 1024
_SEARCH_CHUNK = 1 << 20


def _align8(n: int) -> int:
    return -(-n // 8) * 8


def _size_of_lengths(stream: BinaryIO) -> int:
    """The superblock's "size of lengths" (8 unless the file says otherwise)."""
    stream.seek(0)
    head = stream.read(16)
    if not head.startswith(b"\x89HDF\r\n\x1a\n") or len(head) < 16:
        return 8
    width = head[14] if head[8] in (0, 1) else head[10]
    return width if width in (2, 4, 8) else 8


def damaged_global_heap(stream: BinaryIO, size: int) -> str | None:
    """Why a global heap collection (where h5py keeps variable-length strings such as ``model_config``) would
    stop libhdf5, or None. libhdf5 decodes a collection in a loop that never ends on a free-space entry of size 0
    and walks out of the collection on an object larger than it; a mutated file did the former for ever, in C,
    where no timeout reaches. So each collection is walked here first, the way libhdf5 walks it."""
    lengths = _size_of_lengths(stream)
    header = object_header = _align8(8 + lengths)
    pos, carry = 0, b""
    while pos < size:
        stream.seek(pos)
        chunk = carry + stream.read(_SEARCH_CHUNK)
        base = pos - len(carry)
        at = chunk.find(_HEAP_SIGNATURE)
        while at >= 0:
            problem = _walk_heap(stream, size, base + at, lengths, header, object_header)
            if problem is not None:
                return problem
            at = chunk.find(_HEAP_SIGNATURE, at + 1)
        pos += _SEARCH_CHUNK
        carry = chunk[-(len(_HEAP_SIGNATURE) - 1) :]
    return None


def _walk_heap(stream: BinaryIO, size: int, start: int, lengths: int, header: int, object_header: int) -> str | None:
    stream.seek(start)
    head = stream.read(8 + lengths)
    if len(head) < 8 + lengths or head[4] != 1 or head[5:8] != b"\0\0\0":
        return None  # the four letters by chance (in weights, say), not a collection header
    length = int.from_bytes(head[8:], "little")
    if length < header or start + length > size:
        return None  # libhdf5 refuses such a collection with an error
    if length > _MAX_HEAP:
        return f"global heap collection at byte {start} is {length} bytes, too large to check"
    stream.seek(start)
    body = stream.read(length)
    p = header
    while p + object_header <= length:
        index = int.from_bytes(body[p : p + 2], "little")
        object_size = int.from_bytes(body[p + 8 : p + 8 + lengths], "little")
        need = object_header + _align8(object_size) if index else object_size
        if need == 0 or need > length - p:
            return f"global heap collection at byte {start} has an object of {object_size} bytes at +{p}"
        p += need
    return None


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes | None:
    with archive.open(name) as member:
        data = member.read(MAX_CONFIG + 1)
    return None if len(data) > MAX_CONFIG else data


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tobytes") and getattr(value, "dtype", None) is not None and value.dtype.kind == "S":
        return bytes(value.tobytes()).decode("utf-8", "replace")
    return str(value)


def _first_zip_member(head: bytes) -> str:
    """The name in the first local file header (Keras writes metadata.json or config.json first)."""
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return ""
    name_len = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + name_len].decode("utf-8", "replace")


ANALYZERS = [KerasAnalyzer]

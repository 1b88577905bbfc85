"""PyTorch checkpoints: zip archives (``torch.save`` since 1.6, TorchScript) and the legacy pickle stream.

A zip is a torch checkpoint when some top-level folder holds ``data.pkl`` and a ``version`` record, whatever
the archive, folder or file is called (``model.bin``, ``weights.ckpt``, ``x/`` instead of ``archive/``): torch
itself finds the folder from the first entry, so names prove nothing. Every pickle member is analysed
(``data.pkl``, ``constants.pkl``, TorchScript ``*.debug_pkl``, and any other member that sniffs as a pickle),
as are TorchScript ``code/`` sources. Tensor storages (``data/0``...) are raw numbers and are never read,
except once, streaming, for the file's SHA-256.

The zip is read with :mod:`zipfile` from ``VirtualFile.open_seekable()``: the central directory is the only
way to list members, and the standard library's reader is the one torch's own format tests use.

TorchScript cannot run arbitrary Python, but its serialized code is compiled at load time, so tampering
shows there: Python internals (``__builtins__``, ``__import__``), modules outside torch (``os.``,
``subprocess``), ``eval``/``exec``, native libraries (``load_library``, custom ``torch.ops`` namespaces that
need a shared object), and file reads (``from_file``).

The legacy format is five pickles in a row (magic number, protocol version, system info, the object,
storage keys) followed by raw storage bytes: the first five are analysed, the rest only hashed.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import Component, Location, make_finding
from sas.scan.magic import Kind, sniff
from sas.scan.models.pickle_policy import PicklePolicy
from sas.scan.models.pickle_scan import (
    CHUNK,
    PickleReport,
    emit,
    is_legacy_torch,
    policy_for,
    scan_stream,
)
from sas.scan.rules import INCOMPLETE_MODEL, rule
from sas.scan.settings import Limits
from sas.taxonomy import Severity, Threat

TORCHSCRIPT_ESCAPE = rule(
    "SAS-TORCH-001",
    "TorchScript code reaches Python internals or the operating system",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The serialized TorchScript code of this archive references Python internals, modules outside torch, "
    "dynamic evaluation or file access. Code that torch.jit.save writes never does; the archive was edited.",
    "Do not load this archive; re-export the model from its source, or ship weights only (safetensors).",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-94"),
)
TORCHSCRIPT_NATIVE = rule(
    "SAS-TORCH-002",
    "TorchScript code calls custom native operators",
    Severity.MEDIUM,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The TorchScript code calls operators outside torch's own namespaces; they only exist once a native "
    "library is loaded, and that library runs with the function's privileges.",
    "Check where the custom operator library comes from and that it is pinned and scanned.",
    ("MITRE ATLAS AML.T0010.003", "CWE-94"),
)
TORCH_MEMBER_TOO_LARGE = rule(
    "SAS-TORCH-003",
    "Torch checkpoint member too large to analyse",
    Severity.HIGH,
    Threat.INCOMPLETE_ANALYSIS,
    "A pickle or code member of the checkpoint declares a size above the per-file limit, or expands more than "
    "the compression-ratio limit allows (a zip bomb), so it was not read.",
    "Raise [scan.limits] max_file_bytes if the file is expected, or rebuild it from a trusted source.",
    ("CWE-409",),
)

_RECORDS = ("version", ".data/version", "byteorder")
_TS_PYTHON = re.compile(
    r"__builtins__|__import__|__globals__|__subclasses__|__getattribute__|__code__|__dict__|__class__\s*\."
    r"|\b(?:os|sys|subprocess|builtins|importlib|ctypes|socket|shutil|pickle|marshal|runpy|posix|pty)\.\w+"
    r"|\b(?:eval|exec|compile|__import__|open|breakpoint)\s*\("
    r"|\bload_library\b|\bfrom_file\b"
)
_TS_IMPORT = re.compile(r"^\s*(?:import|from)\s+(?!__torch__\b|torch\b)([A-Za-z_][\w.]*)", re.MULTILINE)
_TS_CUSTOM_OP = re.compile(r"\bops\.(?!aten\b|prim\b|quantized\b|_quantized\b|profiler\b|_caffe2\b|mkldnn\b)(\w+)\.")
_CODE_CAP = 8 << 20


def _zip_layout(names: list[str]) -> str | None:
    """The top-level folder of a torch zip checkpoint among ``names``, or None when it is not one."""
    names_set = set(names)
    for name in names:
        if name.count("/") == 1 and name.endswith("/data.pkl"):
            prefix = name[: -len("data.pkl")]
            # torch writes nothing outside its folder; a zip with other top-level content (a function package
            # that happens to hold an unpacked checkpoint) is an ordinary archive for the walker to descend into
            if any(prefix + r in names_set for r in _RECORDS) and all(n.startswith(prefix) for n in names):
                return prefix
    return None


def _is_storage(rel: str) -> bool:
    return rel.startswith(("data/", ".data/")) or rel in ("version", "byteorder", ".format_version")


def too_compressed(info: zipfile.ZipInfo, limits: Limits | None) -> bool:
    """A member whose declared expansion crosses the scan's bomb limits (the walker's rule, applied here because
    this analyzer reads the zip itself)."""
    if limits is None:
        return False
    size = info.file_size
    return size > limits.ratio_floor and size > limits.max_ratio * max(info.compress_size, 1)


# What zipfile raises on a damaged central directory: a version field it does not know raises
# NotImplementedError, not BadZipFile.
ZIP_OPEN_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
)
# ... and what reading a damaged member raises: a broken deflate stream, a member flagged as encrypted.
ZIP_READ_ERRORS: tuple[type[Exception], ...] = (*ZIP_OPEN_ERRORS, RuntimeError, zlib.error, lzma.LZMAError)


def is_dir(info: zipfile.ZipInfo) -> bool:
    """``ZipInfo.is_dir`` without its IndexError on a member whose directory entry has an empty name."""
    return info.filename.endswith("/")


def _members(zf: zipfile.ZipFile, prefix: str) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    for info in zf.infolist():
        if is_dir(info):
            continue
        rel = info.filename[len(prefix) :] if info.filename.startswith(prefix) else info.filename
        yield info, rel


ZipReports = tuple[
    list[tuple[str, PickleReport]], list[tuple[str, str, str, Severity]], list[str], list[tuple[str, str]]
]


def analyse_zip(
    zf: zipfile.ZipFile,
    prefix: str,
    policy: PicklePolicy,
    *,
    nesting: int,
    max_member: int,
    limits: Limits | None = None,
) -> ZipReports:
    """Pickle reports per member, TorchScript code hits (member, rule id, evidence, severity), oversize members,
    and members that could not be read to their end (member, reason)."""
    reports: list[tuple[str, PickleReport]] = []
    code_hits: list[tuple[str, str, str, Severity]] = []
    oversize: list[str] = []
    unreadable: list[tuple[str, str]] = []
    for info, rel in _members(zf, prefix):
        if _is_storage(rel):
            continue
        is_code = rel.startswith("code/") and rel.endswith(".py")
        if info.file_size > max_member or too_compressed(info, limits):
            if is_code or rel.endswith((".pkl", ".debug_pkl")):
                oversize.append(info.filename)
            continue
        try:
            member = zf.open(info)
        except ZIP_READ_ERRORS as exc:
            unreadable.append((info.filename, f"{type(exc).__name__}: {exc}"))
            continue
        with member:
            guarded = GuardedMember(member)
            reader = io.BufferedReader(guarded)
            if is_code:
                raw = reader.read(_CODE_CAP + 1)
                source = raw[:_CODE_CAP].decode("utf-8", "replace")
                code_hits.extend((info.filename, rid, ev, sev) for rid, ev, sev in _torchscript_hits(source))
                if len(raw) > _CODE_CAP:
                    unreadable.append((info.filename, f"code past its first {_CODE_CAP} bytes was not checked"))
            else:
                stream: IO[bytes] = reader
                head = b""
                if not rel.endswith((".pkl", ".debug_pkl")):
                    head = reader.read(512)
                    stream = io.BufferedReader(_Prefixed(head, reader))
                if rel.endswith((".pkl", ".debug_pkl")) or sniff(head) is Kind.PICKLE:
                    report = scan_stream(stream, policy, torch_context=True, nesting=nesting)
                    reports.append((info.filename, report))
            if guarded.error is not None:
                unreadable.append((info.filename, f"{type(guarded.error).__name__}: {guarded.error}"))
    return reports, code_hits, oversize, unreadable


class GuardedMember(io.RawIOBase):
    """A zip member whose damaged part reads as its end, so that what came before the damage is still judged
    (dropping a whole checkpoint's findings for a corrupt later member would let damage hide a payload)."""

    def __init__(self, member: IO[bytes]) -> None:
        self._member = member
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.error is not None:
            return 0
        try:
            data = self._member.read(len(buffer))
        except ZIP_READ_ERRORS as exc:
            self.error = exc
            return 0
        buffer[: len(data)] = data
        return len(data)


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_STRING_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')


def _torchscript_hits(source: str) -> list[tuple[str, str, Severity]]:
    source = _STRING_LITERAL.sub('""', source)  # messages such as "builtins.ValueError" are data, not code
    hits: list[tuple[str, str, Severity]] = []
    seen: set[str] = set()
    for m in _TS_IMPORT.finditer(source):
        ev = f"import {m.group(1)}"
        if ev not in seen:
            seen.add(ev)
            hits.append((TORCHSCRIPT_ESCAPE.id, ev, Severity.HIGH))
    for m in _TS_PYTHON.finditer(source):
        ev = m.group(0).strip()
        if ev not in seen:
            seen.add(ev)
            hits.append((TORCHSCRIPT_ESCAPE.id, ev, Severity.HIGH))
    for m in _TS_CUSTOM_OP.finditer(source):
        ev = f"torch.ops.{m.group(1)}"
        if ev not in seen:
            seen.add(ev)
            hits.append((TORCHSCRIPT_NATIVE.id, ev, Severity.MEDIUM))
    return hits


def scan_zip_bytes(data: bytes, policy: PicklePolicy, *, nesting: int = 0) -> PickleReport:
    """A torch zip embedded in a pickle (``torch.storage._load_from_bytes``), analysed in memory."""
    out = PickleReport()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            prefix = _zip_layout(zf.namelist()) or ""
            reports, _code, _big, unreadable = analyse_zip(zf, prefix, policy, nesting=nesting, max_member=len(data))
    except ZIP_OPEN_ERRORS as exc:
        out.error = f"embedded zip could not be read: {exc}"
        out.error_offset = 0
        return out
    out.nested.extend(reports)
    out.pickles = len(reports)
    if unreadable:
        out.error = "embedded zip member could not be read: " + "; ".join(f"{m}: {r}" for m, r in unreadable)
        out.error_offset = 0
    return out


class TorchAnalyzer(Analyzer):
    name = "pytorch"

    def claims(self, file: VirtualFile) -> bool:
        kind = sniff(file.head)
        return kind in (Kind.ZIP, Kind.TAR) or (kind is Kind.PICKLE and is_legacy_torch(file.head))

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        if is_legacy_torch(file.head):
            return self._legacy(file, ctx)
        if sniff(file.head) is Kind.TAR:
            return self._legacy_tar(file, ctx)
        return self._zip(file, ctx)

    def _legacy_tar(self, file: VirtualFile, ctx: ScanContext) -> bool:
        """The pre-1.0 tar checkpoint: members sys_info, pickle, storages and tensors (nothing else)."""
        try:
            stream = file.open_seekable()
        except OSError:
            return False
        policy = policy_for(ctx)
        with stream:
            try:
                with tarfile.open(fileobj=stream, mode="r:") as tar:
                    members: dict[str, tarfile.TarInfo] = {}
                    for info in tar:
                        if info.name not in _LEGACY_TAR_MEMBERS or len(members) >= len(_LEGACY_TAR_MEMBERS):
                            return False  # an ordinary tar: the archive walker reads it
                        members[info.name] = info
                    if not {"pickle", "storages", "tensors"} <= members.keys():
                        return False
                    for name, info in sorted(members.items()):
                        member = tar.extractfile(info)
                        if member is None:
                            continue
                        path = f"{file.path}!{name}"
                        with member:
                            if name in ("pickle", "sys_info"):
                                report = scan_stream(member, policy, torch_context=True)
                                emit(report, ctx, path, what="legacy torch pickle")
                            else:
                                _legacy_records(member, info.size, name, policy, ctx, path)
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                ctx.add(
                    make_finding(
                        INCOMPLETE_MODEL,
                        Location(file.path),
                        f"legacy torch tar could not be read: {exc}",
                        evidence=type(exc).__name__,
                    )
                )
            digest, size = _sha256(stream)
        ctx.component(
            Component(kind="model", name=file.name, path=file.path, format="pytorch", sha256=digest, size=size)
        )
        return True

    def _legacy(self, file: VirtualFile, ctx: ScanContext) -> bool:
        hasher = hashlib.sha256()
        with file.open() as stream:
            report = scan_stream(stream, policy_for(ctx), hasher=hasher, torch_context=True, max_pickles=5)
        emit(report, ctx, file.path, what="legacy torch checkpoint")
        if report.error is None and report.pickles < 5:
            ctx.add(
                make_finding(
                    INCOMPLETE_MODEL,
                    Location(file.path),
                    f"legacy torch checkpoint ends after {report.pickles} of its 5 pickles",
                    evidence="truncated legacy checkpoint",
                )
            )
        ctx.component(
            Component(
                kind="model",
                name=file.name,
                path=file.path,
                format="pytorch",
                sha256=report.sha256,
                size=report.bytes_read,
            )
        )
        return True

    def _zip(self, file: VirtualFile, ctx: ScanContext) -> bool:
        policy = policy_for(ctx)
        try:
            stream = file.open_seekable()
        except OSError:
            return False
        with stream:
            try:
                zf = zipfile.ZipFile(stream)
            except ZIP_OPEN_ERRORS:
                return False  # not a readable zip: the archive walker reports it
            with zf:
                prefix = _zip_layout(zf.namelist())
                if prefix is None:
                    return False
                fmt = "torchscript" if any(n.startswith(prefix + "code/") for n in zf.namelist()) else "pytorch"
                if fmt == "torchscript":
                    policy = policy.for_torchscript()
                reports, code_hits, oversize, unreadable = analyse_zip(
                    zf,
                    prefix,
                    policy,
                    nesting=0,
                    max_member=ctx.settings.limits.max_file_bytes,
                    limits=ctx.settings.limits,
                )
                for member, reason in unreadable:
                    ctx.add(
                        make_finding(
                            INCOMPLETE_MODEL,
                            Location(f"{file.path}!{member}"),
                            f"torch checkpoint member could not be read to the end: {reason}",
                            evidence=reason.split(":", 1)[0],
                        )
                    )
            digest, size = _sha256(stream)
        for member, report in reports:
            emit(report, ctx, f"{file.path}!{member}", what=f"{fmt} pickle")
        for member, rule_id, evidence, severity in code_hits:
            rule_ = TORCHSCRIPT_ESCAPE if rule_id == TORCHSCRIPT_ESCAPE.id else TORCHSCRIPT_NATIVE
            ctx.add(
                make_finding(
                    rule_,
                    Location(f"{file.path}!{member}"),
                    f"TorchScript code references {evidence}",
                    evidence=evidence,
                    severity=severity,
                )
            )
        for member in oversize:
            ctx.add(
                make_finding(
                    TORCH_MEMBER_TOO_LARGE,
                    Location(f"{file.path}!{member}"),
                    f"{member} is larger than the per-file limit and was not analysed",
                    evidence=member,
                )
            )
        ctx.component(Component(kind="model", name=file.name, path=file.path, format=fmt, sha256=digest, size=size))
        return True


_LEGACY_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
_ELEMENT_SIZE = {
    "Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1, "Byte": 1,
    "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "QInt8": 1, "QUInt8": 1, "QInt32": 4,
}  # fmt: skip
_MAX_RECORDS = 1_000_000


def _legacy_records(stream: IO[bytes], size: int, name: str, policy: PicklePolicy, ctx: ScanContext, path: str) -> None:
    """``storages``/``tensors`` of a legacy tar: a count pickle, then per record a pickle and raw bytes whose
    size the record gives (storages also end with a storage-views pickle). Every pickle is analysed."""
    count = _first_int(stream.read(16))
    stream.seek(0)
    reports: list[PickleReport] = []

    def next_pickle() -> PickleReport | None:
        start = stream.tell()
        report = scan_stream(stream, policy, torch_context=True, max_pickles=1)
        reports.append(report)
        if report.error is not None or report.end_offset < 0:
            return None
        stream.seek(start + report.end_offset)
        return report

    problem = ""
    first = next_pickle()
    if first is None or count is None or count > _MAX_RECORDS:
        problem = "record count could not be read"
    else:
        for _ in range(count):
            record = next_pickle()
            if record is None:
                problem = "a record pickle could not be read"
                break
            if name == "storages":
                kinds = [p.rsplit(".", 1)[1][: -len("Storage")] for p in record.globals_seen if p.endswith("Storage")]
                width = _ELEMENT_SIZE.get(kinds[0]) if kinds else None
                raw = stream.read(8)
                if width is None or len(raw) < 8:
                    problem = "a storage record has an unknown type or is truncated"
                    break
                stream.seek(int.from_bytes(raw, "little", signed=True) * width, io.SEEK_CUR)
            else:
                raw = stream.read(8)
                if len(raw) < 8:
                    problem = "a tensor record is truncated"
                    break
                ndim = int.from_bytes(raw[:4], "little", signed=True)
                if not 0 <= ndim <= 64:
                    problem = "a tensor record has an impossible rank"
                    break
                stream.seek(16 * ndim + 8, io.SEEK_CUR)
        else:
            if name == "storages" and next_pickle() is None:
                problem = "the storage views pickle could not be read"
        if not problem and stream.tell() != size:
            problem = f"{size - stream.tell()} unexpected bytes after the last record"
    for report in reports:
        emit(report, ctx, path, what="legacy torch pickle")
    if problem:
        ctx.add(make_finding(INCOMPLETE_MODEL, Location(path), f"legacy torch {name}: {problem}", evidence=problem))


def _first_int(data: bytes) -> int | None:
    """The integer a tiny ``pickle.dumps(n, protocol=2)`` holds (the record counts of legacy tars)."""
    body = data[2:] if data[:1] == b"\x80" else data
    if body[:1] == b"K":
        return body[1]
    if body[:1] == b"M":
        return int.from_bytes(body[1:3], "little")
    if body[:1] == b"J":
        return int.from_bytes(body[1:5], "little", signed=True)
    return None


def _sha256(stream: IO[bytes]) -> tuple[str, int]:
    """One streaming pass over the whole checkpoint (storages included) into a reused buffer."""
    stream.seek(0)
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
        else:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            n = len(chunk)
            digest.update(chunk)
        size += n
    return digest.hexdigest(), size


ANALYZERS = [TorchAnalyzer]

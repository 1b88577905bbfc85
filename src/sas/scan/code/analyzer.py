"""The handler-code analyzer: which Python files are the function's own code, and checking them.

Function code versus vendored code: vendored libraries are the supply-chain analyzer's business (RECORD
hashes, obfuscation), and running handler rules over numpy or boto3 would be slow and noisy. A file is vendored
when its path is under ``site-packages``/``dist-packages`` or a layer's ``python/lib/python3.x/``, or when an
installed distribution's ``*.dist-info/RECORD`` lists it (``pip install -t .`` puts libraries at the package
root, next to the handler: only RECORD tells them apart). The walk order does not guarantee that a RECORD is
seen before the files it lists, so source files wait (up to a memory budget) until the end of the walk; past
the budget they are checked at once and their findings dropped at the end if a RECORD claims them.
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import warnings
import zlib
from collections import OrderedDict
from dataclasses import replace

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.code.checks import Hit, check_text, check_tree
from sas.scan.code.rules import DESERIALIZE_FILE, SECRET_ASSIGNMENT, SECRET_TOKEN
from sas.scan.context import ScanContext
from sas.scan.findings import Finding, Location, make_finding
from sas.scan.rules import INCOMPLETE_FILE
from sas.taxonomy import Category, Severity

MAX_SOURCE_BYTES = 2 * 1024 * 1024  # hand-written handler code is far smaller; generated blobs are not handlers
PENDING_BUDGET = 32 * 1024 * 1024  # compressed bytes of sources waiting for the end of the walk
MAX_RECORD_BYTES = 16 * 1024 * 1024
# Compressed bytes of RECORD-claimed archive members kept until the end, in case a deployment names one as its
# handler (a fake RECORD must not hide it); libraries beyond this are let go as the vendored code they claim to be
CLAIMED_BUDGET = 8 * 1024 * 1024
# Python source checked per scan, beyond what RECORD files mark as vendored: a crafted package of many
# large modules must not stall CI (the rules run at about 1-2 MB/s of source)
MAX_TOTAL_SOURCE_BYTES = 64 * 1024 * 1024

_VENDORED = re.compile(
    r"(?:^|/)(?:site-packages|dist-packages|__pycache__|node_modules|[^/]+\.dist-info|[^/]+\.egg-info)/"
    r"|^python/lib/python\d[.\d]*/"
)


def is_vendored_path(inner_path: str) -> bool:
    # both as written and as extracted: "site-packages/../app.py" names a handler at the package root
    normal = posixpath.normpath("/" + inner_path.replace("\\", "/"))[1:]
    return bool(_VENDORED.search(inner_path)) and bool(_VENDORED.search(normal))


Linked = tuple[Finding, tuple[str, ...]]  # a finding and the file names its loader call reads


def check_source(source: bytes, path: str) -> list[Finding]:
    """Every handler-code finding for one Python file; a file that cannot be parsed is itself a finding."""
    return [finding for finding, _ in analyse_source(source, path)]


def analyse_source(source: bytes, path: str) -> list[Linked]:
    """:func:`check_source`, with the literal file names each model-loading call reads."""
    hits: list[Hit] = []
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        text = source.decode("latin-1")  # PEP 263 cookies name other encodings; token formats are ASCII anyway
    hits.extend(check_text(text))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in the scanned code are not our warnings
            tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        return [*_findings(hits, path), _unparseable(path, f"Python syntax error: {exc.msg}", line)]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [*_findings(hits, path), _unparseable(path, f"cannot parse as Python: {type(exc).__name__}", None)]
    try:
        tree_hits = check_tree(tree, path)
    except RecursionError:
        return [*_findings(hits, path), _unparseable(path, "expressions nested too deeply to analyse", None)]
    token_lines = {h.line for h in hits if h.rule is SECRET_TOKEN}
    hits.extend(h for h in tree_hits if not (h.rule is SECRET_ASSIGNMENT and h.line in token_lines))
    return _findings(hits, path)


def _findings(hits: list[Hit], path: str) -> list[Linked]:
    return [
        (
            make_finding(
                h.rule,
                Location(path, h.line or None, h.column or None),
                h.message,
                evidence=h.evidence,
                severity=h.severity,
            ),
            h.files,
        )
        for h in sorted(hits, key=lambda h: (h.line, h.column, h.rule.id))
    ]


def _unparseable(path: str, message: str, line: int | None) -> Linked:
    finding = make_finding(
        INCOMPLETE_FILE,
        Location(path, line),
        f"{message}; the handler-code rules could not check this file",
        evidence=message,
    )
    return finding, ()


def _container(path: str) -> str:
    return path.rsplit("!", 1)[0] + "!" if "!" in path else ""


def link_model_loads(linked: list[Linked], known: list[Finding]) -> list[Finding]:
    """Raise a model-loading call to the severity of what this scan found in the file it loads.

    ``pickle.load(open("model/model.pkl"))`` is routine (low) until the model scanner reports that
    ``model/model.pkl`` runs ``os.system``: then the handler is what executes it at every cold start.
    """
    unsafe: dict[tuple[str, str], Finding] = {}
    for finding in known:
        if finding.severity < Severity.HIGH or finding.category is not Category.MODEL:
            continue
        # a finding inside a model container (model.pt!archive/data.pkl) belongs to the outer file too
        segments = finding.location.path.split("!")
        for depth in range(len(segments)):
            container = "!".join(segments[:depth]) + "!" if depth else ""
            key = (container, segments[depth].rsplit("/", 1)[-1])
            if key not in unsafe or finding.severity > unsafe[key].severity:
                unsafe[key] = finding
    out: list[Finding] = []
    for finding, files in linked:
        model = next((unsafe[k] for f in files if (k := (_container(finding.location.path), f)) in unsafe), None)
        if finding.rule_id != DESERIALIZE_FILE.id or model is None:
            out.append(finding)
            continue
        message = (
            f"{finding.message.split(';', 1)[0]}; it loads {model.location.path}, which this scan found unsafe "
            f"({model.rule_id}: {model.message})"
        )
        out.append(replace(finding, severity=model.severity, message=message[:600]))
    return out


def _names_a_handler(path: str, modules: set[str]) -> bool:
    """Whether ``path`` (a .py file, maybe inside an archive: ``pkg.zip!src/app.py``) is a handler module."""
    if not modules or not path.endswith(".py"):
        return False
    stem = path[:-3].replace("!", "/")
    return any(stem == m or stem.endswith("/" + m) for m in modules)


class HandlerCodeAnalyzer(Analyzer):
    name = "handler-code"

    def __init__(self) -> None:
        self._vendored: set[str] = set()
        # sources waiting for the end of the walk: files on disk by reference (re-read at the end),
        # archive members compressed in memory (their archive may be closed by then)
        self._deferred: dict[str, VirtualFile] = {}
        self._pending: OrderedDict[str, bytes] = OrderedDict()
        self._pending_bytes = 0
        self._early: dict[str, list[Linked]] = {}
        self._claimed_packed: dict[str, bytes] = {}  # archive members a RECORD read earlier claimed
        self._claimed_bytes = 0

    def claims(self, file: VirtualFile) -> bool:
        name = file.name
        if file.inner_path.endswith(".dist-info/RECORD"):
            return True
        if name.endswith((".py", ".pyw")):
            return True
        first_line = file.head.split(b"\n", 1)[0]
        return "." not in name and first_line.startswith(b"#!") and b"python" in first_line

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        inner = file.inner_path
        if inner.endswith(".dist-info/RECORD"):
            self._read_record(file, ctx)
            return False
        if is_vendored_path(inner):
            return False
        if file.path in self._vendored:
            # checked at the end if a deployment names it as a handler: a file on disk by reference (finish
            # passes over it otherwise), an archive member compressed (its archive is closed by then), in a budget
            if file.depth == 0:
                self._deferred[file.path] = file
            elif file.size <= MAX_SOURCE_BYTES and self._claimed_bytes < CLAIMED_BUDGET:
                with file.open() as fh:
                    packed = zlib.compress(fh.read(MAX_SOURCE_BYTES + 1), 1)
                self._claimed_packed[file.path] = packed
                self._claimed_bytes += len(packed)
            return False
        if file.size > MAX_SOURCE_BYTES:
            ctx.add(
                make_finding(
                    INCOMPLETE_FILE,
                    file.path,
                    f"Python file of {file.size} bytes is too large for the handler-code rules; not checked",
                    evidence="too large",
                    severity=Severity.LOW,
                )
            )
            return False
        if file.depth == 0:
            self._deferred[file.path] = file
            return False
        with file.open() as fh:
            source = fh.read(MAX_SOURCE_BYTES + 1)
        # compressed while waiting: Python source shrinks ~4x at level 1, for a few ms per MB
        packed = zlib.compress(source, 1)
        self._pending[file.path] = packed
        self._pending_bytes += len(packed)
        while self._pending_bytes > PENDING_BUDGET and self._pending:
            path, early = self._pending.popitem(last=False)
            self._pending_bytes -= len(early)
            self._early[path] = analyse_source(zlib.decompress(early), path)
        return False

    def _read_record(self, file: VirtualFile, ctx: ScanContext) -> None:
        with file.open() as fh:
            data = fh.read(MAX_RECORD_BYTES)
        inner = file.inner_path
        container = file.path[: len(file.path) - len(inner)]
        site = inner.rsplit("/", 2)[0] if inner.count("/") >= 2 else ""
        for line in data.decode("utf-8", "replace").splitlines():
            name = line.split(",", 1)[0].strip().strip('"')
            if not name:
                continue
            joined = os.path.normpath(f"{site}/{name}" if site else name).replace(os.sep, "/")
            if not joined.startswith("../"):
                self._vendored.add(container + joined)
        del ctx  # the supply-chain analyzer reports RECORD problems

    def finish(self, ctx: ScanContext) -> None:
        linked: list[Linked] = []
        budget = MAX_TOTAL_SOURCE_BYTES
        skipped: list[str] = []
        # a RECORD (anyone can write one) never makes the deployment's own handler someone else's code
        vendored = {p for p in self._vendored if not _names_a_handler(p, ctx.handler_modules)}
        for path, early in self._early.items():
            if path not in vendored:
                linked.extend(early)
        self._pending.update((p, b) for p, b in self._claimed_packed.items() if p not in vendored)
        for path, packed in self._pending.items():
            if path in vendored:
                continue
            source = zlib.decompress(packed)
            if len(source) > budget:
                skipped.append(path)
                continue
            budget -= len(source)
            linked.extend(analyse_source(source, path))
        for path, file in self._deferred.items():
            if path in vendored:
                continue
            if file.size > budget:
                skipped.append(path)
                continue
            try:
                with file.open() as fh:
                    source = fh.read(MAX_SOURCE_BYTES + 1)
            except OSError as exc:
                ctx.error(path, f"cannot read: {exc.strerror or exc}")
                continue
            budget -= len(source)
            linked.extend(analyse_source(source, path))
        for finding in link_model_loads(linked, ctx.findings):
            ctx.add(finding)
        if skipped:
            # a package stuffed with source (or vendored code without RECORD) must not stall the scan
            ctx.add(
                make_finding(
                    INCOMPLETE_FILE,
                    sorted(skipped)[0],
                    f"{len(skipped)} Python file(s) beyond the handler-code budget of "
                    f"{MAX_TOTAL_SOURCE_BYTES // (1024 * 1024)} MB were not checked (first: {sorted(skipped)[0]})",
                    evidence=f"{len(skipped)} files over budget",
                )
            )
        self._pending.clear()
        self._deferred.clear()
        self._early.clear()
        self._claimed_packed.clear()
        self._claimed_bytes = 0
        self._pending_bytes = 0

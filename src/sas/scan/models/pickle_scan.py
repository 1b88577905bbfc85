"""Pickle and joblib files: a streaming opcode analyzer that never unpickles.

Why hand-written and not ``pickletools.genops`` or fickling: genops builds a Python object per opcode and
reads every string and bytes payload into memory (7.9 s and 11 MB on a 35 MB, 14 M-opcode pickle; fickling
needs 83 s and 2.7 GB), and neither tracks the memo and the stack well enough to resolve ``STACK_GLOBAL``
operands fetched through ``BINGET``. This analyzer walks the opcodes of every pickle in a stream (protocols
0 to 5) in one tight loop over a 1 MiB window, simulating only what decides a verdict:

* the stack and the mark stack, holding short strings, globals and call results (everything else is an
  opaque placeholder), so that ``STACK_GLOBAL`` operands and ``REDUCE``/``NEWOBJ``/``INST``/``OBJ`` targets are
  known statically, or known to be *un*known (itself a finding);
* the memo, with the exact ``len(memo)`` arithmetic ``MEMOIZE`` relies on, storing only values that matter;
* joblib's inline arrays: after a ``NumpyArrayWrapper`` is built, the raw array bytes (or, for object arrays,
  a nested pickle) follow in the stream; their size comes from the wrapper's shape and dtype state.

Large payloads (``BINBYTES8`` and friends) are skipped in chunks and never held; the memo and the stacks are
capped, and crossing a cap turns what was lost into "unknown", which fails closed. After a parse error the
analyzer keeps what it saw (a payload before garbage has already run in a real loader) and resynchronises on
the next protocol header, so a pickle hidden after junk is still read.
"""

from __future__ import annotations

import hashlib
import io
import pickletools
import re
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import Component, Location, make_finding
from sas.scan.magic import Kind, sniff
from sas.scan.models.pickle_policy import DANGEROUS_IF_CALLED, NESTED_LOADERS, Level, PicklePolicy, Verdict
from sas.scan.rules import FORMAT_MISMATCH, INCOMPLETE_FILE, INCOMPLETE_MODEL, Rule, rule
from sas.taxonomy import Severity, Threat

_REFS = ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "OWASP ML Top 10 ML06", "CWE-502")
_FIX = (
    "Do not load this file. Re-export the model in a format that cannot run code (safetensors, ONNX, "
    "skops), or rebuild it from a trusted source; load pickles only with a restricted unpickler."
)

CALLS_DANGEROUS = rule(
    "SAS-PKL-001",
    "Pickle calls a code-running callable",
    Severity.CRITICAL,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "Loading this pickle calls a function that runs commands or code, opens files or sockets, or loads a "
    "nested payload (os.system, eval, runpy, pickle.loads...). Loading the file runs the attacker's code.",
    _FIX,
    _REFS,
)
IMPORTS_DANGEROUS = rule(
    "SAS-PKL-002",
    "Pickle imports a code-running global",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The pickle imports a code-running object without calling it directly; it can still be handed to "
    "another callable (a defaultdict factory, a partial) that calls it while or after loading.",
    _FIX,
    _REFS,
)
UNKNOWN_GLOBAL = rule(
    "SAS-PKL-003",
    "Pickle references a global outside the allow list",
    Severity.MEDIUM,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The pickle imports a class or function that ordinary numpy, scikit-learn, SciPy, torch, XGBoost, "
    "LightGBM or Keras artifacts do not use. It may be your own class; it may also be a gadget. Standard "
    "library functions called while loading are reported high.",
    "Check that the global is your own code; if so, add it to [scan.pickle] allow in sas.toml.",
    _REFS,
)
DYNAMIC_TARGET = rule(
    "SAS-PKL-004",
    "Pickle import or call target is not statically known",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "A STACK_GLOBAL takes operands that are not plain strings, or REDUCE/NEWOBJ calls something that is not "
    "an imported global (the result of another call). Ordinary picklers never do this; it is how payloads "
    "hide their target from scanners.",
    _FIX,
    _REFS,
)
EXTENSION_CODE = rule(
    "SAS-PKL-005",
    "Pickle uses the copyreg extension registry",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "EXT1/EXT2/EXT4 opcodes import whatever global the loading process registered under a number; the "
    "target cannot be checked statically and no ordinary pickler emits them.",
    _FIX,
    _REFS,
)
BUILD_ON_GLOBAL = rule(
    "SAS-PKL-006",
    "Pickle writes attributes of an imported object",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "A BUILD opcode applies state directly to an imported class, function or module instead of a new "
    "instance, which overwrites attributes of live code (monkey-patching on load).",
    _FIX,
    _REFS,
)
NESTED_PAYLOAD = rule(
    "SAS-PKL-007",
    "Pickle loads a nested payload that could not be analysed",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The pickle hands an embedded serialized payload to a nested loader; the payload was too large or not "
    "a literal, so its content was not checked.",
    _FIX,
    _REFS,
)
PERSISTENT_ID = rule(
    "SAS-PKL-008",
    "Plain pickle uses persistent ids",
    Severity.LOW,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "PERSID/BINPERSID ask the loader's persistent_load hook for objects; outside torch checkpoints this is "
    "unusual and depends on code the file does not contain.",
    "Make sure the loader's persistent_load hook only returns data.",
    ("CWE-502",),
)
SEVERAL_PICKLES = rule(
    "SAS-PKL-009",
    "Several pickles in one stream",
    Severity.LOW,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The file holds more than one pickle back to back. Scanners that stop at the first STOP opcode miss "
    "the others, and a loader that calls pickle.load repeatedly runs them all; each was analysed.",
    "Check how the file is loaded; prefer one pickle per file.",
    ("CWE-502",),
)

CHUNK = 1 << 20
MAX_STRING = 256  # longer strings cannot be module or attribute names: kept as opaque values
MEMO_CAP = 200_000  # memo entries holding a value we track (strings, globals)
STACK_CAP = 1_000_000
META_CAP = 100_000
TUPLE_CAP = 64
DICT_CAP = 64
CAPTURE_CAP = 32 << 20  # embedded payloads handed to nested loaders, analysed in memory up to this total
MAX_NESTING = 3
MAX_FINDINGS = 100
MAX_GLOBALS = 10_000  # distinct globals remembered per stream


class _Opaque:
    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return self.label


OTHER = _Opaque("...")  # a value we do not track
UNKNOWN = _Opaque("<unknown>")  # a value we lost (capped memo or stack): never trusted
NONE_VALUE = _Opaque("None")  # None, told apart from other values in tracking mode only


class Global:
    __slots__ = ("module", "name", "path", "verdict")

    def __init__(self, module: str, name: str, verdict: Verdict) -> None:
        self.module = module
        self.name = name
        self.path = f"{module}.{name}"
        self.verdict = verdict

    def __repr__(self) -> str:
        return self.path


class Call:
    """The result of REDUCE/NEWOBJ/INST/OBJ: what was called, with which arguments, and any BUILD state."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: object, args: object) -> None:
        self.func = func
        self.args = args
        self.state: object = None

    def __repr__(self) -> str:
        return f"{self.func!r}(...)"


class Blob:
    """An embedded bytes payload captured because a nested loader is on the stack."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def __repr__(self) -> str:
        return f"<{len(self.data)} bytes>"


class _ParseError(Exception):
    pass


class _Bottomless(list[object]):
    """A stack whose bottom was dropped (cap reached): reads below it give UNKNOWN instead of failing."""

    def pop(self, index: int = -1) -> object:  # type: ignore[override]
        return super().pop(index) if self else UNKNOWN

    def __getitem__(self, index: Any) -> Any:
        try:
            return super().__getitem__(index)
        except IndexError:
            return UNKNOWN

    def __setitem__(self, index: Any, value: Any) -> None:
        if not self and isinstance(index, int):
            self.append(value)
        else:
            super().__setitem__(index, value)


@dataclass
class Hit:
    rule: Rule
    severity: Severity
    message: str
    evidence: str
    offset: int


@dataclass
class PickleReport:
    """What one stream held: verdict material for findings, and statistics."""

    hits: list[Hit] = field(default_factory=list)
    pickles: int = 0
    opcodes: int = 0
    bytes_read: int = 0
    sha256: str = ""
    error: str | None = None
    error_offset: int = -1
    first_opcode_invalid: bool = False
    persistent_ids: int = 0
    trailing_data: bool = False  # the error is data after a complete pickle, not a broken pickle
    end_offset: int = -1  # stream offset just after the last STOP read (exact when max_pickles stopped the scan)
    joblib: bool = False
    globals_seen: dict[str, Verdict] = field(default_factory=dict)
    nested: list[tuple[str, PickleReport]] = field(default_factory=list)

    @property
    def worst(self) -> Severity | None:
        sevs = [h.severity for h in self.hits] + [r.worst for _, r in self.nested if r.worst is not None]
        return max(sevs, default=None)


# --- opcode tables ---------------------------------------------------------------------------------------------
# Opcodes that push one untracked value and take a fixed-size argument: opcode -> total length.
_SIMPLE_BASE = {
    ord("K"): 2,  # BININT1
    ord("M"): 3,  # BININT2
    ord("J"): 5,  # BININT
    ord("G"): 9,  # BINFLOAT
    ord("N"): 1,  # NONE
    0x88: 1,  # NEWTRUE
    0x89: 1,  # NEWFALSE
    ord("]"): 1,  # EMPTY_LIST
    ord("}"): 1,  # EMPTY_DICT
    0x8F: 1,  # EMPTY_SET
    0x97: 1,  # NEXT_BUFFER
}
_SIMPLE = [0] * 256
for _op, _n in _SIMPLE_BASE.items():
    _SIMPLE[_op] = _n
# In tracking mode (joblib arrays), integers and dicts carry values, so they leave the fast path.
_SIMPLE_TRACK = list(_SIMPLE)
for _op in (ord("K"), ord("M"), ord("J"), ord("}"), ord("N")):
    _SIMPLE_TRACK[_op] = 0

_VALID = frozenset(
    b"(.012FIJKLMNPQRSTUVXabcdeghijlopqrstu}])\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d"
    b"\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98BCGi"
)

_DTYPE_RE = re.compile(rb"[<>|=]?([a-zA-Z?])(\d*)(?:\[\w+\])?")  # whole descr: "i4,O" is not "i4"
_JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_TRACK_TRIGGERS = frozenset({"numpy.dtype", "numpy.core.multiarray.dtype", "numpy._core.multiarray.dtype"})
_UFUNC_RECONSTRUCT = frozenset({"numpy.core._ufunc_reconstruct", "numpy._core._ufunc_reconstruct"})


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None


def _render(value: object, depth: int = 0) -> str:
    if isinstance(value, bytes):
        return repr(value.decode("utf-8", "replace"))
    if isinstance(value, tuple) and depth < 2:
        return "(" + ", ".join(_render(v, depth + 1) for v in value[:6]) + (", ..." if len(value) > 6 else "") + ")"
    if isinstance(value, int | Global | Call | Blob | _Opaque):
        return repr(value)
    return "..."


def _call_evidence(func: Global, args: object) -> str:
    rendered = _render(args) if isinstance(args, tuple) else "(...)"
    text = f"{func.path}{rendered}"
    return text if len(text) <= 160 else text[:157] + "..."


class _Source:
    """Chunked reads that feed the SHA-256 of everything read."""

    __slots__ = ("eof", "hasher", "stream", "total")

    def __init__(self, stream: IO[bytes], hasher: hashlib._Hash | None) -> None:
        self.stream = stream
        self.hasher = hasher
        self.total = 0
        self.eof = False

    def read(self, n: int) -> bytes:
        if self.eof:
            return b""
        data = self.stream.read(n)
        if not data:
            self.eof = True
            return b""
        if self.hasher is not None:
            self.hasher.update(data)
        self.total += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


@dataclass
class _Frame:
    stack: list[object]
    metastack: list[list[object]]
    memo: dict[int, object]
    memo_n: int
    sparse: set[int]


class PickleScanner:
    """Analyses one stream. Create one per file (it holds per-stream state)."""

    def __init__(
        self,
        policy: PicklePolicy,
        *,
        torch_context: bool = False,
        max_pickles: int | None = None,
        nesting: int = 0,
    ) -> None:
        self.policy = policy
        self.torch_context = torch_context
        self.max_pickles = max_pickles
        self.nesting = nesting
        self.report = PickleReport()
        self._hit_keys: dict[tuple[str, str], Hit] = {}
        self._global_use: dict[str, tuple[Global, int, bool, object]] = {}
        self.salvage = False
        self.track = False
        self.capture_budget = CAPTURE_CAP  # embedded payloads kept for nested analysis, in total per stream

    # --- findings -----------------------------------------------------------------------------------------------
    def _hit(self, rule_: Rule, message: str, evidence: str, offset: int, severity: Severity | None = None) -> None:
        key = (rule_.id, evidence)
        sev = severity or rule_.severity
        old = self._hit_keys.get(key)
        if old is not None:
            if sev > old.severity:
                old.severity = sev
                old.message = message
            return
        if len(self._hit_keys) >= MAX_FINDINGS:
            return
        hit = Hit(rule_, sev, message, evidence, offset)
        self._hit_keys[key] = hit
        self.report.hits.append(hit)

    def _see_global(self, g: Global, offset: int) -> None:
        if g.path == _JOBLIB_WRAPPER:
            self.report.joblib = True
            self.track = True
        elif g.path in _TRACK_TRIGGERS:  # a dtype built now may size a joblib array later (through the memo)
            self.track = True
        if g.path in self._global_use:
            return
        if len(self._global_use) >= MAX_GLOBALS:
            # thousands of distinct globals: keep memory bounded, still report the dangerous ones directly
            if g.verdict.level == Level.DANGEROUS:
                self._hit(IMPORTS_DANGEROUS, f"imports {g.path} at byte {offset}: {g.verdict.reason}", g.path, offset)
            return
        self.report.globals_seen.setdefault(g.path, g.verdict)
        self._global_use[g.path] = (g, offset, False, None)

    def _called(self, func: object, args: object, offset: int, how: str) -> None:
        if isinstance(func, Global):
            if func.path in self._global_use:
                g, first, _, _ = self._global_use[func.path]
                self._global_use[func.path] = (g, first, True, args)
            elif func.verdict.level == Level.DANGEROUS:
                self._hit(
                    CALLS_DANGEROUS,
                    f"calls {func.path} at byte {offset}: {func.verdict.reason}",
                    _call_evidence(func, args),
                    offset,
                )
            if func.path in DANGEROUS_IF_CALLED:
                self._hit(
                    CALLS_DANGEROUS,
                    f"{how} at byte {offset} calls {func.path}: {DANGEROUS_IF_CALLED[func.path]}",
                    _call_evidence(func, args),
                    offset,
                )
            elif func.path in _UFUNC_RECONSTRUCT:
                self._check_import_by_name(func, args, offset)
            elif func.path in NESTED_LOADERS:
                self._nested(func, args, offset)
            return
        if self.salvage:
            return
        if isinstance(func, Call) and isinstance(func.func, Global):
            target = f"the result of {func.func.path}(...)"
        elif isinstance(func, Call):
            target = "the result of another call"
        elif func is UNKNOWN:
            target = "a value the analysis could not keep (memo or stack cap)"
        else:
            target = f"a non-global value ({_render(func)})"
        self._hit(
            DYNAMIC_TARGET,
            f"{how} at byte {offset} calls {target}, not an imported global",
            f"{how} on computed callable",
            offset,
        )

    def _check_import_by_name(self, func: Global, args: object, offset: int) -> None:
        """numpy's _ufunc_reconstruct(module, name) imports ``module`` and returns its attribute ``name``."""
        if isinstance(args, tuple) and len(args) >= 2:
            module, name = _text(args[0]), _text(args[1])
            if module is not None and name is not None:
                verdict = self.policy.judge(module, name)
                if module.split(".")[0] in ("numpy", "scipy") and verdict.level != Level.DANGEROUS:
                    return
                g = Global(module, name, verdict)
                self._see_global(g, offset)
                if verdict.level == Level.DANGEROUS:
                    self._hit(
                        CALLS_DANGEROUS,
                        f"{func.path} at byte {offset} imports {g.path} by name: {verdict.reason}",
                        g.path,
                        offset,
                    )
                return
        self._hit(
            DYNAMIC_TARGET,
            f"{func.path} at byte {offset} imports a module chosen at load time",
            f"{func.path} with non-literal arguments",
            offset,
        )

    def _nested(self, func: Global, args: object, offset: int) -> None:
        blob = args[0] if isinstance(args, tuple) and args else None
        if isinstance(blob, Blob) and self.nesting < MAX_NESTING:
            inner = scan_bytes(blob.data, self.policy, nesting=self.nesting + 1)
            label = f"{func.path}@{blob.offset}"
            self.report.nested.append((label, inner))
            return
        self._hit(
            NESTED_PAYLOAD,
            f"{func.path} at byte {offset} loads an embedded payload that was not analysed",
            f"{func.path}(<payload>)",
            offset,
        )

    def _finish_globals(self) -> None:
        for path, (g, offset, called, args) in self._global_use.items():
            v = g.verdict
            if v.level == Level.DANGEROUS:
                if called:
                    self._hit(
                        CALLS_DANGEROUS,
                        f"calls {path} at byte {offset}: {v.reason}",
                        _call_evidence(g, args) if args is not None else path,
                        offset,
                    )
                else:
                    self._hit(IMPORTS_DANGEROUS, f"imports {path} at byte {offset}: {v.reason}", path, offset)
            elif v.level == Level.UNKNOWN:
                sev = Severity.HIGH if (called and v.stdlib) else Severity.MEDIUM
                what = "calls standard-library function" if sev == Severity.HIGH else "references"
                self._hit(
                    UNKNOWN_GLOBAL, f"{what} {path} (byte {offset}), which is not on the allow list", path, offset, sev
                )

    # --- the opcode loop ----------------------------------------------------------------------------------------
    def scan(self, stream: IO[bytes], hasher: hashlib._Hash | None = None, *, drain: bool = True) -> PickleReport:
        src = _Source(stream, hasher)
        try:
            self._run(src)
        finally:
            if drain:
                src.drain()
        self._finish_globals()
        rep = self.report
        rep.bytes_read = src.total
        if hasher is not None:
            rep.sha256 = hasher.hexdigest()
        if rep.pickles > 1 and not self.torch_context and self.max_pickles is None:
            self._hit(
                SEVERAL_PICKLES,
                f"the stream holds {rep.pickles} pickles; every one was analysed",
                f"{rep.pickles} pickles",
                0,
            )
        if rep.persistent_ids and not self.torch_context:
            self._hit(PERSISTENT_ID, f"{rep.persistent_ids} persistent id reference(s)", "persistent ids", 0)
        return rep

    # Buffer helpers: they return the new (buf, pos, base) instead of closing over them, so that the hot loop's
    # variables stay fast locals. ``pos`` indexes ``buf``; ``base`` is the stream offset of ``buf[0]``.
    @staticmethod
    def _ensure(src: _Source, buf: bytes, pos: int, base: int, need_end: int) -> tuple[bytes, int, int]:
        """Make ``buf`` hold bytes up to buf-relative ``need_end`` (or all that is left); compacts to ``pos``."""
        if need_end <= len(buf):
            return buf, pos, base
        if pos > 0:
            buf = buf[pos:]
            base += pos
            need_end -= pos
            pos = 0
        parts = [buf]
        have = len(buf)
        while have < need_end:
            more = src.read(max(CHUNK, need_end - have))
            if not more:
                break
            parts.append(more)
            have += len(more)
        return b"".join(parts), pos, base

    @staticmethod
    def _skip(src: _Source, buf: bytes, pos: int, base: int, count: int) -> tuple[bytes, int, int, bool]:
        """Advance past ``count`` bytes without keeping them (read and discarded in chunks)."""
        end = pos + count
        if end <= len(buf):
            return buf, end, base, True
        remaining = end - len(buf)
        base += len(buf)
        while remaining > 0:
            data = src.read(CHUNK)
            if not data:
                return b"", 0, base, False
            if len(data) > remaining:
                return data, remaining, base, True
            remaining -= len(data)
            base += len(data)
        return b"", 0, base, True

    def _readline(
        self, src: _Source, buf: bytes, start: int, base: int, cap: int = 1 << 16
    ) -> tuple[bytes | None, bytes, int, int]:
        """The line starting at ``buf[start]`` and the position after it; the line is None (and skipped)
        when longer than ``cap``."""
        while True:
            nl = buf.find(b"\n", start)
            if nl >= 0:
                return buf[start:nl], buf, nl + 1, base
            if len(buf) - start > cap:
                break
            if src.eof:
                raise _ParseError("unterminated text argument")
            buf, start, base = self._ensure(src, buf, start, base, len(buf) - start + CHUNK)
        while True:  # too long to be useful: discard up to the newline
            nl = buf.find(b"\n", start)
            if nl >= 0:
                return None, buf, nl + 1, base
            base += len(buf)
            buf = src.read(CHUNK)
            start = 0
            if not buf:
                raise _ParseError("unterminated text argument")

    def _run(self, src: _Source) -> None:
        rep = self.report
        buf = src.read(CHUNK)
        base = 0
        pos = 0
        if not buf:
            rep.error = "empty stream"
            rep.error_offset = 0
            rep.first_opcode_invalid = True
            return
        stack: list[object] = []
        metastack: list[list[object]] = []
        memo: dict[int, object] = {}
        memo_n = 0
        sparse: set[int] = set()
        memo_full = False
        memo_lost = False
        frames: list[_Frame] = []
        simple = _SIMPLE_TRACK if self.track else _SIMPLE
        opcodes = 0
        in_pickle = False
        max_pickles = self.max_pickles
        capture_armed = False  # a nested loader global was just pushed: keep the next payload for analysis
        ensure = self._ensure
        skip = self._skip
        readline = self._readline
        ok = True
        seg_mark = 0  # the opcode count at the last STOP
        limit = -1  # pos above this: refill or end of stream (set to -1 whenever buf changes in a slow path)
        args: object

        while True:  # one round per segment: the start, and each resynchronisation after an error
            try:
                while True:
                    if pos > limit:
                        limit = len(buf) - 64  # every opcode with a fixed-size argument fits below this
                    if pos > limit:
                        limit = -1
                        if not src.eof:
                            buf, pos, base = ensure(src, buf, pos, base, pos + CHUNK)
                            limit = -1
                            if len(memo) >= MEMO_CAP:
                                memo_full = True
                            if len(stack) > STACK_CAP or len(metastack) > META_CAP:
                                stack = _Bottomless(stack[-1000:])
                                metastack = [_Bottomless(s) for s in metastack[-1000:]]
                        if pos >= len(buf):
                            if pos > len(buf):
                                raise _ParseError("truncated: the stream ends inside an opcode argument")
                            if in_pickle or stack or metastack:
                                raise _ParseError("truncated: the stream ends inside a pickle (no STOP)")
                            rep.opcodes += opcodes
                            return
                        limit = len(buf) - 64
                    op = buf[pos]
                    n = simple[op]
                    if n:
                        stack.append(OTHER)
                        pos += n
                        opcodes += 1
                        continue
                    opcodes += 1
                    if op == 0x8C:  # SHORT_BINUNICODE
                        end = pos + 2 + buf[pos + 1]
                        if end > limit + 64:  # limit is len(buf) - 64 here: it was just checked
                            buf, pos, base = ensure(src, buf, pos, base, end)
                            limit = -1
                            end = pos + 2 + buf[pos + 1]
                            if end > len(buf):
                                raise _ParseError("truncated string")
                        stack.append(buf[pos + 2 : end])
                        pos = end
                        continue
                    if op == 0x94:  # MEMOIZE: key is len(memo)
                        value = stack[-1]
                        if memo_lost:
                            key = -1
                        elif sparse:
                            key = memo_n + len(sparse)
                            if key == memo_n:
                                memo_n += 1
                                while memo_n in sparse:
                                    sparse.discard(memo_n)
                                    memo_n += 1
                            elif key not in sparse:
                                sparse.add(key)
                        else:
                            key = memo_n
                            memo_n += 1
                        if value is not OTHER and key >= 0:
                            tv = type(value)
                            if tv is bytes or tv is Global or value is UNKNOWN or (self.track and tv is Call):
                                if not memo_full:  # the cap is enforced at each refill (at most ~1 MiB later)
                                    memo[key] = value
                            else:
                                memo.pop(key, None)
                        elif key in memo:
                            del memo[key]
                        pos += 1
                        continue
                    if op == 0x28:  # MARK
                        metastack.append(stack)
                        stack = [] if type(stack) is list else _Bottomless()
                        pos += 1
                        continue
                    if op in {0x65, 0x90}:  # APPENDS, ADDITEMS
                        stack = metastack.pop() if metastack or type(stack) is list else _Bottomless()
                        pos += 1
                        continue
                    in_pickle = True
                    if op == 0x75:  # SETITEMS
                        items = stack
                        stack = metastack.pop() if metastack or type(stack) is list else _Bottomless()
                        if self.track and stack and type(stack[-1]) is dict:
                            target: dict[object, object] = stack[-1]
                            for i in range(0, min(len(items), DICT_CAP * 2) - 1, 2):
                                if type(items[i]) is bytes:
                                    target[items[i]] = _flat(items[i + 1])
                        pos += 1
                    elif op == 0x61:  # APPEND
                        stack.pop()
                        pos += 1
                    elif op in {0x68, 0x6A, 0x67}:  # BINGET, LONG_BINGET, GET
                        if op == 0x68:
                            key = buf[pos + 1]
                            pos += 2
                        elif op == 0x6A:
                            key = int.from_bytes(buf[pos + 1 : pos + 5], "little")
                            pos += 5
                        else:
                            line, buf, pos, base = readline(src, buf, pos + 1, base)
                            limit = -1
                            key = _int_arg(line)
                        got = memo.get(key, OTHER)
                        if got is OTHER:
                            if memo_lost or memo_full:
                                got = UNKNOWN
                            elif not (key < memo_n or key in sparse):
                                raise _ParseError(f"memo key {key} was never stored")
                        stack.append(got)
                    elif op in {0x71, 0x72, 0x70}:  # BINPUT, LONG_BINPUT, PUT
                        if op == 0x71:
                            key = buf[pos + 1]
                            pos += 2
                        elif op == 0x72:
                            key = int.from_bytes(buf[pos + 1 : pos + 5], "little")
                            pos += 5
                        else:
                            line, buf, pos, base = readline(src, buf, pos + 1, base)
                            limit = -1
                            key = _int_arg(line)
                            if key < 0:
                                raise _ParseError("negative memo key")
                        value = stack[-1]
                        if not memo_lost:
                            if key == memo_n:
                                memo_n += 1
                                while sparse and memo_n in sparse:
                                    sparse.discard(memo_n)
                                    memo_n += 1
                            elif key > memo_n:
                                if len(sparse) >= MEMO_CAP:
                                    memo_lost = True  # len(memo) is no longer known: MEMOIZE keys are lost
                                else:
                                    sparse.add(key)
                        tv = type(value)
                        if tv is bytes or tv is Global or value is UNKNOWN or (self.track and tv is Call):
                            if len(memo) < MEMO_CAP or key in memo:
                                memo[key] = value
                            else:
                                memo_full = True
                        else:
                            memo.pop(key, None)
                    elif op == 0x95:  # FRAME
                        pos += 9
                    elif op == 0x2E:  # STOP
                        pos += 1
                        if frames:  # the end of a nested joblib object-array pickle: back to the outer one
                            frame = frames.pop()
                            stack, metastack = frame.stack, frame.metastack
                            memo, memo_n, sparse = frame.memo, frame.memo_n, frame.sparse
                            continue
                        stack = []
                        metastack = []
                        in_pickle = False
                        rep.pickles += 1
                        rep.end_offset = base + pos
                        seg_mark = opcodes
                        if max_pickles is not None and rep.pickles >= max_pickles:
                            rep.opcodes += opcodes
                            return
                        continue
                    elif op == 0x80:  # PROTO
                        if buf[pos + 1] > 5:
                            raise _ParseError(f"unsupported protocol {buf[pos + 1]}")
                        pos += 2
                    elif op == 0x85:  # TUPLE1
                        stack[-1] = (_flat(stack[-1]),)
                        pos += 1
                    elif op == 0x86:  # TUPLE2
                        b2 = stack.pop()
                        stack[-1] = (_flat(stack[-1]), _flat(b2))
                        pos += 1
                    elif op == 0x87:  # TUPLE3
                        c3 = stack.pop()
                        b3 = stack.pop()
                        stack[-1] = (_flat(stack[-1]), _flat(b3), _flat(c3))
                        pos += 1
                    elif op == 0x29:  # EMPTY_TUPLE
                        stack.append(())
                        pos += 1
                    elif op in {0x74, 0x6C, 0x64, 0x91}:  # TUPLE, LIST, DICT, FROZENSET
                        items = stack
                        stack = metastack.pop() if metastack or type(stack) is list else _Bottomless()
                        if op == 0x74:
                            stack.append(tuple(map(_flat, items)) if len(items) <= TUPLE_CAP else OTHER)
                        elif op == 0x64 and self.track:
                            made: dict[object, object] = {}
                            for i in range(0, min(len(items), DICT_CAP * 2) - 1, 2):
                                if type(items[i]) is bytes:
                                    made[items[i]] = _flat(items[i + 1])
                            stack.append(made)
                        else:
                            stack.append(OTHER)
                        pos += 1
                    elif op == 0x73:  # SETITEM
                        v = stack.pop()
                        k = stack.pop()
                        if self.track and stack and type(stack[-1]) is dict and type(k) is bytes:
                            target = stack[-1]
                            if len(target) < DICT_CAP:
                                target[k] = _flat(v)
                        pos += 1
                    elif op == 0x93:  # STACK_GLOBAL
                        name_v = stack.pop()
                        module_v = stack.pop()
                        offset = base + pos
                        if type(module_v) is bytes and type(name_v) is bytes:
                            g = self._make_global(
                                module_v.decode("utf-8", "replace"), name_v.decode("utf-8", "replace"), offset
                            )
                            capture_armed = g.path in NESTED_LOADERS
                            if self.track:
                                simple = _SIMPLE_TRACK
                            stack.append(g)
                        else:
                            if not self.salvage:
                                self._hit(
                                    DYNAMIC_TARGET,
                                    f"STACK_GLOBAL at byte {offset} imports a name that is not a literal string "
                                    f"(module {_render(module_v)}, name {_render(name_v)})",
                                    "STACK_GLOBAL with non-literal operands",
                                    offset,
                                )
                            stack.append(UNKNOWN)
                        pos += 1
                    elif op in {0x63, 0x69}:  # GLOBAL, INST
                        offset = base + pos
                        mline, buf, pos, base = readline(src, buf, pos + 1, base)
                        limit = -1
                        nline, buf, pos, base = readline(src, buf, pos, base)
                        limit = -1
                        if mline is None or nline is None:
                            raise _ParseError("GLOBAL/INST name too long")
                        g = self._make_global(
                            mline.decode("utf-8", "replace"), nline.decode("utf-8", "replace"), offset
                        )
                        if self.track:
                            simple = _SIMPLE_TRACK
                        if op == 0x63:
                            capture_armed = g.path in NESTED_LOADERS
                            stack.append(g)
                        else:
                            items = stack
                            stack = metastack.pop() if metastack or type(stack) is list else _Bottomless()
                            args = tuple(map(_flat, items[:TUPLE_CAP]))
                            self._called(g, args, offset, "INST")
                            stack.append(Call(g, args))
                    elif op == 0x52:  # REDUCE
                        args = stack.pop()
                        func = stack[-1]
                        self._called(func, args, base + pos, "REDUCE")
                        stack[-1] = Call(_callee(func), args)
                        pos += 1
                    elif op == 0x81:  # NEWOBJ
                        args = stack.pop()
                        cls = stack[-1]
                        self._called(cls, args, base + pos, "NEWOBJ")
                        stack[-1] = Call(_callee(cls), args)
                        pos += 1
                    elif op == 0x92:  # NEWOBJ_EX
                        stack.pop()  # kwargs
                        args = stack.pop()
                        cls = stack[-1]
                        self._called(cls, args, base + pos, "NEWOBJ_EX")
                        stack[-1] = Call(_callee(cls), args)
                        pos += 1
                    elif op == 0x6F:  # OBJ
                        items = stack
                        stack = metastack.pop() if metastack or type(stack) is list else _Bottomless()
                        if not items:
                            raise _ParseError("OBJ without a class")
                        args = tuple(map(_flat, items[1 : TUPLE_CAP + 1]))
                        self._called(items[0], args, base + pos, "OBJ")
                        stack.append(Call(_callee(items[0]), args))
                        pos += 1
                    elif op == 0x62:  # BUILD
                        state = stack.pop()
                        target_v = stack[-1]
                        offset = base + pos
                        pos += 1
                        if type(target_v) is Global:
                            if not self.salvage:
                                self._hit(
                                    BUILD_ON_GLOBAL,
                                    f"BUILD at byte {offset} sets state on {target_v.path} itself",
                                    f"BUILD on {target_v.path}",
                                    offset,
                                )
                        elif type(target_v) is Call:
                            target_v.state = state
                            if self.track and _is_joblib_wrapper(target_v):
                                stack[-1] = OTHER  # the loader swaps the wrapper for the array it reads next
                                plan = _joblib_array_plan(state)
                                if plan is None:
                                    raise _ParseError("joblib array wrapper whose size cannot be computed")
                                nbytes, has_object, aligned = plan
                                if has_object:  # a nested pickle with its own stack and memo follows
                                    frames.append(_Frame(stack, metastack, memo, memo_n, sparse))
                                    stack, metastack, memo, memo_n, sparse = [], [], {}, 0, set()
                                else:
                                    if aligned:
                                        buf, pos, base = ensure(src, buf, pos, base, pos + 1)
                                        limit = -1
                                        if pos >= len(buf):
                                            raise _ParseError("truncated joblib array padding")
                                        buf, pos, base, ok = skip(src, buf, pos, base, 1 + buf[pos])
                                        limit = -1
                                    if ok:
                                        buf, pos, base, ok = skip(src, buf, pos, base, nbytes)
                                        limit = -1
                                    if not ok:
                                        raise _ParseError("truncated joblib array data")
                    elif op in {0x42, 0x43, 0x8E, 0x96, 0x54, 0x55}:
                        # BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8; BINSTRING, SHORT_BINSTRING (py2 str)
                        offset = base + pos
                        if op in {0x43, 0x55}:
                            hdr, size = 2, buf[pos + 1]
                        elif op in {0x42, 0x54}:
                            hdr, size = 5, int.from_bytes(buf[pos + 1 : pos + 5], "little", signed=True)
                        else:
                            hdr, size = 9, int.from_bytes(buf[pos + 1 : pos + 9], "little")
                        if size < 0:
                            raise _ParseError("negative length")
                        if (op in {0x54, 0x55}) and size <= MAX_STRING:
                            buf, pos, base = ensure(src, buf, pos, base, pos + hdr + size)
                            limit = -1
                            if pos + hdr + size > len(buf):
                                raise _ParseError("truncated string")
                            stack.append(buf[pos + hdr : pos + hdr + size])
                            pos += hdr + size
                        elif capture_armed and size <= self.capture_budget:
                            buf, pos, base = ensure(src, buf, pos, base, pos + hdr + size)
                            limit = -1
                            if pos + hdr + size > len(buf):
                                raise _ParseError("truncated bytes payload")
                            stack.append(Blob(buf[pos + hdr : pos + hdr + size], offset))
                            self.capture_budget -= size
                            pos += hdr + size
                            capture_armed = False
                        else:
                            buf, pos, base, ok = skip(src, buf, pos, base, hdr + size)
                            limit = -1
                            if not ok:
                                raise _ParseError("truncated bytes payload")
                            stack.append(OTHER)
                    elif op in {0x58, 0x8D}:  # BINUNICODE, BINUNICODE8
                        hdr = 5 if op == 0x58 else 9
                        size = int.from_bytes(buf[pos + 1 : pos + hdr], "little")
                        if size <= MAX_STRING or (capture_armed and size <= self.capture_budget):
                            buf, pos, base = ensure(src, buf, pos, base, pos + hdr + size)
                            limit = -1
                            if pos + hdr + size > len(buf):
                                raise _ParseError("truncated string")
                            data = buf[pos + hdr : pos + hdr + size]
                            if size <= MAX_STRING:
                                stack.append(data)
                            else:  # protocol 2 bytes: _codecs.encode(text, "latin1")
                                stack.append(Blob(_latin1(data), base + pos))
                                self.capture_budget -= size
                                capture_armed = False
                            pos += hdr + size
                        else:
                            buf, pos, base, ok = skip(src, buf, pos, base, hdr + size)
                            limit = -1
                            if not ok:
                                raise _ParseError("truncated string")
                            stack.append(OTHER)
                    elif op == 0x4B:  # BININT1 (tracking mode)
                        stack.append(buf[pos + 1])
                        pos += 2
                    elif op == 0x4D:  # BININT2 (tracking mode)
                        stack.append(int.from_bytes(buf[pos + 1 : pos + 3], "little"))
                        pos += 3
                    elif op == 0x4A:  # BININT (tracking mode)
                        stack.append(int.from_bytes(buf[pos + 1 : pos + 5], "little", signed=True))
                        pos += 5
                    elif op == 0x4E:  # NONE (tracking mode)
                        stack.append(NONE_VALUE)
                        pos += 1
                    elif op == 0x7D:  # EMPTY_DICT (tracking mode)
                        stack.append({})
                        pos += 1
                    elif op == 0x8A:  # LONG1
                        ln = buf[pos + 1]
                        buf, pos, base = ensure(src, buf, pos, base, pos + 2 + ln)
                        limit = -1
                        if ln <= 8:
                            stack.append(int.from_bytes(buf[pos + 2 : pos + 2 + ln], "little", signed=True))
                        else:
                            stack.append(OTHER)
                        pos += 2 + ln
                    elif op == 0x8B:  # LONG4
                        size = int.from_bytes(buf[pos + 1 : pos + 5], "little", signed=True)
                        if size < 0:
                            raise _ParseError("negative length")
                        buf, pos, base, ok = skip(src, buf, pos, base, 5 + size)
                        limit = -1
                        if not ok:
                            raise _ParseError("truncated long")
                        stack.append(OTHER)
                    elif op == 0x30:  # POP
                        if stack or type(stack) is not list:
                            stack.pop()
                        else:
                            stack = metastack.pop()
                        pos += 1
                    elif op == 0x31:  # POP_MARK
                        stack = metastack.pop() if metastack or type(stack) is list else _Bottomless()
                        pos += 1
                    elif op == 0x32:  # DUP
                        stack.append(stack[-1])
                        pos += 1
                    elif op == 0x51:  # BINPERSID
                        stack[-1] = OTHER
                        rep.persistent_ids += 1
                        pos += 1
                    elif op == 0x50:  # PERSID
                        _line, buf, pos, base = readline(src, buf, pos + 1, base)
                        limit = -1
                        stack.append(OTHER)
                        rep.persistent_ids += 1
                    elif op in {0x82, 0x83, 0x84}:  # EXT1, EXT2, EXT4
                        offset = base + pos
                        width = 1 if op == 0x82 else (2 if op == 0x83 else 4)
                        code = int.from_bytes(buf[pos + 1 : pos + 1 + width], "little")
                        pos += 1 + width
                        if not self.salvage:
                            self._hit(
                                EXTENSION_CODE,
                                f"EXT{width} at byte {offset} imports whatever is registered as extension code {code}",
                                f"EXT{width} {code}",
                                offset,
                            )
                        stack.append(UNKNOWN)
                    elif op == 0x98:  # READONLY_BUFFER
                        pos += 1
                    elif op in {0x49, 0x4C, 0x46, 0x53, 0x56}:
                        # INT, LONG, FLOAT, STRING, UNICODE: protocol 0 text arguments
                        line, buf, pos, base = readline(src, buf, pos + 1, base, 1 << 20)
                        limit = -1
                        if line is None:
                            stack.append(OTHER)
                        elif op == 0x53:
                            s = line.strip()
                            if len(s) < 2 or s[:1] != s[-1:] or s[:1] not in (b"'", b'"'):
                                raise _ParseError("bad STRING argument")
                            stack.append(_unescape(s[1:-1]) if len(s) <= MAX_STRING + 2 else OTHER)
                        elif op == 0x56:
                            try:
                                text = line.decode("raw-unicode-escape").encode("utf-8", "surrogatepass")
                            except UnicodeError:
                                raise _ParseError("bad UNICODE argument") from None
                            stack.append(text if len(text) <= MAX_STRING else OTHER)
                        else:
                            value = _number_arg(op, line)
                            stack.append(value if self.track else OTHER)
                    else:
                        raise _ParseError(f"invalid opcode 0x{op:02x}")
            except (_ParseError, IndexError, KeyError, ValueError, TypeError) as exc:
                # failing on the first opcode after a complete pickle: data after the end, not a broken pickle
                trailing = rep.pickles > 0 and opcodes - seg_mark <= 1
                rep.opcodes += opcodes
                opcodes = 0
                seg_mark = 0
                offset = base + min(pos, len(buf))
                if trailing and src.eof and not buf[pos:].strip(b" \t\r\n\x00"):
                    return  # only padding after the last pickle (old numpy files end with a newline)
                if isinstance(exc, IndexError):
                    message = (
                        "truncated: the stream ends inside a pickle"
                        if src.eof and pos >= len(buf) - 9
                        else "stack underflow (an opcode needs values that are not there)"
                    )
                else:
                    message = str(exc) or type(exc).__name__
                if rep.error is None:
                    rep.error = message
                    rep.error_offset = offset
                    rep.first_opcode_invalid = rep.pickles == 0 and rep.opcodes <= 1
                    rep.trailing_data = trailing
                frames.clear()
                found = self._resync(src, buf, pos + 1, base)
                if found is None:
                    return
                buf, base = found
                pos = 0
                limit = -1
                stack, metastack = [], []
                in_pickle = False
                capture_armed = False
                ok = True
                self.salvage = True

    def _make_global(self, module: str, name: str, offset: int) -> Global:
        g = Global(module, name, self.policy.judge(module, name))
        self._see_global(g, offset)
        return g

    def _resync(self, src: _Source, buf: bytes, start: int, base: int) -> tuple[bytes, int] | None:
        """Find the next ``PROTO 2..5`` header at or after ``start``; return (buffer from it, its offset)."""
        start = min(start, len(buf))
        while True:
            i = start
            while True:
                i = buf.find(b"\x80", i)
                if i < 0 or i + 1 >= len(buf):
                    break
                if 2 <= buf[i + 1] <= 5:
                    return buf[i:], base + i
                i += 1
            keep = buf[-1:] if buf.endswith(b"\x80") else b""
            base += len(buf) - len(keep)
            more = src.read(CHUNK)
            if not more:
                return None
            buf = keep + more
            start = 0


_SCALARS = (bytes, int, Global, Blob, _Opaque)


def _flat(value: object) -> object:
    """What a container may keep of ``value``: scalars, and tuples or calls made only of scalars. Deeper
    structure becomes opaque, so that a chain of TUPLE1 or REDUCE opcodes cannot grow memory without bound."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is tuple:
        return value if all(type(v) in _SCALARS for v in value) else OTHER  # type: ignore[attr-defined]
    if t is Call:
        args = value.args  # type: ignore[attr-defined]
        if type(args) is tuple and all(type(v) in _SCALARS for v in args):
            return value
    return OTHER


def _callee(func: object) -> object:
    """A call result keeps its callable only when it is an imported global (else a chain of calls of calls)."""
    return func if type(func) is Global else OTHER


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _int_arg(line: bytes | None) -> int:
    try:
        return int(line or b"")
    except ValueError:
        raise _ParseError("bad integer argument") from None


def _number_arg(op: int, line: bytes) -> object:
    """Validate a protocol 0 INT, LONG or FLOAT argument as the loader would."""
    try:
        if op == 0x46:
            float(line)
            return OTHER
        if op == 0x4C:
            return int(line[:-1] if line.endswith(b"L") else line)
        return int(line)
    except ValueError:
        raise _ParseError("bad number argument") from None


def _latin1(data: bytes) -> bytes:
    try:
        return data.decode("utf-8").encode("latin-1")
    except UnicodeError:
        return data


def _unescape(text: bytes) -> bytes:
    try:
        return text.decode("unicode_escape").encode("latin-1", "replace")
    except UnicodeError:
        return text


_RECONSTRUCTORS = frozenset({"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"})


def _is_joblib_wrapper(call: Call) -> bool:
    """Whether ``call`` builds a NumpyArrayWrapper, however the instance is made (NEWOBJ, REDUCE on the class,
    or copyreg helpers): joblib checks the built object's type, not the opcode that made it."""
    func = call.func
    if type(func) is not Global:
        return False
    if func.path == _JOBLIB_WRAPPER:
        return True
    if func.path in _RECONSTRUCTORS and type(call.args) is tuple and call.args:
        first = call.args[0]
        return type(first) is Global and first.path == _JOBLIB_WRAPPER
    return False


def _joblib_array_plan(state: object) -> tuple[int, bool, bool] | None:
    """(raw byte count, dtype holds objects, padding byte present) for a NumpyArrayWrapper state dict."""
    if not isinstance(state, dict):
        return None
    shape = state.get(b"shape")
    dtype = state.get(b"dtype")
    # joblib reads a padding byte whenever the attribute is set and not None
    aligned = b"numpy_array_alignment_bytes" in state and state[b"numpy_array_alignment_bytes"] is not NONE_VALUE
    if not isinstance(shape, tuple) or not all(isinstance(x, int) and x >= 0 for x in shape):
        return None
    size = _dtype_size(dtype)
    if size is None:
        return None
    itemsize, has_object = size
    count = 1
    for x in shape:
        count *= x
    return count * itemsize, has_object, aligned


def _dtype_size(dtype: object) -> tuple[int, bool] | None:
    """(itemsize, holds objects) of a pickled ``numpy.dtype(descr, False, True)`` with its BUILD state, following
    NumPy's own rules, since a disagreement would let the array bytes hide opcodes: the state's element size and
    flags count only for flexible kinds (void, bytes, str); numeric kinds take their size from the descr."""
    if not (isinstance(dtype, Call) and isinstance(dtype.func, Global) and dtype.func.path.endswith("dtype")):
        return None
    args = dtype.args
    if not isinstance(args, tuple) or not args or not isinstance(args[0], bytes):
        return None
    m = _DTYPE_RE.fullmatch(args[0])
    kind, digits = (m.group(1), m.group(2)) if m else (b"O", b"")
    state = dtype.state
    if kind == b"O":
        # numpy also spells object-holding dtypes as "object", "i4,O" (a record with an object field) and so on;
        # joblib then reads a pickle, which is what is checked here for anything but a plain single-kind descr
        return 8, True
    if kind in b"VSUa":
        elsize, has_object = -1, False
        if isinstance(state, tuple) and len(state) >= 8:
            if isinstance(state[5], int):
                elsize = state[5]
            has_object = kind == b"V" and isinstance(state[7], int) and bool(state[7] & 1)
        if elsize >= 0:
            return elsize, has_object
        if not digits:
            return None
        return int(digits) * (4 if kind == b"U" else 1), has_object
    if not digits:
        return (1, False) if kind in b"?b" else None
    return int(digits), False


def scan_stream(
    stream: IO[bytes],
    policy: PicklePolicy,
    *,
    hasher: hashlib._Hash | None = None,
    torch_context: bool = False,
    max_pickles: int | None = None,
    nesting: int = 0,
) -> PickleReport:
    """Analyse every pickle in ``stream`` (to its end, or ``max_pickles``) and return what was found."""
    scanner = PickleScanner(policy, torch_context=torch_context, max_pickles=max_pickles, nesting=nesting)
    return scanner.scan(stream, hasher, drain=hasher is not None)


def scan_bytes(data: bytes, policy: PicklePolicy, *, nesting: int = 0, torch_context: bool = False) -> PickleReport:
    """Analyse an embedded payload: a pickle, or a torch zip checkpoint held in memory."""
    if data.startswith(b"PK\x03\x04"):
        from sas.scan.models import torch_scan

        return torch_scan.scan_zip_bytes(data, policy, nesting=nesting)
    if data.startswith(LEGACY_TORCH_MAGIC):
        return scan_stream(io.BytesIO(data), policy, torch_context=True, max_pickles=5, nesting=nesting)
    return scan_stream(io.BytesIO(data), policy, torch_context=torch_context, nesting=nesting)


# --- turning a report into findings ---------------------------------------------------------------------------


def emit(
    report: PickleReport,
    ctx: ScanContext,
    path: str,
    *,
    mismatch_ok: bool = False,
    mismatch_reported: bool = False,
    what: str = "pickle",
) -> None:
    """Add findings for ``report`` (found in the file or member at ``path``) to ``ctx``.

    ``mismatch_ok``: content that is not a pickle at all is a name/content mismatch (the file was picked by
    its name), not a broken pickle; ``mismatch_reported``: someone else (the walker) already says so."""
    for hit in report.hits:
        ctx.add(make_finding(hit.rule, Location(path), hit.message, evidence=hit.evidence, severity=hit.severity))
    for label, inner in report.nested:
        emit(inner, ctx, f"{path}!{label}", what="embedded payload")
    if report.error is not None:
        not_a_pickle = report.first_opcode_invalid and report.pickles == 0 and not report.hits
        if not_a_pickle and mismatch_reported:
            return
        if report.trailing_data and not report.hits:
            ctx.add(
                make_finding(
                    INCOMPLETE_FILE,
                    Location(path),
                    f"data that is not a pickle follows the last pickle (byte {report.error_offset}: "
                    f"{report.error}); it was searched for further pickles",
                    evidence="data after the last pickle",
                )
            )
            return
        if not_a_pickle and mismatch_ok:
            ctx.add(
                make_finding(
                    FORMAT_MISMATCH,
                    Location(path),
                    f"named like a {what} but is not one ({report.error})",
                    evidence=report.error,
                )
            )
        else:
            ctx.add(
                make_finding(
                    INCOMPLETE_MODEL,
                    Location(path),
                    f"{what} analysis stopped at byte {report.error_offset}: {report.error}; what came before "
                    "was analysed, and the rest was searched for further pickles",
                    evidence=report.error,
                )
            )


def policy_for(ctx: ScanContext) -> PicklePolicy:
    return _policy_cache(ctx.settings.pickle_allow, ctx.settings.pickle_deny)


_POLICIES: dict[tuple[tuple[str, ...], tuple[str, ...]], PicklePolicy] = {}


def _policy_cache(allow: tuple[str, ...], deny: tuple[str, ...]) -> PicklePolicy:
    key = (allow, deny)
    policy = _POLICIES.get(key)
    if policy is None:
        policy = PicklePolicy(allow, deny)
        if len(_POLICIES) < 16:
            _POLICIES[key] = policy
    return policy


# --- the analyzer ----------------------------------------------------------------------------------------------

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".pck", ".pcl")
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


def is_legacy_torch(head: bytes) -> bool:
    return head.startswith(LEGACY_TORCH_MAGIC)


_IDENT_PATH = re.compile(r"^[A-Za-z_][\w.]*$")


def imports_early(head: bytes) -> bool:
    """Whether the first bytes of a file the magic sniffer did not recognise parse as pickle opcodes that reach
    an import (GLOBAL/INST with identifier names, or STACK_GLOBAL) before any error: a pickle hidden behind a
    harmless prefix such as ``N0`` (push None, pop), whatever the file is called."""
    if not head or head[0] not in _VALID:
        return False
    try:
        for op, arg, _pos in pickletools.genops(head):
            if op.name in ("GLOBAL", "INST"):
                parts = str(arg).split(" ")
                return len(parts) == 2 and all(_IDENT_PATH.match(p) for p in parts)
            if op.name == "STACK_GLOBAL":
                return True
            if op.name == "STOP":
                return False
    except (ValueError, IndexError, KeyError, UnicodeError, TypeError):
        return False
    return False


_ZFILE_MAGIC = b"ZF0x"
_ZFILE_HEADER = 2 + len(f"{2**64:#x}")


class _ZFileReader(io.RawIOBase):
    """Decompresses an old joblib z-file while hashing its raw bytes; stops at ``limit`` decompressed bytes."""

    def __init__(self, raw: IO[bytes], hasher: hashlib._Hash, limit: int) -> None:
        self._raw = raw
        self._hasher = hasher
        self._limit = limit
        self._z = zlib.decompressobj()
        self._pending = b""
        self._started = False
        self.consumed = 0
        self.produced = 0
        self.problem = ""

    def readable(self) -> bool:
        return True

    def _read_raw(self, n: int) -> bytes:
        data = self._raw.read(n)
        self._hasher.update(data)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        if not self._started:
            self._started = True
            self._read_raw(_ZFILE_HEADER)  # "ZF" and the hex length, padded
            first = self._read_raw(1)
            lead = first if first != b" " else b""  # joblib <= 0.8.4 wrote one more space
        else:
            lead = b""
        while not self._pending and not self._z.eof and not self.problem:
            raw = lead + (self._z.unconsumed_tail or self._read_raw(CHUNK))
            lead = b""
            if not raw:
                self.problem = "z-file ends before its zlib stream does"
                break
            try:
                self._pending = self._z.decompress(raw, CHUNK)
            except zlib.error as exc:
                self.problem = f"z-file data is corrupt: {exc}"
                break
            self.produced += len(self._pending)
            if self.produced > self._limit:
                self.problem = "z-file expands past the per-file limit"
                self._pending = b""
        if not self._pending:
            return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def drain(self) -> None:
        while self._read_raw(CHUNK):
            pass


class PickleAnalyzer(Analyzer):
    """Pickle and (decompressed) joblib files, recognised by content, or by a pickle-ish name."""

    name = "pickle"

    def claims(self, file: VirtualFile) -> bool:
        if file.head.startswith(_ZFILE_MAGIC):
            return True
        kind = sniff(file.head)
        if kind == Kind.PICKLE:
            return not is_legacy_torch(file.head)
        if kind != Kind.UNKNOWN:
            return False
        return file.name.lower().endswith(PICKLE_SUFFIXES) or imports_early(file.head)

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        hasher = hashlib.sha256()
        zfile = file.head.startswith(_ZFILE_MAGIC)
        with file.open() as stream:
            if zfile:  # joblib < 0.9.3: "ZF", the hex length, then one zlib stream
                raw = _ZFileReader(stream, hasher, ctx.settings.limits.max_file_bytes)
                report = scan_stream(io.BufferedReader(raw, CHUNK), policy_for(ctx))
                raw.drain()
                report.sha256 = hasher.hexdigest()
                report.bytes_read = raw.consumed
                if raw.problem and report.error is None:
                    report.error, report.error_offset = raw.problem, raw.produced
            else:
                report = scan_stream(stream, policy_for(ctx), hasher=hasher)
        fmt = "joblib" if zfile or report.joblib or ".joblib" in file.name.lower() else "pickle"
        # The archive walker already reports name/content mismatches for its own list of suffixes.
        # A file picked by its name or the probe that is not a pickle at all is simply another format (IDL .sav,
        # say); the archive walker reports the names that promise a pickle (.pkl, .pickle, .joblib).
        emit(report, ctx, file.path, mismatch_ok=True, mismatch_reported=True, what=fmt)
        ctx.component(
            Component(
                kind="model",
                name=file.name,
                path=file.path,
                format=fmt,
                sha256=report.sha256,
                size=report.bytes_read,
            )
        )
        return False


ANALYZERS = [PickleAnalyzer]

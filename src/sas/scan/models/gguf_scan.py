"""GGUF (llama.cpp): header sanity, a streamed key-value section, tensor table bounds, and chat templates.

The file is read with a small streaming parser rather than the ``gguf`` package: ``gguf.GGUFReader``
memory-maps the whole file and builds numpy views of every tensor and every token string, while the checks
here need only the header, the metadata values (read one at a time, token arrays skipped by seeking) and the
tensor table. Counts and lengths are bounded by what the remaining bytes could possibly hold, so a hostile
header cannot make the scanner allocate or loop. Every key whose name contains ``chat_template`` is handed to
:mod:`sas.scan.models.gguf_template`, because a Jinja template rendered outside a sandbox is code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.magic import Kind, sniff
from sas.scan.models.gguf_template import HitKind, TemplateHit, analyze_template
from sas.scan.models.nonpickle_common import incomplete, mismatch, record_model, stream_size
from sas.scan.rules import rule
from sas.taxonomy import Severity, Threat

TEMPLATE_INTERNALS = rule(
    "SAS-GGUF-001",
    "Chat template reaches Python internals",
    Severity.CRITICAL,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The model's Jinja chat template touches Python object internals (__class__, __globals__, __subclasses__, "
    "name-mangled template context...). That is the shape of a server-side template injection: rendered by an "
    "unsandboxed Jinja environment (llama-cpp-python before 0.2.72, CVE-2024-34359) it runs arbitrary code.",
    "Do not load this model; replace the chat template with a known one, and render templates only in "
    "jinja2.sandbox.ImmutableSandboxedEnvironment.",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-1336", "CWE-94"),
)
TEMPLATE_DANGEROUS = rule(
    "SAS-GGUF-002",
    "Chat template names OS or code-execution functions",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The chat template refers to OS, process or import machinery (os, subprocess, popen, eval...) or builds "
    "attribute names at run time, which ordinary chat templates never do.",
    "Review the template; replace it with the model family's published template.",
    ("MITRE ATLAS AML.T0011.000", "CWE-1336", "CWE-94"),
)
TEMPLATE_GADGET = rule(
    "SAS-GGUF-003",
    "Chat template uses template-injection gadgets",
    Severity.MEDIUM,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The chat template uses Jinja globals or string tricks that injection payloads pivot through (cycler, "
    "joiner, lipsum, self, escaped characters, %c formatting) but no complete payload was seen.",
    "Review the template; replace it with the model family's published template.",
    ("CWE-1336",),
)
MALFORMED = rule(
    "SAS-GGUF-004",
    "Malformed GGUF tensor table",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "A GGUF tensor entry has an unknown type, an absurd shape, or data outside the file. Loaders written in C "
    "have had memory-safety bugs on exactly such inputs (CVE-2024-21802, CVE-2024-23605 in llama.cpp's parser).",
    "Re-convert the model from a trusted source with a current llama.cpp.",
    ("CWE-20",),
)

_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
STRING, ARRAY = 8, 9
# ggml type -> (block elements, block bytes); cross-checked against gguf.GGML_QUANT_SIZES in the tests.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 40),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
}
MAX_TEMPLATE = 4 * 1024 * 1024  # a chat template is a few KB; beyond this it is analysed in part
MAX_TEMPLATE_ITEMS = 1024
MAX_KEY = 65_535
MAX_DIMS = 8
MAX_ARRAY_DEPTH = 4


class GGUFFormatError(ValueError):
    pass


@dataclass
class _Parsed:
    version: int = 0
    tensor_count: int = 0
    kv_count: int = 0
    alignment: int = 32
    templates: dict[str, str] = field(default_factory=dict)
    truncated_templates: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Cursor:
    """Sequential reads with bounds: every length is checked against the bytes left in the file."""

    def __init__(self, stream: BinaryIO, size: int, big_endian: bool) -> None:
        self.stream = stream
        self.size = size
        self.pos = 0
        self.order = ">" if big_endian else "<"
        self.wide = True  # v1 used 32-bit counts and string lengths

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise GGUFFormatError(f"needs {n} bytes at offset {self.pos}, file has {self.size}")
        data = self.stream.read(n)
        if len(data) != n:
            raise GGUFFormatError(f"short read at offset {self.pos}")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GGUFFormatError(f"skips {n} bytes at offset {self.pos}, past the end of the file")
        self.stream.seek(n, 1)
        self.pos += n

    def scalar(self, fmt: str, width: int) -> int | float | bool:
        value: int | float | bool = struct.unpack(self.order + fmt[1:], self.take(width))[0]
        return value

    def u32(self) -> int:
        return int(self.scalar("<I", 4))

    def count(self) -> int:
        return int(self.scalar("<Q", 8)) if self.wide else self.u32()

    def left(self) -> int:
        return self.size - self.pos

    def string_length(self) -> int:
        length = self.count()
        if length > self.left():
            raise GGUFFormatError(f"string of {length} bytes at offset {self.pos} runs past the end")
        return length


class GGUFAnalyzer(Analyzer):
    name = "gguf"

    def claims(self, file: VirtualFile) -> bool:
        return sniff(file.head) is Kind.GGUF or file.name.lower().endswith(".gguf")

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        if sniff(file.head) is not Kind.GGUF:
            mismatch(ctx, file, "GGUF", "it does not start with the GGUF magic")
            return False
        with file.open_seekable() as stream:
            size = stream_size(stream)
            parsed = _Parsed()
            try:
                self._parse(stream, size, parsed)
            except (GGUFFormatError, struct.error, UnicodeDecodeError, OverflowError) as exc:
                incomplete(ctx, file, "GGUF", str(exc), evidence=type(exc).__name__)
            for key, template in parsed.templates.items():
                self._template(file, ctx, key, template)
            for key in parsed.truncated_templates:
                incomplete(ctx, file, "GGUF", f"{key} is longer than {MAX_TEMPLATE} bytes; only its start was checked")
            for problem in parsed.problems[:20]:
                ctx.add(make_finding(MALFORMED, file.path, problem, evidence=problem[:120]))
            record_model(ctx, file, "gguf", stream, size)
        return True

    def _template(self, file: VirtualFile, ctx: ScanContext, key: str, template: str) -> None:
        """One finding per rule and template key, listing what was seen (a payload trips many tokens)."""
        rules = {
            HitKind.INTERNALS: TEMPLATE_INTERNALS,
            HitKind.DANGEROUS: TEMPLATE_DANGEROUS,
            HitKind.GADGET: TEMPLATE_GADGET,
        }
        grouped: dict[HitKind, list[TemplateHit]] = {}
        for hit in analyze_template(template):
            grouped.setdefault(hit.kind, []).append(hit)
        for kind, hits in grouped.items():
            tokens = list(dict.fromkeys(h.token[:60] for h in hits))
            first = hits[0]
            ctx.add(
                make_finding(
                    rules[kind],
                    file.path,
                    f"{key}: {first.why} (template offset {first.offset})"
                    + (f"; also {', '.join(repr(t) for t in tokens[1:8])}" if len(tokens) > 1 else ""),
                    evidence=f"{key}:{','.join(tokens[:8])}"[:300],
                    severity=max(h.severity for h in hits),
                )
            )

    def _parse(self, stream: BinaryIO, size: int, out: _Parsed) -> None:
        stream.seek(0)
        head = stream.read(24)
        if len(head) < 8:
            raise GGUFFormatError(f"file is {size} bytes, too short for a GGUF header")
        version_le = int.from_bytes(head[4:8], "little")
        big_endian = version_le & 0xFFFF == 0 and version_le != 0
        stream.seek(0)
        cur = _Cursor(stream, size, big_endian)
        cur.skip(4)
        out.version = cur.u32()
        if out.version not in (1, 2, 3):
            raise GGUFFormatError(f"unsupported GGUF version {out.version}")
        cur.wide = out.version >= 2
        out.tensor_count = cur.count()
        out.kv_count = cur.count()
        # The smallest key-value pair is 13 bytes (empty key, type, one-byte value); a tensor entry 24.
        if out.kv_count * 13 > cur.left():
            raise GGUFFormatError(f"header claims {out.kv_count} metadata entries, more than the file can hold")
        if out.tensor_count * 24 > cur.left():
            raise GGUFFormatError(f"header claims {out.tensor_count} tensors, more than the file can hold")
        for _ in range(out.kv_count):
            key_len = cur.string_length()
            if key_len > MAX_KEY:
                raise GGUFFormatError(f"metadata key of {key_len} bytes at offset {cur.pos}")
            key = cur.take(key_len).decode("utf-8", "replace")
            vtype = cur.u32()
            if "chat_template" in key and (key in out.templates or f"{key}[0]" in out.templates):
                # loaders disagree on which copy wins (the first, the last, or a refusal): check every copy
                out.problems.append(f"metadata key {key!r} is repeated at offset {cur.pos}")
                key = f"{key}@{cur.pos}"
            if "chat_template" in key and vtype == STRING:
                length = cur.string_length()
                keep = min(length, MAX_TEMPLATE)
                out.templates[key] = cur.take(keep).decode("utf-8", "replace")
                cur.skip(length - keep)
                if length > keep:
                    out.truncated_templates.append(key)
            elif key == "general.alignment" and vtype == 4:
                out.alignment = cur.u32()
                if out.alignment == 0 or out.alignment & (out.alignment - 1):
                    out.problems.append(f"general.alignment {out.alignment} is not a power of two")
                    out.alignment = 32
            elif "chat_template" in key and vtype == ARRAY:
                self._template_array(cur, key, out)
            else:
                self._skip_value(cur, vtype, 0)
        self._tensors(cur, out)

    def _template_array(self, cur: _Cursor, key: str, out: _Parsed) -> None:
        """Some converters store named templates as an array of strings; check every element."""
        item_type = cur.u32()
        count = cur.count()
        if item_type != STRING:
            self._skip_items(cur, item_type, count, 1)
            return
        for i in range(count):
            if i == MAX_TEMPLATE_ITEMS:
                # every element became a template to analyse: a file of empty strings cost seconds per MB and
                # memory to match; models name a handful, so the rest is reported rather than read
                raise GGUFFormatError(f"{key} is an array of {count} templates; only the first {i} were checked")
            length = cur.string_length()
            keep = min(length, MAX_TEMPLATE)
            out.templates[f"{key}[{i}]"] = cur.take(keep).decode("utf-8", "replace")
            cur.skip(length - keep)

    def _skip_value(self, cur: _Cursor, vtype: int, depth: int) -> None:
        if vtype in _SCALARS:
            cur.skip(_SCALARS[vtype][1])
        elif vtype == STRING:
            cur.skip(cur.string_length())
        elif vtype == ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise GGUFFormatError(f"arrays nested deeper than {MAX_ARRAY_DEPTH} at offset {cur.pos}")
            item_type = cur.u32()
            self._skip_items(cur, item_type, cur.count(), depth + 1)
        else:
            raise GGUFFormatError(f"unknown metadata value type {vtype} at offset {cur.pos}")

    def _skip_items(self, cur: _Cursor, item_type: int, count: int, depth: int) -> None:
        if item_type in _SCALARS:
            cur.skip(count * _SCALARS[item_type][1])
        elif item_type == STRING:
            if count * 8 > cur.left():
                raise GGUFFormatError(f"array of {count} strings at offset {cur.pos} cannot fit in the file")
            for _ in range(count):
                cur.skip(cur.string_length())
        elif item_type == ARRAY:
            if count * 12 > cur.left():
                raise GGUFFormatError(f"array of {count} arrays at offset {cur.pos} cannot fit in the file")
            for _ in range(count):
                self._skip_value(cur, ARRAY, depth)
        else:
            raise GGUFFormatError(f"unknown array item type {item_type} at offset {cur.pos}")

    def _tensors(self, cur: _Cursor, out: _Parsed) -> None:
        entries: list[tuple[str, int, int | None]] = []
        for _ in range(out.tensor_count):
            name_len = cur.string_length()
            if name_len > MAX_KEY:
                raise GGUFFormatError(f"tensor name of {name_len} bytes at offset {cur.pos}")
            name = cur.take(name_len).decode("utf-8", "replace")
            n_dims = cur.u32()
            if n_dims > MAX_DIMS:
                raise GGUFFormatError(f"tensor {name!r} has {n_dims} dimensions")
            dims = [cur.count() for _ in range(n_dims)]
            ggml_type = cur.u32()
            offset = int(cur.scalar("<Q", 8))
            elements = 1
            for dim in dims:
                elements *= dim
            nbytes: int | None = None
            block = GGML_BLOCKS.get(ggml_type)
            if block is None:
                out.problems.append(f"tensor {name!r} has unknown ggml type {ggml_type}")
            elif elements % block[0]:
                out.problems.append(f"tensor {name!r}: {elements} elements are not whole blocks of {block[0]}")
            else:
                nbytes = elements // block[0] * block[1]
            if offset % out.alignment:
                out.problems.append(f"tensor {name!r} offset {offset} is not aligned to {out.alignment}")
            entries.append((name, offset, nbytes))
        data_start = -(-cur.pos // out.alignment) * out.alignment
        data_size = cur.size - data_start
        for name, offset, nbytes in entries:
            if offset > data_size or (nbytes is not None and offset + nbytes > data_size):
                out.problems.append(
                    f"tensor {name!r} (offset {offset}, {nbytes} bytes) runs past the {data_size}-byte data section"
                )


ANALYZERS = [GGUFAnalyzer]

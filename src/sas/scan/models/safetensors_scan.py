"""safetensors: header sanity, dtypes, data offsets, and bytes hidden outside the tensors.

safetensors cannot run code on load, so a well-formed file is never above info. What can go wrong is the
header: a length that runs past the file or asks a loader for gigabytes, invalid or ambiguous JSON
(duplicate keys that two parsers resolve differently), unknown dtypes, offsets that overlap, leave gaps or
run past the end, and shapes that do not match their byte ranges. Gaps and trailing bytes are also where a
polyglot hides a second payload (a pickle or a zip that a ``torch.load`` of the same file would run), so
their content is sniffed. The header is read with the stdlib ``json`` under the same 100 MB cap the
reference Rust implementation applies; tensor data is never read except to sniff the first bytes of a gap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, BinaryIO

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.magic import Kind, sniff
from sas.scan.models.nonpickle_common import mismatch, record_model, stream_size
from sas.scan.rules import rule
from sas.taxonomy import Severity, Threat

MALFORMED = rule(
    "SAS-ST-001",
    "Malformed safetensors header",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "The safetensors header is not valid: its length runs past the file or exceeds the 100 MB cap, its JSON is "
    "invalid or has duplicate keys, or an entry lacks a known dtype, shape or offsets. Loaders reject or "
    "misread such files, and parsers that disagree about them are a way to smuggle data past a scanner.",
    "Re-export the tensors with the safetensors library from a trusted copy of the model.",
    ("CWE-20",),
)
BAD_OFFSETS = rule(
    "SAS-ST-002",
    "safetensors data offsets are inconsistent",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "Tensor byte ranges overlap, leave gaps, run past the end of the file, or do not match the tensor's shape "
    "and dtype. Overlaps alias weights; gaps and size mismatches leave bytes no tensor accounts for.",
    "Re-export the tensors with the safetensors library from a trusted copy of the model.",
    ("CWE-20",),
)
HIDDEN_PAYLOAD = rule(
    "SAS-ST-003",
    "Executable payload hidden in safetensors file",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "Bytes outside every tensor (a gap between tensors, or trailing data) start like a pickle or a zip: a "
    "polyglot file that a pickle-based loader given the same bytes would execute.",
    "Do not use this file; obtain the model from a trusted source.",
    ("MITRE ATLAS AML.T0011.000", "MITRE ATLAS AML.T0010.003", "CWE-502"),
)
BAD_METADATA = rule(
    "SAS-ST-004",
    "safetensors metadata is not a string map",
    Severity.LOW,
    Threat.INCOMPLETE_ANALYSIS,
    "The __metadata__ entry must map strings to strings; nested or non-string values break the format and "
    "may feed structured data to code that reads the metadata.",
    "Store only string metadata.",
    ("CWE-20",),
)

MAX_HEADER = 100_000_000  # the reference implementation's limit
# dtype -> bits per element (safetensors' Dtype enum, including the sub-byte and FNUZ float8 variants)
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_SNIFF_BYTES = 64
_EXECUTABLE_KINDS = {Kind.PICKLE, Kind.ZIP, Kind.ZLIB, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.LZMA, Kind.LZ4}


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    begin: int
    end: int


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


class SafetensorsAnalyzer(Analyzer):
    name = "safetensors"

    def claims(self, file: VirtualFile) -> bool:
        return sniff(file.head) is Kind.SAFETENSORS or file.name.lower().endswith(".safetensors")

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        with file.open_seekable() as stream:
            size = stream_size(stream)
            if sniff(file.head) is not Kind.SAFETENSORS and not _plausible(file.head, size):
                mismatch(ctx, file, "safetensors", "no 8-byte header length followed by a JSON object")
                return False
            self._check(file, ctx, stream, size)
            record_model(ctx, file, "safetensors", stream, size)
        return True

    def _check(self, file: VirtualFile, ctx: ScanContext, stream: BinaryIO, size: int) -> None:
        def bad(message: str, evidence: str = "") -> None:
            ctx.add(make_finding(MALFORMED, file.path, message, evidence=evidence or message[:120]))

        if size < 8:
            bad(f"file is {size} bytes, shorter than the 8-byte header length")
            return
        stream.seek(0)
        header_len = int.from_bytes(stream.read(8), "little")
        if header_len > MAX_HEADER:
            bad(f"header length {header_len} exceeds the {MAX_HEADER}-byte cap", f"header_len={header_len}")
            return
        if 8 + header_len > size:
            bad(f"header length {header_len} runs past the end of the {size}-byte file", f"header_len={header_len}")
            return
        raw = stream.read(header_len)
        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except _DuplicateKeyError as exc:
            bad(f"header JSON repeats the key {exc.args[0]!r}; parsers disagree on which entry wins", str(exc))
            return
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            bad(f"header is not valid UTF-8 JSON: {exc}", type(exc).__name__)
            return
        if not isinstance(header, dict):
            bad("header JSON is not an object")
            return
        data_start = 8 + header_len
        data_size = size - data_start
        tensors: list[_Tensor] = []
        for name, entry in header.items():
            if name == "__metadata__":
                self._metadata(file, ctx, entry)
                continue
            tensor = self._entry(file, ctx, name, entry, data_size)
            if tensor is not None:
                tensors.append(tensor)
        self._layout(file, ctx, stream, tensors, data_start, data_size)

    def _metadata(self, file: VirtualFile, ctx: ScanContext, entry: object) -> None:
        if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
            bad_keys = sorted(k for k, v in entry.items() if not isinstance(v, str)) if isinstance(entry, dict) else []
            ctx.add(
                make_finding(
                    BAD_METADATA,
                    file.path,
                    "__metadata__ holds non-string values" + (f" ({', '.join(bad_keys[:5])})" if bad_keys else ""),
                    evidence=",".join(bad_keys[:5]) or type(entry).__name__,
                )
            )

    def _entry(self, file: VirtualFile, ctx: ScanContext, name: str, entry: object, data_size: int) -> _Tensor | None:
        def bad(message: str) -> None:
            ctx.add(make_finding(MALFORMED, file.path, f"tensor {name!r}: {message}", evidence=name[:120]))

        if not isinstance(entry, dict):
            bad("entry is not an object")
            return None
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            bad(f"unknown dtype {dtype!r}")
            return None
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            bad(f"shape {shape!r} is not a list of non-negative integers")
            return None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            bad(f"data_offsets {offsets!r} is not an ordered [begin, end] pair")
            return None
        begin, end = offsets
        if end > data_size:
            ctx.add(
                make_finding(
                    BAD_OFFSETS,
                    file.path,
                    f"tensor {name!r} ends at byte {end} of a {data_size}-byte data section",
                    evidence=f"{name}:{begin}-{end}",
                )
            )
            return None
        # past this a size is wrong anyway: stop before a hostile shape grows a product past float range (or to
        # many thousands of digits)
        limit = max(8 * data_size, 1 << 64)
        bits = 0 if 0 in shape else DTYPE_BITS[dtype]
        for dim in shape if bits else ():
            bits *= dim
            if bits > limit:
                break
        if bits % 8 or bits // 8 != end - begin:
            needs = f"{bits / 8:g}" if bits <= limit else f"more than {limit // 8}"
            shape_text = str(shape) if len(shape) <= 8 else f"{str(shape[:8])[:-1]}, ... ({len(shape)} dims)]"
            ctx.add(
                make_finding(
                    BAD_OFFSETS,
                    file.path,
                    f"tensor {name!r} of shape {shape_text[:300]} and dtype {dtype} needs {needs} bytes "
                    f"but its offsets span {end - begin}",
                    evidence=f"{name}:{begin}-{end}",
                )
            )
        return _Tensor(name, begin, end)

    def _layout(
        self, file: VirtualFile, ctx: ScanContext, stream: BinaryIO, tensors: list[_Tensor], start: int, data_size: int
    ) -> None:
        tensors.sort(key=lambda t: (t.begin, t.end))
        cursor = 0
        previous: _Tensor | None = None
        gaps: list[tuple[int, int]] = []
        for tensor in tensors:
            if tensor.begin < cursor and previous is not None and tensor.end > tensor.begin:
                ctx.add(
                    make_finding(
                        BAD_OFFSETS,
                        file.path,
                        f"tensors {previous.name!r} and {tensor.name!r} overlap (bytes {tensor.begin}-{cursor})",
                        evidence=f"{previous.name}|{tensor.name}",
                    )
                )
            elif tensor.begin > cursor:
                gaps.append((cursor, tensor.begin))
            if tensor.end >= cursor:
                cursor, previous = tensor.end, tensor
        if cursor < data_size:
            gaps.append((cursor, data_size))
        for begin, end in gaps:
            stream.seek(start + begin)
            kind = sniff(stream.read(min(_SNIFF_BYTES, end - begin)))
            trailing = end == data_size
            where = "after the last tensor" if trailing else "between tensors"
            if kind in _EXECUTABLE_KINDS:
                ctx.add(
                    make_finding(
                        HIDDEN_PAYLOAD,
                        file.path,
                        f"{end - begin} bytes {where} (offset {start + begin}) look like {kind.value} data",
                        evidence=f"{kind.value}@{start + begin}",
                    )
                )
            else:
                ctx.add(
                    make_finding(
                        BAD_OFFSETS,
                        file.path,
                        f"{end - begin} bytes {where} (offset {start + begin}) belong to no tensor",
                        evidence=f"gap@{start + begin}+{end - begin}",
                    )
                )


def _plausible(head: bytes, size: int) -> bool:
    """A file named .safetensors whose head fails the strict sniff (a header length past the sniffer's bound,
    say) is still checked when a JSON object follows the length: its problems are then reported precisely."""
    return len(head) >= 9 and size >= 9 and head[8:9] in (b"{", b" ")


ANALYZERS = [SafetensorsAnalyzer]

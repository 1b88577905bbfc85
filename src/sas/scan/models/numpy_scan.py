"""NumPy ``.npy`` and ``.npz`` files.

A ``.npy`` file is a short header (a Python dict literal) and the array data. Numeric data is inert and is
never read: only the header is parsed (with :func:`ast.literal_eval`, as NumPy itself does), and the size it
promises is checked against the file. An object array (``descr`` holding ``O``, at any depth of a structured
dtype) stores a pickle instead of data, which ``np.load(allow_pickle=True)`` unpickles: that pickle goes to
the pickle analyzer. A ``.npz`` is a zip of ``.npy`` members and is consumed as a whole.

NumPy is not imported: the header grammar is small, and a scanner must not depend on the library whose
files it judges.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import zipfile
from typing import IO

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import Component, Location, make_finding
from sas.scan.magic import Kind, sniff
from sas.scan.models.pickle_scan import emit, policy_for, scan_stream
from sas.scan.models.torch_scan import ZIP_OPEN_ERRORS, ZIP_READ_ERRORS, GuardedMember, is_dir, too_compressed
from sas.scan.rules import INCOMPLETE_FILE, rule
from sas.taxonomy import Severity, Threat

OBJECT_ARRAY = rule(
    "SAS-NPY-001",
    "NumPy object array holds a pickle",
    Severity.MEDIUM,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "The array has an object dtype, so its data is a pickle that np.load(allow_pickle=True) runs. The pickle "
    "itself was analysed (its own findings are listed separately); loaders that pass allow_pickle=True to "
    "read it trust the file completely.",
    "Store numeric or fixed-width string arrays instead, and keep allow_pickle=False when loading.",
    ("MITRE ATLAS AML.T0011.000", "CWE-502"),
)

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20  # numpy refuses headers over 10 000 bytes by default; we read a little further
_PY2_LONG = re.compile(r"\b(\d+)L\b")
_DESCR = re.compile(r"^[<>|=]?([a-zA-Z?])(\d*)")
# dtype.str of the dtypes without objects: bool, ints, floats, complex, bytes, str, void, datetime, timedelta
_PLAIN_DESCR = re.compile(r"[<>|=]?(?:[?biufcSUVa]\d*|[Mm]8(?:\[\w+\])?)")


class NpyHeaderError(ValueError):
    pass


def read_header(stream: IO[bytes]) -> tuple[dict[str, object], bytes]:
    """The header dict and the raw bytes read so far (for hashing)."""
    raw = stream.read(10)
    if len(raw) < 10 or not raw.startswith(MAGIC):
        raise NpyHeaderError("not a .npy file (bad magic)")
    major = raw[6]
    if major == 1:
        hlen = int.from_bytes(raw[8:10], "little")
    elif major in (2, 3):
        more = stream.read(2)
        raw += more
        if len(more) < 2:
            raise NpyHeaderError("truncated header length")
        hlen = int.from_bytes(raw[8:12], "little")
    else:
        raise NpyHeaderError(f"unknown .npy format version {major}")
    if hlen > MAX_HEADER:
        raise NpyHeaderError(f"header of {hlen} bytes is implausibly large")
    text = stream.read(hlen)
    raw += text
    if len(text) < hlen:
        raise NpyHeaderError("truncated header")
    try:
        source = text.decode("latin-1" if major < 3 else "utf-8")
        header = ast.literal_eval(_PY2_LONG.sub(r"\1", source))  # files from Python 2 write shapes as (3L, 4L)
    except (ValueError, TypeError, SyntaxError, UnicodeError, MemoryError, RecursionError) as exc:
        raise NpyHeaderError(f"header is not a literal dict: {type(exc).__name__}") from None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
        raise NpyHeaderError("header lacks descr, fortran_order or shape")
    return header, raw


def descr_has_object(descr: object, depth: int = 0) -> bool:
    """True unless ``descr`` is a form numpy's writer uses for a dtype without Python objects. np.load unpickles
    the data of any dtype holding one, and it accepts forms its writer never produces ('object', 'i4,O', a
    dict or a list of 2-character strings naming fields), so anything not known to be plain counts as objects."""
    if depth > 32:
        return True  # absurd nesting: treat as unsafe
    if isinstance(descr, str):
        return _PLAIN_DESCR.fullmatch(descr) is None
    if isinstance(descr, tuple):  # (descr, shape): a subarray
        return len(descr) != 2 or descr_has_object(descr[0], depth + 1)
    if isinstance(descr, list):  # structured: (name, descr) or (name, descr, shape) per field
        return any(
            not isinstance(field, tuple) or len(field) not in (2, 3) or descr_has_object(field[1], depth + 1)
            for field in descr
        )
    return True


def itemsize(descr: object) -> int | None:
    """Bytes per element for a simple descr string; None for structured or unknown ones."""
    if not isinstance(descr, str):
        return None
    m = _DESCR.match(descr)
    if m is None:
        return None
    kind, digits = m.group(1), m.group(2)
    if kind in "Mm":
        return 8
    if not digits:
        return 1 if kind in "?b" else None
    return int(digits) * (4 if kind == "U" else 1)


def _shape_count(shape: object) -> int | None:
    if not isinstance(shape, tuple) or not all(isinstance(x, int) and x >= 0 for x in shape):
        return None
    count = 1
    for x in shape:
        count *= x
    return count


class NumpyAnalyzer(Analyzer):
    name = "numpy"

    def claims(self, file: VirtualFile) -> bool:
        kind = sniff(file.head)
        return kind is Kind.NUMPY or kind is Kind.ZIP  # a zip is an .npz when every member is a .npy

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        if sniff(file.head) is Kind.NUMPY:
            with file.open() as stream:
                digest, size = self._npy(stream, file.path, file.size, ctx)
            ctx.component(
                Component(kind="model", name=file.name, path=file.path, format="numpy", sha256=digest, size=size)
            )
            return False
        return self._npz(file, ctx)

    def _npy(self, stream: IO[bytes], path: str, size: int, ctx: ScanContext) -> tuple[str, int]:
        """Check one .npy stream; returns (sha256 or "" when the numeric data was not read, size)."""
        try:
            header, raw = read_header(stream)
        except NpyHeaderError as exc:
            message = f".npy header could not be read: {exc}"
            ctx.add(make_finding(INCOMPLETE_FILE, Location(path), message, evidence=str(exc)))
            return "", size
        descr = header["descr"]
        if descr_has_object(descr):
            hasher = hashlib.sha256(raw)
            report = scan_stream(stream, policy_for(ctx), hasher=hasher)
            ctx.add(
                make_finding(
                    OBJECT_ARRAY,
                    Location(path),
                    f"object array (descr {descr!r}, shape {header['shape']!r}): its data is a pickle",
                    evidence=f"descr {descr!r}",
                )
            )
            emit(report, ctx, path, what="numpy object-array pickle")
            return report.sha256, len(raw) + report.bytes_read
        count = _shape_count(header["shape"])
        width = itemsize(descr)
        if count is not None and width is not None and size >= 0:
            expected = len(raw) + count * width
            if size < expected:
                ctx.add(
                    make_finding(
                        INCOMPLETE_FILE,
                        Location(path),
                        f".npy data is truncated: the header promises {expected} bytes, the file has {size}",
                        evidence="truncated .npy",
                    )
                )
        return "", size

    def _npz(self, file: VirtualFile, ctx: ScanContext) -> bool:
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
                infos = [i for i in zf.infolist() if not is_dir(i)]
                if not infos or not all(i.filename.endswith(".npy") for i in infos):
                    return False  # not a plain .npz: let the walker look inside
                for info in infos:
                    member_path = f"{file.path}!{info.filename}"
                    if too_compressed(info, ctx.settings.limits):
                        ctx.add(
                            make_finding(
                                INCOMPLETE_FILE,
                                Location(member_path),
                                f"member expands {info.file_size} bytes from {info.compress_size}: not read",
                                evidence="compression ratio",
                            )
                        )
                        continue
                    try:
                        with zf.open(info) as member:
                            # a damaged member reads as ending there, so a payload before the damage is still found
                            guarded = GuardedMember(member)
                            self._npy(io.BufferedReader(guarded), member_path, info.file_size, ctx)
                        if guarded.error is not None:
                            raise guarded.error
                    except ZIP_READ_ERRORS as exc:
                        ctx.add(
                            make_finding(
                                INCOMPLETE_FILE,
                                Location(member_path),
                                f"member could not be read: {exc}",
                                evidence=type(exc).__name__,
                            )
                        )
        ctx.component(Component(kind="model", name=file.name, path=file.path, format="numpy", size=file.size))
        return True


ANALYZERS = [NumpyAnalyzer]

"""Zip archives in the virtual tree: function packages, layers, and zips nested anywhere.

:mod:`zipfile` reads the central directory; what it does not check is checked here before a member is
read: declared sizes and ratios, overlapping members (the non-recursive zip bomb), duplicate names, symlinks
(``external_attr``) that leave the tree, traversal names, encryption. A zip whose directory is unreadable,
or declares more members than allowed, is read from its local headers instead, front to back.
"""

from __future__ import annotations

import io
import itertools
import stat
import struct
import zipfile
import zlib
from collections import Counter
from typing import TYPE_CHECKING, BinaryIO, cast

from sas.scan.archive_rules import (
    ARCHIVE_BOMB,
    DUPLICATE_MEMBER,
    ENCRYPTED_MEMBER,
    LINK_OUTSIDE,
    NOT_ANALYSED,
    SPECIAL_MEMBER,
    escapes,
)
from sas.scan.archive_streams import (
    DECODE_ERRORS,
    ArchiveLimitError,
    CorruptStreamError,
    Ledger,
    RawDeflateReader,
    SharedSource,
    Slice,
    buffered,
    describe,
)
from sas.scan.artifact import HEAD_BYTES, Opener, VirtualFile, read_exactly
from sas.scan.magic import Kind

if TYPE_CHECKING:
    from sas.scan.archives import Walker

_LINK_TARGET_MAX = 4096
_ZIP_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_EOCD = struct.Struct("<4sHHHHIIH")
_MODEL_KINDS = frozenset({Kind.PICKLE, Kind.NUMPY, Kind.SAFETENSORS, Kind.GGUF, Kind.HDF5})


class _ZipHandle:
    def __init__(self, source: SharedSource, zf: zipfile.ZipFile) -> None:
        self._source = source
        self._zf = zf

    def get(self) -> zipfile.ZipFile:
        if self._zf.fp is None:  # closed after the walk: an analyzer reads a member late (in ``finish``)
            self._zf = zipfile.ZipFile(self._source.get())
        return self._zf


def _raw_name_length(info: zipfile.ZipInfo) -> int:
    """The stored length of a member name (zipfile decoded it as UTF-8 or cp437; both round-trip)."""
    return len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"))


def _zip_declared_entries(stream: BinaryIO) -> int | None:
    """The member count a zip's end-of-central-directory record declares (zip64 aware), or None."""
    end = stream.seek(0, io.SEEK_END)
    start = max(0, end - _EOCD.size - 0xFFFF)
    stream.seek(start)
    tail = read_exactly(stream, end - start)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + _EOCD.size > len(tail):
        return None
    entries = _EOCD.unpack_from(tail, pos)[4]
    if entries != 0xFFFF:
        return int(entries)
    locator = pos - 20  # zip64: the locator sits just before the classic record and points to the zip64 one
    if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
        return None
    record = int.from_bytes(tail[locator + 8 : locator + 16], "little")
    stream.seek(record)
    zip64 = read_exactly(stream, 56)
    if len(zip64) < 56 or zip64[:4] != b"PK\x06\x06":
        return None
    return int.from_bytes(zip64[32:40], "little")


def has_zip_tail(file: VirtualFile, kind: Kind) -> bool:
    """Whether a file that does not start like a zip ends with a zip directory.

    Read in place where the file allows it; otherwise (a deflated zip member, a compressed stream) only
    model formats are streamed to their end, since those are the files a polyglot is built from."""
    if file.size < _EOCD.size:
        return False
    window = _EOCD.size + 0xFFFF
    try:
        if file.seekable_opener is not None:
            with file.seekable_opener() as stream:
                end = stream.seek(0, io.SEEK_END)
                stream.seek(max(0, end - window))
                tail = read_exactly(stream, window)
        elif kind in _MODEL_KINDS:
            tail = b""
            with file.open() as stream:
                while chunk := stream.read(1024 * 1024):
                    tail = (tail + chunk)[-window:]
        else:
            return False
    except DECODE_ERRORS:
        return False
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0:
        comment = int.from_bytes(tail[pos + 20 : pos + 22], "little")
        if pos + _EOCD.size + comment == len(tail):
            return True
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    return False


def walk_zip(walker: Walker, file: VirtualFile) -> None:
    source = SharedSource(file.open_seekable)
    try:
        declared = _zip_declared_entries(source.get())
        if declared is not None and declared > walker.limits.max_members:
            # zipfile would hold the whole directory in memory: read members from local headers instead,
            # which stops at the limit.
            walker.too_many(file.path, declared)
            _zip_local(walker, file, source)
            return
        try:
            zf = zipfile.ZipFile(source.get())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error) as exc:
            walker.report_corrupt(file.path, f"no readable zip directory ({describe(exc)}); read local headers")
            _zip_local(walker, file, source)
            return
        with zf:
            _zip_members(walker, file, _ZipHandle(source, zf), zf.infolist())
    finally:
        source.close()


def _zip_members(walker: Walker, file: VirtualFile, handle: _ZipHandle, infos: list[zipfile.ZipInfo]) -> None:
    limits = walker.limits
    if len(infos) > limits.max_members:
        walker.too_many(file.path, len(infos))
        infos = infos[: limits.max_members]
    for name, count in sorted(Counter(i.filename for i in infos).items()):
        if count > 1:
            walker.finding(
                DUPLICATE_MEMBER,
                f"{file.path}!{name}",
                f"{name} appears {count} times in {file.path}; loaders disagree which copy is used",
                evidence=name,
            )
    if _zip_overlaps(walker, file, infos):
        return
    for info in infos:
        if info.filename.endswith("/"):  # ZipInfo.is_dir() raises IndexError on an empty name
            continue
        display = f"{file.path}!{info.filename}"
        walker.check_member_name(info.filename, display)
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        if stat.S_ISLNK(mode):
            _zip_symlink(walker, handle, info, display)
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            walker.finding(SPECIAL_MEMBER, display, f"{display} is recorded as a device, socket or FIFO; not read")
            continue
        if info.flag_bits & 0x1:
            walker.finding(ENCRYPTED_MEMBER, display, f"{display} is encrypted and could not be checked")
            continue
        if not walker.size_ok(display, info.file_size, info.compress_size):
            continue
        if info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_BZIP2,
            zipfile.ZIP_LZMA,
        ):
            walker.finding(
                NOT_ANALYSED,
                display,
                f"{display} uses zip compression method {info.compress_type}, which sas cannot read",
                f"method:{info.compress_type}",
            )
            continue
        _zip_member(walker, file, handle, info, display, stat.S_IMODE(mode) or 0o644)


def _zip_member(
    walker: Walker, file: VirtualFile, handle: _ZipHandle, info: zipfile.ZipInfo, display: str, mode: int
) -> None:
    ledger = Ledger()

    def opener() -> BinaryIO:
        try:
            raw = cast(BinaryIO, handle.get().open(info))
        except DECODE_ERRORS as exc:
            walker.report_corrupt(display, describe(exc))
            raise CorruptStreamError(f"{display}: {describe(exc)}") from exc
        return walker.counted(raw, display, info.compress_size, ledger)

    seekable: Opener | None = None
    if info.compress_type == zipfile.ZIP_STORED:
        # Stored members are byte ranges of the zip: zipfile seeks within them in place.
        def seekable() -> BinaryIO:
            return cast(BinaryIO, handle.get().open(info))

    try:
        with opener() as stream:
            head = read_exactly(stream, HEAD_BYTES)
    except ArchiveLimitError:
        return
    except DECODE_ERRORS as exc:
        walker.report_corrupt(display, describe(exc))
        return
    walker.handle(walker.member(display, info.file_size, opener, file.depth + 1, head, mode, seekable))


def _zip_overlaps(walker: Walker, file: VirtualFile, infos: list[zipfile.ZipInfo]) -> bool:
    """Members whose data overlap (many directory entries over one deflate stream) are the
    non-recursive zip bomb; no honest zip tool writes them."""
    spans = sorted((i.header_offset, i.header_offset + 30 + _raw_name_length(i) + i.compress_size) for i in infos)
    for (start_a, end_a), (start_b, _) in itertools.pairwise(spans):
        if start_b < end_a:
            walker.finding(
                ARCHIVE_BOMB,
                file.path,
                f"{file.path} has members whose data overlap (offsets {start_a} and {start_b}): a zip bomb "
                "built from overlapping files; its members were not read",
                "overlapping-members",
            )
            return True
    return False


def _zip_symlink(walker: Walker, handle: _ZipHandle, info: zipfile.ZipInfo, display: str) -> None:
    try:
        with cast(BinaryIO, handle.get().open(info)) as fh:
            target = fh.read(_LINK_TARGET_MAX).decode("utf-8", "replace")
    except DECODE_ERRORS as exc:
        walker.report_corrupt(display, describe(exc))
        return
    if escapes(info.filename, target):
        walker.finding(LINK_OUTSIDE, display, f"zip symlink {display} points outside the package to {target}", target)


def _zip_local(walker: Walker, file: VirtualFile, source: SharedSource) -> None:
    """Read members from their local headers (the central directory is missing or broken)."""
    src = source.get()
    total = src.seek(0, io.SEEK_END)
    pos = 0
    count = 0
    while pos + _ZIP_LOCAL.size <= total:
        src.seek(pos)
        header = src.read(_ZIP_LOCAL.size)
        if len(header) < _ZIP_LOCAL.size or header[:4] != b"PK\x03\x04":
            break
        _, _, flags, method, _, _, _, csize, usize, name_len, extra_len = _ZIP_LOCAL.unpack(header)
        name = src.read(name_len).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        display = f"{file.path}!{name}"
        data_start = pos + _ZIP_LOCAL.size + name_len + extra_len
        count += 1
        if count > walker.limits.max_members:
            walker.too_many(file.path, count)
            return
        if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:
            walker.finding(NOT_ANALYSED, display, f"{display}: zip64 member in a zip without directory", "zip64")
            return
        descriptor = 0
        if flags & 0x8:
            if method != zipfile.ZIP_DEFLATED:
                walker.report_corrupt(file.path, f"cannot find where {name} ends without the zip directory")
                return
            found = _deflate_extent(walker, src, data_start, total, display)
            if found is None:
                csize = total - data_start
            else:
                csize = found
                src.seek(data_start + csize)
                descriptor = 16 if src.read(4) == b"PK\x07\x08" else 12
        end = data_start + csize
        truncated = end > total
        if truncated:
            walker.report_corrupt(file.path, f"member {name} is cut off after {total - data_start} of {csize} bytes")
            csize = max(0, total - data_start)
        if not name.endswith("/"):
            walker.check_member_name(name, display)
            _zip_local_member(walker, file, source, display, data_start, csize, method, flags)
        if truncated:
            return
        pos = end + descriptor


def _deflate_extent(walker: Walker, src: BinaryIO, start: int, total: int, display: str) -> int | None:
    """Length of the raw deflate stream at ``start`` (for members with a data descriptor), or None."""
    dec = zlib.decompressobj(-15)
    ledger = Ledger()
    src.seek(start)
    consumed = produced = 0
    while not dec.eof:
        chunk = src.read(64 * 1024)
        if not chunk:
            return None
        out = dec.decompress(chunk)
        while out:
            produced += len(out)
            walker.budget.charge(display, produced, consumed + len(chunk), ledger)
            out = dec.decompress(dec.unconsumed_tail) if dec.unconsumed_tail else b""
        consumed += len(chunk)
    return consumed - len(dec.unused_data)


def _zip_local_member(
    walker: Walker,
    file: VirtualFile,
    source: SharedSource,
    display: str,
    start: int,
    csize: int,
    method: int,
    flags: int,
) -> None:
    if flags & 0x1:
        walker.finding(ENCRYPTED_MEMBER, display, f"{display} is encrypted and could not be checked")
        return
    if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        walker.finding(NOT_ANALYSED, display, f"{display} uses zip method {method} (no zip directory to help)")
        return
    ledger = Ledger()

    def opener() -> BinaryIO:
        raw = buffered(Slice(source.get(), start, csize, owns=False))
        if method == zipfile.ZIP_DEFLATED:
            raw = buffered(RawDeflateReader(raw))
        return walker.counted(raw, display, csize, ledger)

    try:
        with opener() as stream:
            head = read_exactly(stream, HEAD_BYTES)
    except ArchiveLimitError:
        return
    except DECODE_ERRORS as exc:
        walker.report_corrupt(display, describe(exc))
        return
    size = csize if method == zipfile.ZIP_STORED else max(csize, len(head))
    walker.handle(walker.member(display, size, opener, file.depth + 1, head))

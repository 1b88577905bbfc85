"""Walkers behind :func:`sas.scan.artifact.walk`: folders, single files, zips, tars, compressed streams and
container images, read in place and never extracted to disk.

Every file is handed to ``visit``; a zip, a tar or a compressed stream that no analyzer consumed (a torch
checkpoint is a zip an analyzer consumes whole) is then descended into. Kinds come from content
(:func:`sas.scan.magic.sniff`), never from names. Display paths chain archive members with ``!``:
``layer.zip!python/model.pkl``, ``a.zip!b.tar.gz!c/d.pkl``, ``model.pkl.gz!model.pkl``,
``model.joblib![zlib]`` (a compressed stream with no suffix to strip), ``image.tar!app/model.pkl`` (the
merged file system of a container image, see :mod:`sas.scan.images`).

Defences: decompressed bytes are counted as they are produced (:mod:`sas.scan.archive_streams`) against
``ScanSettings.limits``; members that would land outside the extraction folder, links that leave the tree,
duplicate zip names, devices and FIFOs are findings; corrupt or truncated archives are findings, and what
could be read before the damage is still visited. Folder walks never follow symlinks, so a link loop cannot
hang the scan.

The standard library's ``zipfile`` and ``tarfile`` parse the containers: they are maintained, streaming and
already hardened for hostile input; what they do not check (sizes that lie, ratios, links, traversal) is
checked here. A zip whose central directory is unreadable is read from its local headers, as many unzip
tools do, so a truncated function package is still scanned.
"""

from __future__ import annotations

import io
import itertools
import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from sas.scan.archive_streams import (
    DECODE_ERRORS,
    ArchiveLimitError,
    Budget,
    CorruptStreamError,
    CountingReader,
    Ledger,
    Limited,
    Prefixed,
    RawDeflateReader,
    Slice,
    UnsupportedCompression,
    buffered,
    decompressed,
    describe,
    skip,
)
from sas.scan.artifact import HEAD_BYTES, Opener, VirtualFile, Visit, file_from_path, read_exactly, spool
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.magic import ARCHIVES, COMPRESSED, WEAK, Kind, compression_suffixes, sniff
from sas.scan.rules import FORMAT_MISMATCH, Rule, rule
from sas.taxonomy import Severity, Threat

ARCHIVE_BOMB = rule(
    "SAS-ARC-001",
    "Archive bomb: content exceeds the scan's limits",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "An archive or compressed file expands beyond the configured limits (uncompressed size, compression "
    "ratio, or overlapping zip members). Unpacked at deploy or load time it exhausts disk or memory, and "
    "whatever lies beyond the limit was not scanned.",
    "Remove the file, or raise [scan.limits] if the content is legitimately this large.",
    ("CWE-409", "OWASP Serverless Top 10 SAS-8"),
)
PATH_TRAVERSAL = rule(
    "SAS-ARC-002",
    "Archive member escapes the extraction folder",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "A member name is absolute or climbs out with '..'. Extracted by a careless tool it overwrites files "
    "outside the package (code, configuration, credentials).",
    "Rebuild the archive from a clean folder; member names must be relative and stay inside it.",
    ("CWE-22",),
)
LINK_OUTSIDE = rule(
    "SAS-ARC-003",
    "Link points outside the package",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "A symbolic or hard link in the package resolves outside it. Deployed, it can expose or overwrite files "
    "of the host (/proc, credentials, other code).",
    "Replace the link with the file it should contain, or remove it.",
    ("CWE-59",),
)
CORRUPT_ARCHIVE = rule(
    "SAS-ARC-004",
    "Archive or compressed file is corrupt or truncated",
    Severity.MEDIUM,
    Threat.HOSTILE_ARCHIVE,
    "The archive or compressed stream could not be read to its end (bad checksum, truncated data, broken "
    "directory). Everything readable before the damage was scanned; the rest was not, and different tools "
    "may recover different content from it.",
    "Rebuild the archive from its sources and check the upload or download that produced it.",
    ("CWE-20",),
)
NESTED_TOO_DEEP = rule(
    "SAS-ARC-005",
    "Archives nested too deeply",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "Archives inside archives go deeper than the configured limit (scan.limits.max_depth): a recursive "
    "archive bomb or an attempt to hide content from scanners. The innermost archive was not opened.",
    "Flatten the package, or raise [scan.limits] max_depth if the nesting is intended.",
    ("CWE-409",),
)
TOO_MANY_MEMBERS = rule(
    "SAS-ARC-006",
    "Archive has too many members",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "The archive holds more entries than the configured limit (scan.limits.max_members); members past the "
    "limit were not scanned.",
    "Split the package, or raise [scan.limits] max_members.",
    ("CWE-409",),
)
DUPLICATE_MEMBER = rule(
    "SAS-ARC-007",
    "Duplicate member names in a zip",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "The same name appears more than once in a zip. Unzip tools and loaders disagree about which copy wins, "
    "so a reviewer or scanner can be shown one file while the runtime loads another.",
    "Rebuild the zip so that every name is unique.",
    ("CWE-20",),
)
SPECIAL_MEMBER = rule(
    "SAS-ARC-008",
    "Device or FIFO in the package",
    Severity.LOW,
    Threat.HOSTILE_ARCHIVE,
    "The package contains a device node or a named pipe. A function package has no use for one; extracted "
    "as root it can give access to host devices. It was not read.",
    "Remove it from the package.",
    ("CWE-20",),
)
NOT_ANALYSED = rule(
    "SAS-ARC-009",
    "Archive content could not be analysed",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "Part of an archive or image uses a format or feature sas cannot read here (a compression library that "
    "is not installed, an unsupported zip method, a missing image layer, a sparse tar member), so it is "
    "unchecked.",
    "Install the scan extra (pip install 'serverless-ai-shield[scan]') or repackage with a common format.",
    ("CWE-20",),
)
ENCRYPTED_MEMBER = rule(
    "SAS-ARC-010",
    "Encrypted archive member",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "A zip member is encrypted, so its content cannot be checked.",
    "Ship the file unencrypted inside the package, or scan it before encryption.",
    ("CWE-20",),
)
POLYGLOT = rule(
    "SAS-ARC-011",
    "File is also a zip archive (polyglot)",
    Severity.MEDIUM,
    Threat.HOSTILE_ARCHIVE,
    "The file starts as one format but ends with a zip directory. Loaders that check the first bytes (torch, "
    "pickle) and loaders that check the end (zipfile, keras) see different content: a way to show a scanner "
    "one file and a runtime another. Both views were scanned.",
    "Regenerate the file with the tool that owns its format; do not concatenate archives onto models.",
    ("CWE-20",),
)

# File-name suffixes that promise a format, and the kinds that keep the promise (checked only for files that
# no analyzer consumed and that are not archives; model analyzers judge their own formats beyond this).
_PICKLEISH = frozenset({Kind.PICKLE}) | COMPRESSED
_PROMISES: dict[str, frozenset[Kind]] = {
    ".zip": frozenset({Kind.ZIP}),
    ".whl": frozenset({Kind.ZIP}),
    ".jar": frozenset({Kind.ZIP}),
    ".npz": frozenset({Kind.ZIP}),
    ".keras": frozenset({Kind.ZIP}),
    ".tar": frozenset({Kind.TAR}),
    ".tgz": frozenset({Kind.GZIP}),
    ".gz": frozenset({Kind.GZIP}),
    ".bz2": frozenset({Kind.BZIP2}),
    ".xz": frozenset({Kind.XZ}),
    ".lz4": frozenset({Kind.LZ4}),
    ".zst": frozenset({Kind.ZSTD}),
    ".npy": frozenset({Kind.NUMPY}),
    ".gguf": frozenset({Kind.GGUF}),
    ".h5": frozenset({Kind.HDF5}),
    ".hdf5": frozenset({Kind.HDF5}),
    ".safetensors": frozenset({Kind.SAFETENSORS}),
    ".pkl": _PICKLEISH,
    ".pickle": _PICKLEISH,
    ".joblib": _PICKLEISH,
}
_SMALL_MEMBER = 1024 * 1024  # members of a compressed tar up to this size are kept in memory while visited
_LINK_TARGET_MAX = 4096
_PROBE_BYTES = 4096
_ZIP_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_EOCD = struct.Struct("<4sHHHHIIH")
_TAR_META_MAX = 1024 * 1024  # a pax header or GNU long name this large is not a real one
_TAR_META_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


def walk_target(root: Path, ctx: ScanContext, visit: Visit) -> str:
    walker = Walker(ctx, visit)
    if root.is_dir():  # the target itself may be a link to a folder; links inside it are never followed
        walker.folder(root)
        return root.name or str(root)
    display = root.name
    if not root.is_file():  # a FIFO or device given as the target: opening it could block forever
        ctx.error(display, "not a regular file, folder or archive; not read")
        return display
    try:
        file = file_from_path(root, display, spool_bytes=ctx.settings.limits.spool_bytes)
    except OSError as exc:
        ctx.error(display, f"cannot read: {exc.strerror or exc}")
        return display
    walker.handle(file)
    return display


@dataclass
class _Current:
    """Whether a member of a streamed tar is the one the tar reader is positioned on."""

    live: bool = True


class _Shared:
    """One seekable source shared by the members of an archive (each read seeks first); reopened when a
    member is read after the walk has moved on and closed it."""

    def __init__(self, opener: Opener) -> None:
        self._opener = opener
        self._stream: BinaryIO | None = None

    def get(self) -> BinaryIO:
        if self._stream is None or self._stream.closed:
            self._stream = self._opener()
        return self._stream

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


class _ZipHandle:
    def __init__(self, source: _Shared, zf: zipfile.ZipFile) -> None:
        self._source = source
        self._zf = zf

    def get(self) -> zipfile.ZipFile:
        if self._zf.fp is None:  # closed after the walk: an analyzer reads a member late (in ``finish``)
            self._zf = zipfile.ZipFile(self._source.get())
        return self._zf


@dataclass(frozen=True, slots=True)
class TarEntry:
    """A member of a tar being walked, and how to open its data."""

    info: tarfile.TarInfo
    opener: Opener
    seekable: bool
    head: bytes


class Walker:
    """Walks one scan target; holds the byte budget and de-duplicates findings about the same place."""

    def __init__(self, ctx: ScanContext, visit: Visit) -> None:
        self.ctx = ctx
        self.visit = visit
        self.limits = ctx.settings.limits
        self.budget = Budget(ctx, self._report_limit)
        self._reported: set[tuple[str, str, str]] = set()

    # -- findings -------------------------------------------------------------------------------------------

    def finding(self, which: Rule, path: str, message: str, evidence: str = "") -> None:
        key = (which.id, path, evidence)
        if key not in self._reported:
            self._reported.add(key)
            self.ctx.add(make_finding(which, path, message, evidence=evidence))

    def _report_limit(self, path: str, message: str, evidence: str) -> None:
        self.finding(ARCHIVE_BOMB, path, message, evidence)

    def report_corrupt(self, path: str, reason: str) -> None:
        self.finding(CORRUPT_ARCHIVE, path, f"{path} is corrupt or truncated: {reason}", reason[:200])

    def counted(self, stream: BinaryIO, path: str, compressed_size: int | None, ledger: Ledger) -> BinaryIO:
        return buffered(CountingReader(stream, self.budget, path, compressed_size, self.report_corrupt, ledger))

    # -- dispatch -------------------------------------------------------------------------------------------

    def handle(self, file: VirtualFile) -> None:
        """Visit ``file``; descend into it when it is an archive or compressed stream nobody consumed."""
        consumed = self.visit(file)
        if consumed:
            return
        kind = sniff(file.head)
        if kind not in ARCHIVES and kind not in COMPRESSED:
            self._check_promise(file, kind)
            if not _has_zip_tail(file):
                return
            if not file.head.startswith(b"#!"):  # a Python zipapp is a script line and a zip, by design
                self.finding(
                    POLYGLOT,
                    file.path,
                    f"{file.path} starts as {kind.value} but ends with a zip directory; it is read both ways",
                    f"{kind.value}+zip",
                )
            kind = Kind.ZIP
        if file.depth >= self.limits.max_depth:
            self.finding(
                NESTED_TOO_DEEP,
                file.path,
                f"{file.path} is an archive nested {file.depth} deep; the limit is {self.limits.max_depth}",
                f"depth>{self.limits.max_depth}",
            )
            return
        try:
            if kind is Kind.ZIP:
                self._zip(file)
            elif kind is Kind.TAR:
                self._tar_file(file)
            else:
                self._compressed(file, kind)
        except ArchiveLimitError:
            pass  # the finding is recorded where the limit was crossed
        except CorruptStreamError as exc:
            self.report_corrupt(file.path, str(exc).removeprefix(file.path + ": "))
        except UnsupportedCompression as exc:
            self.finding(NOT_ANALYSED, file.path, f"{file.path}: {exc}", kind.value)
        except DECODE_ERRORS as exc:
            self.report_corrupt(file.path, describe(exc))
        except (MemoryError, RecursionError) as exc:
            self.ctx.error(file.path, f"could not walk archive: {describe(exc)}")

    def _check_promise(self, file: VirtualFile, kind: Kind) -> None:
        name = file.name.lower()
        suffix = name[name.rfind(".") :] if "." in name else ""
        expected = _PROMISES.get(suffix)
        if expected is None or kind in expected:
            return
        what = "is empty" if file.size == 0 else f"content looks like {kind.value}"
        self.ctx.add(
            make_finding(
                FORMAT_MISMATCH,
                file.path,
                f"{file.path} is named like a {suffix} file but {what}",
                evidence=f"{suffix}:{kind.value}",
            )
        )

    def _member(
        self,
        display: str,
        size: int,
        opener: Opener,
        depth: int,
        head: bytes,
        mode: int = 0o644,
        seekable_opener: Opener | None = None,
    ) -> VirtualFile:
        return VirtualFile(display, size, opener, depth, head, mode, seekable_opener, self.limits.spool_bytes)

    # -- folders --------------------------------------------------------------------------------------------

    def folder(self, root: Path) -> None:
        real_root = os.path.realpath(root)
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
            except OSError as exc:
                self.ctx.error(_rel(folder, root) or ".", f"cannot list folder: {exc.strerror or exc}")
                continue
            files: list[tuple[Path, str]] = []
            for entry in entries:
                path = Path(entry.path)
                display = _rel(path, root)
                try:
                    if entry.is_symlink():
                        self._folder_link(path, display, real_root)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(path)
                    elif entry.is_file(follow_symlinks=False):
                        files.append((path, display))
                    else:  # never opened: reading a FIFO blocks, a device is not the package's content
                        self.finding(SPECIAL_MEMBER, display, f"{display} is a device, socket or FIFO; not read")
                except OSError as exc:
                    self.ctx.error(display, f"cannot read: {exc.strerror or exc}")
            for path, display in reversed(files):
                try:
                    file = file_from_path(path, display, spool_bytes=self.limits.spool_bytes)
                except OSError as exc:
                    self.ctx.error(display, f"cannot read: {exc.strerror or exc}")
                    continue
                self.handle(file)

    def _folder_link(self, path: Path, display: str, real_root: str) -> None:
        target = os.path.realpath(path)
        if os.path.commonpath([real_root, target]) != real_root:
            link = os.readlink(path)
            self.finding(
                LINK_OUTSIDE, display, f"symlink {display} points outside the package to {link}", evidence=link
            )
        # never followed: a target inside the tree is scanned where it lives

    # -- zip ------------------------------------------------------------------------------------------------

    def _zip(self, file: VirtualFile) -> None:
        source = _Shared(file.open_seekable)
        try:
            declared = _zip_declared_entries(source.get())
            if declared is not None and declared > self.limits.max_members:
                # zipfile would hold the whole directory in memory: read members from local headers instead,
                # which stops at the limit.
                self._too_many(file.path, declared)
                self._zip_local(file, source)
                return
            try:
                zf = zipfile.ZipFile(source.get())
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error) as exc:
                self.report_corrupt(file.path, f"no readable zip directory ({describe(exc)}); read local headers")
                self._zip_local(file, source)
                return
            with zf:
                self._zip_members(file, _ZipHandle(source, zf), zf.infolist())
        finally:
            source.close()

    def _zip_members(self, file: VirtualFile, handle: _ZipHandle, infos: list[zipfile.ZipInfo]) -> None:
        limits = self.limits
        if len(infos) > limits.max_members:
            self._too_many(file.path, len(infos))
            infos = infos[: limits.max_members]
        for name, count in sorted(Counter(i.filename for i in infos).items()):
            if count > 1:
                self.finding(
                    DUPLICATE_MEMBER,
                    f"{file.path}!{name}",
                    f"{name} appears {count} times in {file.path}; loaders disagree which copy is used",
                    evidence=name,
                )
        if self._zip_overlaps(file, infos):
            return
        for info in infos:
            if info.is_dir():
                continue
            display = f"{file.path}!{info.filename}"
            self._check_member_name(info.filename, display)
            mode = info.external_attr >> 16 if info.create_system == 3 else 0
            if stat.S_ISLNK(mode):
                self._zip_symlink(handle, info, display)
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                self.finding(SPECIAL_MEMBER, display, f"{display} is recorded as a device, socket or FIFO; not read")
                continue
            if info.flag_bits & 0x1:
                self.finding(ENCRYPTED_MEMBER, display, f"{display} is encrypted and could not be checked")
                continue
            if not self._size_ok(display, info.file_size, info.compress_size):
                continue
            if info.compress_type not in (
                zipfile.ZIP_STORED,
                zipfile.ZIP_DEFLATED,
                zipfile.ZIP_BZIP2,
                zipfile.ZIP_LZMA,
            ):
                self.finding(
                    NOT_ANALYSED,
                    display,
                    f"{display} uses zip compression method {info.compress_type}, which sas cannot read",
                    f"method:{info.compress_type}",
                )
                continue
            self._zip_member(file, handle, info, display, stat.S_IMODE(mode) or 0o644)

    def _zip_member(
        self, file: VirtualFile, handle: _ZipHandle, info: zipfile.ZipInfo, display: str, mode: int
    ) -> None:
        ledger = Ledger()

        def opener() -> BinaryIO:
            try:
                raw = cast(BinaryIO, handle.get().open(info))
            except DECODE_ERRORS as exc:
                self.report_corrupt(display, describe(exc))
                raise CorruptStreamError(f"{display}: {describe(exc)}") from exc
            return self.counted(raw, display, info.compress_size, ledger)

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
            self.report_corrupt(display, describe(exc))
            return
        self.handle(self._member(display, info.file_size, opener, file.depth + 1, head, mode, seekable))

    def _zip_overlaps(self, file: VirtualFile, infos: list[zipfile.ZipInfo]) -> bool:
        """Members whose data overlap (many directory entries over one deflate stream) are the
        non-recursive zip bomb; no honest zip tool writes them."""
        spans = sorted((i.header_offset, i.header_offset + 30 + _raw_name_length(i) + i.compress_size) for i in infos)
        for (start_a, end_a), (start_b, _) in itertools.pairwise(spans):
            if start_b < end_a:
                self.finding(
                    ARCHIVE_BOMB,
                    file.path,
                    f"{file.path} has members whose data overlap (offsets {start_a} and {start_b}): a zip bomb "
                    "built from overlapping files; its members were not read",
                    "overlapping-members",
                )
                return True
        return False

    def _zip_symlink(self, handle: _ZipHandle, info: zipfile.ZipInfo, display: str) -> None:
        try:
            with cast(BinaryIO, handle.get().open(info)) as fh:
                target = fh.read(_LINK_TARGET_MAX).decode("utf-8", "replace")
        except DECODE_ERRORS as exc:
            self.report_corrupt(display, describe(exc))
            return
        if _escapes(info.filename, target):
            self.finding(LINK_OUTSIDE, display, f"zip symlink {display} points outside the package to {target}", target)

    def _zip_local(self, file: VirtualFile, source: _Shared) -> None:
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
            if count > self.limits.max_members:
                self._too_many(file.path, count)
                return
            if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:
                self.finding(NOT_ANALYSED, display, f"{display}: zip64 member in a zip without directory", "zip64")
                return
            descriptor = 0
            if flags & 0x8:
                if method != zipfile.ZIP_DEFLATED:
                    self.report_corrupt(file.path, f"cannot find where {name} ends without the zip directory")
                    return
                found = self._deflate_extent(src, data_start, total, display)
                if found is None:
                    csize = total - data_start
                else:
                    csize = found
                    src.seek(data_start + csize)
                    descriptor = 16 if src.read(4) == b"PK\x07\x08" else 12
            end = data_start + csize
            truncated = end > total
            if truncated:
                self.report_corrupt(file.path, f"member {name} is cut off after {total - data_start} of {csize} bytes")
                csize = max(0, total - data_start)
            if not name.endswith("/"):
                self._check_member_name(name, display)
                self._zip_local_member(file, source, display, data_start, csize, method, flags)
            if truncated:
                return
            pos = end + descriptor

    def _deflate_extent(self, src: BinaryIO, start: int, total: int, display: str) -> int | None:
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
                self.budget.charge(display, produced, consumed + len(chunk), ledger)
                out = dec.decompress(dec.unconsumed_tail) if dec.unconsumed_tail else b""
            consumed += len(chunk)
        return consumed - len(dec.unused_data)

    def _zip_local_member(
        self, file: VirtualFile, source: _Shared, display: str, start: int, csize: int, method: int, flags: int
    ) -> None:
        if flags & 0x1:
            self.finding(ENCRYPTED_MEMBER, display, f"{display} is encrypted and could not be checked")
            return
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            self.finding(NOT_ANALYSED, display, f"{display} uses zip method {method} (no zip directory to help)")
            return
        ledger = Ledger()

        def opener() -> BinaryIO:
            raw = buffered(Slice(source.get(), start, csize, owns=False))
            if method == zipfile.ZIP_DEFLATED:
                raw = buffered(RawDeflateReader(raw))
            return self.counted(raw, display, csize, ledger)

        try:
            with opener() as stream:
                head = read_exactly(stream, HEAD_BYTES)
        except ArchiveLimitError:
            return
        except DECODE_ERRORS as exc:
            self.report_corrupt(display, describe(exc))
            return
        size = csize if method == zipfile.ZIP_STORED else max(csize, len(head))
        self.handle(self._member(display, size, opener, file.depth + 1, head))

    # -- tar ------------------------------------------------------------------------------------------------

    def _tar_file(self, file: VirtualFile) -> None:
        probe = file.seekable_opener() if file.seekable_opener is not None else file.open()
        seekable = probe.seekable()
        probe.close()
        if seekable:
            source = _Shared(file.seekable_opener or file.opener)
            try:
                self.tar(file.path, file.depth + 1, source.get, seekable=True, head=file.head)
            finally:
                source.close()
        else:
            self.tar(file.path, file.depth + 1, file.open, seekable=False, head=file.head)

    def tar(self, archive: str, depth: int, open_source: Opener, *, seekable: bool, head: bytes) -> None:
        """Walk a tar whose bytes ``open_source`` yields (uncompressed); a container image is merged."""
        if _image_hint(head):
            from sas.scan import images

            if seekable:
                if images.walk_image(self, archive, depth, open_source):
                    return
            else:
                # Layers are read in reverse order: random access needs a private seekable copy.
                shared = _Shared(lambda: spool(open_source(), self.limits.spool_bytes))
                try:
                    if images.walk_image(self, archive, depth, shared.get):
                        return
                    self._tar_plain(archive, depth, shared.get, True)
                finally:
                    shared.close()
                return
        self._tar_plain(archive, depth, open_source, seekable)

    def _tar_plain(self, archive: str, depth: int, open_source: Opener, seekable: bool) -> None:
        for entry in self.tar_entries(archive, open_source, seekable=seekable, strict_end=True):
            info = entry.info
            name = info.name
            display = f"{archive}!{name}"
            if info.isdir():
                continue
            self._check_member_name(name, display)
            if info.issym():
                if _escapes(name, info.linkname):
                    self.finding(
                        LINK_OUTSIDE,
                        display,
                        f"tar symlink {display} points outside the package to {info.linkname}",
                        info.linkname,
                    )
                continue
            if info.islnk():
                if _unsafe_name(info.linkname):
                    self.finding(
                        LINK_OUTSIDE,
                        display,
                        f"tar hard link {display} points outside the package to {info.linkname}",
                        info.linkname,
                    )
                continue  # the target is scanned where it lives
            if info.ischr() or info.isblk() or info.isfifo():
                self.finding(SPECIAL_MEMBER, display, f"{display} is a device or FIFO; not read")
                continue
            if self.accept_tar_member(entry, display):
                self.handle(self.tar_member_file(entry, display, depth))

    def accept_tar_member(self, entry: TarEntry, display: str) -> bool:
        info = entry.info
        if not info.isreg():
            return False
        if info.issparse():
            self.finding(NOT_ANALYSED, display, f"{display} is a sparse tar member, which sas does not read", "sparse")
            return False
        return self._size_ok(display, info.size, None)

    def tar_member_file(self, entry: TarEntry, display: str, depth: int) -> VirtualFile:
        info = entry.info
        return self._member(
            display,
            info.size,
            entry.opener,
            depth,
            entry.head,
            info.mode & 0o7777,
            entry.opener if entry.seekable else None,
        )

    def tar_entries(self, archive: str, open_source: Opener, *, seekable: bool, strict_end: bool) -> Iterator[TarEntry]:
        """Members of a tar, in order, each with a re-openable view of its data.

        ``seekable`` sources are read with random access (data skipped by seeking). Other sources (a
        decompressing stream) are read front to back; a member's data is then served from the live stream
        while it is current (from memory when small), and re-read from the start of the source otherwise.
        """
        stream = open_source()
        tally: _Tally | None = None
        reader = stream
        if seekable:
            stream.seek(0)  # tarfile starts where the stream stands; a shared stream may stand anywhere
        else:
            tally = _Tally(stream)
            reader = buffered(tally)
        try:
            try:
                # Random access shares ``stream`` with the members' slices: tarfile seeks before each header.
                tf = tarfile.open(fileobj=reader, mode="r:" if seekable else "r|", tarinfo=_BoundedTarInfo)  # noqa: SIM115 - see finally
            except tarfile.ReadError as exc:
                if str(exc) == "empty file":
                    return
                raise CorruptStreamError(f"not a readable tar: {describe(exc)}") from exc
            count = 0
            current = _Current()
            while True:
                current.live = False
                try:
                    info = tf.next()
                except (CorruptStreamError, ArchiveLimitError):
                    raise
                except DECODE_ERRORS as exc:
                    self.report_corrupt(archive, describe(exc))
                    return
                cast(Any, tf).members.clear()  # keep memory flat for archives with many members
                if info is None:
                    break
                count += 1
                if count > self.limits.max_members:
                    self._too_many(archive, count)
                    return
                current = _Current()
                display = f"{archive}!{info.name}"
                if seekable:
                    entry = self._tar_seekable_entry(info, open_source, display)
                elif info.isreg():
                    entry = self._tar_stream_entry(tf, info, open_source, display, current)
                else:
                    entry = TarEntry(info, _empty, False, b"")
                yield entry
            length = stream.seek(0, io.SEEK_END) if tally is None else _drain(tally)
            self._check_tar_end(archive, tf.offset, length, strict_end)
        finally:
            if not seekable:  # a seekable source belongs to the caller, who shares it with the members
                stream.close()

    def _tar_seekable_entry(self, info: tarfile.TarInfo, open_source: Opener, display: str) -> TarEntry:
        start, size = info.offset_data, info.size

        def opener() -> BinaryIO:
            return buffered(Slice(open_source(), start, size, owns=False))

        head = b""
        if info.isreg():
            try:
                with opener() as fh:
                    head = read_exactly(fh, min(HEAD_BYTES, size))
            except CorruptStreamError as exc:
                self.report_corrupt(display, str(exc))
        return TarEntry(info, opener, True, head)

    def _tar_stream_entry(
        self, tf: tarfile.TarFile, info: tarfile.TarInfo, open_source: Opener, display: str, current: _Current
    ) -> TarEntry:
        live = cast(BinaryIO | None, tf.extractfile(info))
        assert live is not None  # a regular member always has data
        current.live = True
        prefix = read_exactly(live, min(info.size, _SMALL_MEMBER))
        if len(prefix) == info.size:
            data = prefix
            return TarEntry(info, lambda: io.BytesIO(data), False, data[:HEAD_BYTES])
        start, size = info.offset_data, info.size

        def opener() -> BinaryIO:
            if current.live:
                current.live = False  # the live stream can be handed out once
                return self._guarded(buffered(Prefixed(prefix, live)), display)
            stream = open_source()
            try:
                skip(stream, start)
            except BaseException:
                stream.close()
                raise
            return self._guarded(buffered(Limited(stream, size)), display)

        return TarEntry(info, opener, False, prefix[:HEAD_BYTES])

    def _guarded(self, stream: BinaryIO, display: str) -> BinaryIO:
        """Translate tarfile's own errors (``ReadError``) into the ``OSError`` analyzers expect."""
        return buffered(_Guard(stream, display, self.report_corrupt))

    def _check_tar_end(self, archive: str, end: int, length: int, strict_end: bool) -> None:
        if length < end:
            self.report_corrupt(archive, f"the last member is cut off ({length} of {end} bytes present)")
        elif strict_end and length < end + 512:
            self.report_corrupt(archive, "the archive stops without its end-of-archive marker (truncated)")

    # -- compressed single files ----------------------------------------------------------------------------

    def _compressed(self, file: VirtualFile, kind: Kind) -> None:
        if kind in WEAK and not _decodes_at_start(file, kind):
            return  # a plain file that happens to start like a zlib or lzma header
        ledger = Ledger()

        def opener() -> BinaryIO:
            return decompressed(kind, file.open(), self.budget, file.path, file.size, self.report_corrupt, ledger)

        stream = opener()
        try:
            head = read_exactly(stream, HEAD_BYTES)
            if sniff(head) is Kind.TAR:
                stream.close()
                self.tar(file.path, file.depth + 1, opener, seekable=False, head=head)
                return
            size = len(head)
            try:
                while chunk := stream.read(1024 * 1024):
                    size += len(chunk)  # read to the end once: integrity, bombs and the true size, up front
            except (ArchiveLimitError, CorruptStreamError):
                pass  # reported; what decompressed before the problem is still visited
        finally:
            stream.close()
        display = f"{file.path}!{_inner_name(file.name, kind)}"
        self.handle(self._member(display, size, opener, file.depth + 1, head, file.mode))

    # -- shared checks --------------------------------------------------------------------------------------

    def _size_ok(self, display: str, size: int, compressed: int | None) -> bool:
        limits = self.limits
        if size > limits.max_file_bytes:
            self.finding(
                ARCHIVE_BOMB,
                display,
                f"{display} declares {size} bytes, over the per-file limit of {limits.max_file_bytes}",
                f"size>{limits.max_file_bytes}",
            )
            return False
        if compressed is not None and size > limits.ratio_floor and size > limits.max_ratio * max(compressed, 1):
            self.finding(
                ARCHIVE_BOMB,
                display,
                f"{display} expands {size / max(compressed, 1):.0f} times ({compressed} -> {size} bytes); "
                f"the limit is {limits.max_ratio:g}",
                f"ratio>{limits.max_ratio:g}",
            )
            return False
        return True

    def _too_many(self, archive: str, count: int) -> None:
        self.finding(
            TOO_MANY_MEMBERS,
            archive,
            f"{archive} has more than {self.limits.max_members} members; the rest were not scanned",
            f"members>{self.limits.max_members}",
        )

    def _check_member_name(self, name: str, display: str) -> None:
        problem = _unsafe_name(name)
        if problem:
            self.finding(PATH_TRAVERSAL, display, f"archive member {name!r} {problem}", evidence=name)


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header whose metadata records (GNU long names, pax headers) are read whole by tarfile into
    memory: refuse any larger than ``_TAR_META_MAX`` instead of allocating what a hostile header claims."""

    def _proc_member(self, owner: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _TAR_META_TYPES and self.size > _TAR_META_MAX:
            raise tarfile.ReadError(f"metadata header claims {self.size} bytes (limit {_TAR_META_MAX})")
        result: tarfile.TarInfo = super()._proc_member(owner)  # type: ignore[misc]
        return result


class _Tally(io.RawIOBase):
    """Counts the bytes read from a stream (to tell a complete tar from a truncated one)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._src = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._src.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


class _Guard(io.RawIOBase):
    def __init__(self, stream: BinaryIO, display: str, on_corrupt: Callable[[str, str], None]) -> None:
        super().__init__()
        self._src = stream
        self._display = display
        self._on_corrupt = on_corrupt

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._src.read(len(buffer))
        except (ArchiveLimitError, CorruptStreamError):
            raise
        except DECODE_ERRORS as exc:
            self._on_corrupt(self._display, describe(exc))
            raise CorruptStreamError(f"{self._display}: {describe(exc)}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._src.close()
        finally:
            super().close()


def _decodes_at_start(file: VirtualFile, kind: Kind) -> bool:
    """Whether the first bytes of a file sniffed by a weak magic really decode as that stream."""
    try:
        with file.open() as fh:
            start = fh.read(_PROBE_BYTES)
        if kind is Kind.ZLIB:
            zlib.decompressobj().decompress(start, _PROBE_BYTES)
        else:
            lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(start, _PROBE_BYTES)
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
        return False
    return True


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


def _has_zip_tail(file: VirtualFile) -> bool:
    """Whether a file that does not start like a zip ends with a zip directory (checked only where the file
    can be read in place: decompressing a stream to look at its end is not worth it)."""
    if file.size < _EOCD.size:
        return False
    try:
        stream = file.seekable_opener() if file.seekable_opener is not None else file.open()
        with stream:
            if not stream.seekable():
                return False
            end = stream.seek(0, io.SEEK_END)
            start = max(0, end - _EOCD.size - 0xFFFF)
            stream.seek(start)
            tail = read_exactly(stream, end - start)
    except DECODE_ERRORS:
        return False
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0:
        comment = int.from_bytes(tail[pos + 20 : pos + 22], "little")
        if pos + _EOCD.size + comment == len(tail):
            return True
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    return False


def _drain(tally: _Tally) -> int:
    while tally.read(1024 * 1024):
        pass
    return tally.count


def _empty() -> BinaryIO:
    return io.BytesIO(b"")


def _image_hint(head: bytes) -> bool:
    """Whether a tar's first member looks like a ``docker save`` or OCI layout (decided before reading on,
    since a compressed image needs a seekable copy)."""
    name = head[:100].split(b"\0", 1)[0].decode("utf-8", "replace").removeprefix("./")
    top = name.split("/", 1)[0]
    if name in ("oci-layout", "index.json", "manifest.json", "repositories") or top == "blobs":
        return True
    stem = top.removesuffix(".json")
    return len(stem) == 64 and all(c in "0123456789abcdef" for c in stem)


def _unsafe_name(name: str) -> str:
    """Why an archive member name escapes the extraction folder, or ``""``."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":" and norm[0].isalpha()):
        return "is an absolute path"
    level = 0
    for part in norm.split("/"):
        if part in ("", "."):
            continue
        level = level - 1 if part == ".." else level + 1
        if level < 0:
            return "climbs out of the archive with '..'"
    return ""


def _escapes(member: str, target: str) -> bool:
    """Whether a link at ``member`` pointing to ``target`` resolves outside the archive root."""
    norm = target.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":" and norm[0].isalpha()):
        return True
    parent = member.replace("\\", "/").rstrip("/").split("/")[:-1]
    return bool(_unsafe_name("/".join([*parent, norm])))


def _inner_name(name: str, kind: Kind) -> str:
    lower = name.lower()
    for suffix, replacement in sorted(compression_suffixes().items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)] + replacement
    return f"[{kind.value}]"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else ""

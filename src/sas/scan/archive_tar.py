"""Tar archives in the virtual tree: plain, or inside any compressed stream, read without extraction.

A seekable tar (a file on disk, a stored zip member) is read with random access: data is skipped by
seeking. A tar inside a compressed stream is read front to back, once; each member is served from the live
stream while it is current (from memory when small) and re-read from the start of the stream when an
analyzer opens it again later. tarfile reads pax headers and GNU long names whole, so headers claiming more
than a megabyte are refused. A tar whose first member looks like a container image is handed to
:mod:`sas.scan.images`.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from sas.scan.archive_rules import LINK_OUTSIDE, NOT_ANALYSED, SPECIAL_MEMBER, escapes, unsafe_name
from sas.scan.archive_streams import (
    DECODE_ERRORS,
    ArchiveLimitError,
    CorruptStreamError,
    Limited,
    Prefixed,
    SharedSource,
    Slice,
    buffered,
    describe,
    skip,
)
from sas.scan.artifact import HEAD_BYTES, Opener, VirtualFile, read_exactly, spool

if TYPE_CHECKING:
    from sas.scan.archives import Walker

_SMALL_MEMBER = 4 * 1024 * 1024  # members of a compressed tar up to this size are held in memory while visited
_TAR_META_MAX = 1024 * 1024  # a pax header or GNU long name this large is not a real one
_TAR_META_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


@dataclass
class _Current:
    """Whether a member of a streamed tar is the one the tar reader is positioned on."""

    live: bool = True


@dataclass(frozen=True, slots=True)
class TarEntry:
    """A member of a tar being walked, and how to open its data."""

    info: tarfile.TarInfo
    opener: Opener
    seekable: bool
    head: bytes


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


def walk_tar_file(walker: Walker, file: VirtualFile) -> None:
    # Only a file readable in place gets random access; opening a streamed member just to ask would consume it.
    if file.seekable_opener is not None:
        source = SharedSource(file.seekable_opener)
        try:
            walk_tar(walker, file.path, file.depth + 1, source.get, seekable=True, head=file.head)
        finally:
            source.close()
    else:
        walk_tar(walker, file.path, file.depth + 1, file.open, seekable=False, head=file.head)


def walk_tar(walker: Walker, archive: str, depth: int, open_source: Opener, *, seekable: bool, head: bytes) -> None:
    """Walk a tar whose bytes ``open_source`` yields (uncompressed); a container image is merged."""
    if _image_hint(head):
        from sas.scan import images

        if seekable:
            if images.walk_image(walker, archive, depth, open_source):
                return
        else:
            # Layers are read in reverse order: random access needs a private seekable copy.
            shared = SharedSource(lambda: spool(open_source(), walker.limits.spool_bytes))
            try:
                if images.walk_image(walker, archive, depth, shared.get):
                    return
                _tar_plain(walker, archive, depth, shared.get, True)
            finally:
                shared.close()
            return
    _tar_plain(walker, archive, depth, open_source, seekable)


def _tar_plain(walker: Walker, archive: str, depth: int, open_source: Opener, seekable: bool) -> None:
    for entry in tar_entries(walker, archive, open_source, seekable=seekable, strict_end=True):
        info = entry.info
        name = info.name
        display = f"{archive}!{name}"
        if info.isdir():
            continue
        walker.check_member_name(name, display)
        if info.issym():
            if escapes(name, info.linkname):
                walker.finding(
                    LINK_OUTSIDE,
                    display,
                    f"tar symlink {display} points outside the package to {info.linkname}",
                    info.linkname,
                )
            continue
        if info.islnk():
            if unsafe_name(info.linkname):
                walker.finding(
                    LINK_OUTSIDE,
                    display,
                    f"tar hard link {display} points outside the package to {info.linkname}",
                    info.linkname,
                )
            continue  # the target is scanned where it lives
        if info.ischr() or info.isblk() or info.isfifo():
            walker.finding(SPECIAL_MEMBER, display, f"{display} is a device or FIFO; not read")
            continue
        if accept_tar_member(walker, entry, display):
            walker.handle(tar_member_file(walker, entry, display, depth))


def accept_tar_member(walker: Walker, entry: TarEntry, display: str) -> bool:
    info = entry.info
    if not info.isreg():
        return False
    if info.issparse():
        walker.finding(NOT_ANALYSED, display, f"{display} is a sparse tar member, which sas does not read", "sparse")
        return False
    return walker.size_ok(display, info.size, None)


def tar_member_file(walker: Walker, entry: TarEntry, display: str, depth: int) -> VirtualFile:
    info = entry.info
    return walker.member(
        display,
        info.size,
        entry.opener,
        depth,
        entry.head,
        info.mode & 0o7777,
        entry.opener if entry.seekable else None,
    )


def tar_entries(
    walker: Walker, archive: str, open_source: Opener, *, seekable: bool, strict_end: bool
) -> Iterator[TarEntry]:
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
                walker.report_corrupt(archive, describe(exc))
                return
            cast(Any, tf).members.clear()  # keep memory flat for archives with many members
            if info is None:
                break
            count += 1
            if count > walker.limits.max_members:
                walker.too_many(archive, count)
                return
            current = _Current()
            display = f"{archive}!{info.name}"
            if seekable:
                entry = _tar_seekable_entry(walker, info, open_source, display)
            elif info.isreg():
                entry = _tar_stream_entry(walker, tf, info, open_source, display, current)
            else:
                entry = TarEntry(info, _empty, False, b"")
            yield entry
        length = stream.seek(0, io.SEEK_END) if tally is None else _drain(tally)
        _check_tar_end(walker, archive, tf.offset, length, strict_end)
    finally:
        if not seekable:  # a seekable source belongs to the caller, who shares it with the members
            stream.close()


def _tar_seekable_entry(walker: Walker, info: tarfile.TarInfo, open_source: Opener, display: str) -> TarEntry:
    start, size = info.offset_data, info.size

    def opener() -> BinaryIO:
        return buffered(Slice(open_source(), start, size, owns=False))

    head = b""
    if info.isreg():
        try:
            with opener() as fh:
                head = read_exactly(fh, min(HEAD_BYTES, size))
        except CorruptStreamError as exc:
            walker.report_corrupt(display, str(exc))
    return TarEntry(info, opener, True, head)


def _tar_stream_entry(
    walker: Walker, tf: tarfile.TarFile, info: tarfile.TarInfo, open_source: Opener, display: str, current: _Current
) -> TarEntry:
    live = cast(BinaryIO | None, tf.extractfile(info))
    assert live is not None  # a regular member always has data
    current.live = True
    prefix = read_exactly(live, min(info.size, _SMALL_MEMBER))
    if len(prefix) == info.size:
        data = prefix
        return TarEntry(info, lambda: io.BytesIO(data), True, data[:HEAD_BYTES])  # in memory: seekable
    start, size = info.offset_data, info.size

    def opener() -> BinaryIO:
        if current.live:
            current.live = False  # the live stream can be handed out once
            return _guarded(walker, buffered(Prefixed(prefix, live)), display)
        stream = open_source()
        try:
            skip(stream, start)
        except BaseException:
            stream.close()
            raise
        return _guarded(walker, buffered(Limited(stream, size)), display)

    return TarEntry(info, opener, False, prefix[:HEAD_BYTES])


def _guarded(walker: Walker, stream: BinaryIO, display: str) -> BinaryIO:
    """Translate tarfile's own errors (``ReadError``) into the ``OSError`` analyzers expect."""
    return buffered(_Guard(stream, display, walker.report_corrupt))


def _check_tar_end(walker: Walker, archive: str, end: int, length: int, strict_end: bool) -> None:
    if length < end:
        walker.report_corrupt(archive, f"the last member is cut off ({length} of {end} bytes present)")
    elif strict_end and length < end + 512:
        walker.report_corrupt(archive, "the archive stops without its end-of-archive marker (truncated)")

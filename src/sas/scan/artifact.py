"""One virtual tree over everything a function ships.

A scan target (folder, zip, tar, container image tarball, or one file) is walked as a tree of
:class:`VirtualFile` objects. Archives are read in place, never extracted to disk. The walker calls
``visit(file)`` for every regular file, archives included; when ``visit`` returns ``False`` for an archive
or a compressed file (no analyzer consumed it as a model container, say), the walker descends into it.

Files are recognised by content (:mod:`sas.scan.magic`), never by extension alone.

Streams and memory: ``open()`` gives a sequential stream, which is all most analyzers need (the pickle
analyzer reads opcodes front to back). Formats built on zip (torch checkpoints, ``.keras``, ``.npz``) need
random access, so ``open_seekable()`` always returns a seekable stream: the file itself when it is seekable
in place (a file on disk, a stored zip member, a member of an uncompressed tar), otherwise a private copy
of the decompressed bytes, kept in memory up to ``Limits.spool_bytes`` and in an anonymous
``tempfile.TemporaryFile`` above that. The copy is a buffer for one reader, deleted on close and never
visible by name: it is not extraction of the tree, and it keeps memory bounded whatever the member's size.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sas.errors import InputError
from sas.scan.context import ScanContext
from sas.scan.settings import Limits

Visit = Callable[["VirtualFile"], bool]
Opener = Callable[[], BinaryIO]

HEAD_BYTES = 512
_COPY_CHUNK = 1024 * 1024
DEFAULT_SPOOL_BYTES = Limits().spool_bytes


@dataclass(frozen=True, slots=True)
class VirtualFile:
    """A regular file somewhere in the tree.

    ``path`` is the display path: relative to the scanned folder (or the archive's name), with ``!`` between
    an archive and its members (``layer.zip!python/model.pkl``, ``a.zip!b.tar.gz!c/d.pkl``); a compressed
    single file shows its decompressed content as one member (``model.pkl.gz!model.pkl``,
    ``model.joblib![zlib]``). ``size`` is the file's uncompressed size: recorded by the container for archive
    members, measured by decompressing once for a compressed stream (what was decoded, when a limit or
    damage cut the stream short).

    ``open()`` returns a new sequential binary stream each time (callers close it); reading past the scan's
    limits raises :class:`OSError` after the walker has recorded an archive-bomb finding. ``open_seekable()``
    returns a new stream that supports ``seek``/``tell`` (see the module docstring for what it costs).
    ``head`` holds the first ``HEAD_BYTES`` bytes for sniffing; ``depth`` counts the archives around the file.
    """

    path: str
    size: int
    opener: Opener
    depth: int = 0  # how many archives deep
    head: bytes = b""  # the first HEAD_BYTES bytes, for content sniffing
    mode: int = 0o644  # permission bits where the container records them
    seekable_opener: Opener | None = None  # set when the file can be read with random access in place
    spool_bytes: int = DEFAULT_SPOOL_BYTES  # above this, open_seekable() buffers in a temporary file

    def open(self) -> BinaryIO:
        return self.opener()

    def open_seekable(self) -> BinaryIO:
        """A seekable stream over the whole file: in place when possible, else a private spooled copy."""
        if self.seekable_opener is not None:
            return self.seekable_opener()
        stream = self.opener()
        try:
            if stream.seekable():
                return stream
            return spool(stream, self.spool_bytes)
        except BaseException:
            stream.close()
            raise

    @property
    def name(self) -> str:
        """The last path component, inside any archive."""
        return self.path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]

    @property
    def inner_path(self) -> str:
        """The path inside the innermost container (what loaders see)."""
        return self.path.rsplit("!", 1)[-1]


def spool(stream: BinaryIO, memory_limit: int) -> BinaryIO:
    """Copy ``stream`` (then close it) into a seekable buffer positioned at 0: memory up to
    ``memory_limit`` bytes, an anonymous temporary file beyond."""
    with stream:
        first = read_exactly(stream, memory_limit + 1)
        if len(first) <= memory_limit:
            return io.BytesIO(first)
        tmp = tempfile.TemporaryFile()  # noqa: SIM115 - returned open to the caller, who closes it
        try:
            tmp.write(first)
            del first
            shutil.copyfileobj(stream, tmp, _COPY_CHUNK)
            tmp.seek(0)
        except BaseException:
            tmp.close()
            raise
        return tmp


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; fewer only at end of stream."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _COPY_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_head(stream: BinaryIO) -> bytes:
    return read_exactly(stream, HEAD_BYTES)


def file_from_path(path: Path, display: str, depth: int = 0, spool_bytes: int = DEFAULT_SPOOL_BYTES) -> VirtualFile:
    st = path.stat()
    with path.open("rb") as fh:
        head = _read_head(fh)

    def opener() -> BinaryIO:
        return path.open("rb")

    return VirtualFile(display, st.st_size, opener, depth, head, stat.S_IMODE(st.st_mode), opener, spool_bytes)


def file_from_bytes(data: bytes, display: str, depth: int = 0) -> VirtualFile:
    def opener() -> BinaryIO:
        return io.BytesIO(data)

    return VirtualFile(display, len(data), opener, depth, data[:HEAD_BYTES], seekable_opener=opener)


def walk(target: str | os.PathLike[str], ctx: ScanContext, visit: Visit) -> str:
    """Walk ``target`` and return its display name. Raises :class:`InputError` when it does not exist."""
    root = Path(target)
    if not root.exists() and not root.is_symlink():
        raise InputError(f"no such file or directory: {target}")
    from sas.scan import archives

    return archives.walk_target(root, ctx, visit)

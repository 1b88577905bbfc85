"""One virtual tree over everything a function ships.

A scan target (folder, zip, tar, container image tarball, or one file) is walked as a tree of
:class:`VirtualFile` objects. Archives are read in place, never extracted to disk. The walker calls
``visit(file)`` for every regular file, archives included; when ``visit`` returns ``False`` for an archive
(no analyzer consumed it as a model container, say), the walker descends into it.

Files are recognised by content (:mod:`sas.scan.magic`), never by extension alone.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sas.errors import InputError
from sas.scan.context import ScanContext

Visit = Callable[["VirtualFile"], bool]

HEAD_BYTES = 512


@dataclass(frozen=True, slots=True)
class VirtualFile:
    """A regular file somewhere in the tree.

    ``path`` is the display path: relative to the scanned folder (or the archive's name), with ``!`` between
    an archive and its members (``layer.zip!python/model.pkl``). ``open()`` returns a new seekable binary
    stream each time; callers close it.
    """

    path: str
    size: int
    opener: Callable[[], BinaryIO]
    depth: int = 0  # how many archives deep
    head: bytes = b""  # the first HEAD_BYTES bytes, for content sniffing
    mode: int = 0o644  # permission bits where the container records them

    def open(self) -> BinaryIO:
        return self.opener()

    @property
    def name(self) -> str:
        """The last path component, inside any archive."""
        return self.path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]

    @property
    def inner_path(self) -> str:
        """The path inside the innermost container (what loaders see)."""
        return self.path.rsplit("!", 1)[-1]


def _read_head(stream: BinaryIO) -> bytes:
    data = stream.read(HEAD_BYTES)
    return data if isinstance(data, bytes) else b""


def file_from_path(path: Path, display: str, depth: int = 0) -> VirtualFile:
    st = path.stat()
    with path.open("rb") as fh:
        head = _read_head(fh)
    return VirtualFile(display, st.st_size, lambda: path.open("rb"), depth, head, stat.S_IMODE(st.st_mode))


def file_from_bytes(data: bytes, display: str, depth: int = 0) -> VirtualFile:
    return VirtualFile(display, len(data), lambda: io.BytesIO(data), depth, data[:HEAD_BYTES])


def walk(target: str | os.PathLike[str], ctx: ScanContext, visit: Visit) -> str:
    """Walk ``target`` and return its display name. Raises :class:`InputError` when it does not exist."""
    root = Path(target)
    if not root.exists() and not root.is_symlink():
        raise InputError(f"no such file or directory: {target}")
    from sas.scan import archives

    return archives.walk_target(root, ctx, visit)

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
checked around them. This module dispatches and walks folders and compressed single files; the parts live in
:mod:`~sas.scan.archive_zip`, :mod:`~sas.scan.archive_tar`, :mod:`~sas.scan.images` (container images),
:mod:`~sas.scan.archive_streams` (counted decompression) and :mod:`~sas.scan.archive_rules` (rule ids).
"""

from __future__ import annotations

import lzma
import os
import zlib
from pathlib import Path
from typing import BinaryIO

from sas.scan.archive_rules import (
    ARCHIVE_BOMB,
    CORRUPT_ARCHIVE,
    DUPLICATE_MEMBER,
    ENCRYPTED_MEMBER,
    LINK_OUTSIDE,
    NESTED_TOO_DEEP,
    NOT_ANALYSED,
    PATH_TRAVERSAL,
    POLYGLOT,
    SPECIAL_MEMBER,
    TOO_MANY_MEMBERS,
    unsafe_name,
)
from sas.scan.archive_streams import (
    DECODE_ERRORS,
    ArchiveLimitError,
    Budget,
    CorruptStreamError,
    CountingReader,
    Ledger,
    UnsupportedCompression,
    buffered,
    decompressed,
    describe,
)
from sas.scan.archive_tar import walk_tar, walk_tar_file
from sas.scan.archive_zip import has_zip_tail, walk_zip
from sas.scan.artifact import HEAD_BYTES, Opener, VirtualFile, Visit, file_from_path, read_exactly
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.magic import ARCHIVES, COMPRESSED, WEAK, Kind, compression_suffixes, sniff
from sas.scan.rules import FORMAT_MISMATCH, Rule

__all__ = [  # the rules are re-exported: this is the module the rule catalogue imports
    "ARCHIVE_BOMB",
    "CORRUPT_ARCHIVE",
    "DUPLICATE_MEMBER",
    "ENCRYPTED_MEMBER",
    "LINK_OUTSIDE",
    "NESTED_TOO_DEEP",
    "NOT_ANALYSED",
    "PATH_TRAVERSAL",
    "POLYGLOT",
    "SPECIAL_MEMBER",
    "TOO_MANY_MEMBERS",
    "Walker",
    "walk_target",
]

# File-name suffixes that promise a format, and the kinds that keep the promise (checked only for files that
# no analyzer consumed and that are not archives; model analyzers judge their own formats beyond this).
_PICKLEISH = frozenset({Kind.PICKLE}) | COMPRESSED
_TORCHISH = frozenset({Kind.ZIP, Kind.PICKLE, Kind.TAR})
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
    # PyTorch checkpoints: a zip since torch 1.6, a bare pickle before, a tar in the oldest (not .pth: that is
    # also Python's path-configuration file)
    ".pt": _TORCHISH,
    ".ckpt": _TORCHISH,
}


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
            if not has_zip_tail(file, kind):
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
                walk_zip(self, file)
            elif kind is Kind.TAR:
                walk_tar_file(self, file)
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

    def member(
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

    # -- tar ------------------------------------------------------------------------------------------------

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
                walk_tar(self, file.path, file.depth + 1, opener, seekable=False, head=head)
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
        self.handle(self.member(display, size, opener, file.depth + 1, head, file.mode))

    # -- shared checks --------------------------------------------------------------------------------------

    def size_ok(self, display: str, size: int, compressed: int | None) -> bool:
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

    def too_many(self, archive: str, count: int) -> None:
        self.finding(
            TOO_MANY_MEMBERS,
            archive,
            f"{archive} has more than {self.limits.max_members} members; the rest were not scanned",
            f"members>{self.limits.max_members}",
        )

    def check_member_name(self, name: str, display: str) -> None:
        problem = unsafe_name(name)
        if problem:
            self.finding(PATH_TRAVERSAL, display, f"archive member {name!r} {problem}", evidence=name)


def _decodes_at_start(file: VirtualFile, kind: Kind) -> bool:
    """Whether the first bytes of a file sniffed by a weak magic really decode as that stream (judged on
    ``head``: opening a streamed member only to ask would consume it)."""
    try:
        if kind is Kind.ZLIB:
            zlib.decompressobj().decompress(file.head)
        else:
            lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(file.head)
    except (zlib.error, lzma.LZMAError, EOFError, ValueError):
        return False
    return True


def _inner_name(name: str, kind: Kind) -> str:
    lower = name.lower()
    for suffix, replacement in sorted(compression_suffixes().items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)] + replacement
    return f"[{kind.value}]"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else ""

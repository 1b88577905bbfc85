"""Reading raw ledger text in one pass: sub-logs found, their leaves hashed, nothing decoded.

A chunk is a range of whole lines of one source (a JSON-lines file, captured standard output, a CloudWatch
export, or an SQLite ledger's batches joined by newlines); it reads itself, in blocks of about a megabyte
(larger blocks cost more in page faults than they save in calls). Consecutive entry lines of one sub-log form a
*run*. The scanner reads the first line of a run (its origin, by slicing the fixed prefix that
:mod:`sas.events.canonical` puts first), then finds where the run ends by testing the following lines for that
exact prefix ``{"_sas_log":"ORIGIN","_sas_seq":`` with C-level iterators, so no Python code runs per line. It
hashes the run's leaves (RFC 6962 ``H(0x00 || entry)``) and returns the run as a byte range of the chunk with its
packed leaf hashes: entries are neither decoded nor kept; the ledger slices them out again only when someone
asks for them.

When sub-logs interleave line by line (several instances writing one SQLite file or one JSON-lines file, each
flushing every invocation), runs are one line long and their per-run cost dominates; such a block is
*partitioned* instead: each sub-log's entries are picked out of the block by their prefix with the same C-level
tools, and the run records the prefix that selects them.

Records behind a prefix (a platform's timestamp) are read at the offset where the line's record begins, and a
run continues while the following lines hold the same prefix at the same offset. Checkpoint and meta records
are parsed here (they are few); lines that are not records are only looked at for the platform's
dropped-log reports.

Whether anything is genuine is not decided here: verification compares the roots over each sub-log's runs in
stored order with the signed checkpoints.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import operator
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, NamedTuple

from sas.errors import InputError
from sas.events.canonical import CHECKPOINT_PREFIX, ENTRY_PREFIX, META_PREFIX, SEQ_SEPARATOR, loads

MARK = b'{"_sas_'
# reports of lines lost on the way: Lambda's (Telemetry API), and the ledger writer's own failed writes
DROPPED_EVENTS = frozenset({"platform.logsDropped", "logs-dropped", "platform.logs_dropped", "ledger.writeFailed"})
BLOCK = 1 << 20
_ORIGIN_AT = len(ENTRY_PREFIX)
_IS_ENTRY = operator.methodcaller("startswith", ENTRY_PREFIX)
_FIRST = operator.itemgetter(0)
_SHORT_RUNS = 64  # a block whose first runs this many are this short on average is partitioned instead
MAX_PARTITION = 32  # sub-logs in one block beyond which partitioning costs more than runs


class Run(NamedTuple):
    """Entries of one sub-log in a range of a chunk, as stored: ``chunk[start:end]`` holds exactly them, or,
    when ``select`` is set, they are the lines there that start with ``select``."""

    origin: bytes
    start: int
    end: int  # just past the last line (its newline excluded)
    n: int  # entries
    skip: int  # bytes in front of each record (a platform's prefix)
    select: bytes  # b"": every line of the range; else the sub-log's entry prefix (sub-logs interleave)
    hashes: bytes  # the leaf hashes, 32 bytes each

    def entries(self, data: bytes) -> list[bytes]:
        lines = data[self.start : self.end].split(b"\n")
        if self.select:
            return list(filter(operator.methodcaller("startswith", self.select), lines))
        if self.skip:
            return list(map(operator.itemgetter(slice(self.skip, None)), lines))
        return lines


@dataclass(slots=True)
class ChunkScan:
    runs: list[Run] = field(default_factory=list)
    checkpoints: list[tuple[str, str, tuple[bytes, ...]]] = field(default_factory=list)
    metas: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    malformed: int = 0

    def add(self, other: ChunkScan) -> None:
        """Everything but the runs."""
        self.checkpoints.extend(other.checkpoints)
        self.metas.extend(other.metas)
        self.reports.extend(other.reports)
        self.malformed += other.malformed


def pack_leaf_hashes(entries: list[bytes], skip: int = 0) -> bytes:
    """``H(0x00 || entry)`` of each entry (after ``skip`` bytes of prefix), packed."""
    h = sha256
    if skip:
        return b"".join([h(b"\x00" + e[skip:]).digest() for e in entries])
    return b"".join([h(b"\x00" + e).digest() for e in entries])


def parse_checkpoint_record(raw: bytes) -> tuple[str, str, tuple[bytes, ...]] | None:
    """``(origin, note, frontier)`` of a checkpoint record line; ``None`` if it cannot be parsed."""
    try:
        obj = loads(raw)
        origin = str(obj["_sas_checkpoint"])
        note = str(obj["note"])
        frontier = tuple(base64.b64decode(h, validate=True) for h in obj.get("frontier", []))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None
    return origin, note, frontier


def platform_report(line: bytes) -> dict[str, Any] | None:
    """A platform's dropped-log report on this line (JSON after any prefix), if it is one."""
    start = line.find(b"{")
    if start < 0:
        return None
    try:
        obj = loads(line[start:])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and obj.get("type") in DROPPED_EVENTS else None


def _entry_head(line: bytes, skip: int) -> tuple[bytes, bytes] | None:
    """``(origin, run prefix)`` of an entry line whose record starts at ``skip``. The prefix runs up to the
    sequence number: the same for every entry of the sub-log, and a prefix of no other sub-log's entries."""
    at = skip + _ORIGIN_AT
    quote = line.find(b'"', at)
    if quote < 0 or not line.startswith(SEQ_SEPARATOR, quote):
        return None
    return line[at:quote], line[skip : quote + len(SEQ_SEPARATOR)]


def _other_line(out: ChunkScan, line: bytes, skip: int) -> None:
    """A line that is not an entry: another record at ``skip``, or (``skip < 0``) maybe a platform report."""
    if skip < 0:
        if b"logsDropped" in line:
            report = platform_report(line)
            if report is not None:
                out.reports.append(report)
        return
    record = line[skip:] if skip else line
    if record.startswith(CHECKPOINT_PREFIX):
        parsed = parse_checkpoint_record(record)
        if parsed is None:
            out.malformed += 1
        else:
            out.checkpoints.append(parsed)
    elif record.startswith(META_PREFIX):
        try:
            meta = loads(record).get("_sas_meta")
        except (ValueError, AttributeError):
            meta = None
        if isinstance(meta, dict):
            out.metas.append(meta)
        else:
            out.malformed += 1
    else:
        out.malformed += 1


def _by_runs(out: ChunkScan, lines: list[bytes], pos: int, entries_only: bool, give_up: bool) -> bool:
    """Add the block as runs of consecutive entries of one sub-log. With ``give_up``, stop (adding nothing) once
    the block shows many short runs: sub-logs interleave line by line, and partitioning is cheaper."""
    runs: list[Run] = []
    other = ChunkScan()
    n = len(lines)
    it = iter(lines)
    i = 0  # index of ``line``; ``it`` is always just past it
    line: bytes | None = next(it, None)
    while line is not None:
        skip = 0 if line.startswith(MARK) else line.find(MARK)
        head = _entry_head(line, skip) if skip >= 0 and line.startswith(ENTRY_PREFIX, skip) else None
        if head is None or (entries_only and skip):
            if entries_only:
                other.malformed += 1
            else:
                _other_line(other, line, skip)
            pos += len(line) + 1
            i += 1
            line = next(it, None)
            continue
        origin, prefix = head
        same = operator.methodcaller("startswith", *((prefix, skip) if skip else (prefix,)))
        run = [line]
        run.extend(itertools.takewhile(same, it))  # also consumes the first line that differs: lines[i] below
        count = len(run)
        stop = pos + sum(map(len, run)) + count - 1
        runs.append(Run(origin, pos, stop, count, skip, b"", pack_leaf_hashes(run, skip)))
        pos = stop + 1
        i += count
        if give_up and len(runs) == _SHORT_RUNS and i < 16 * _SHORT_RUNS:
            return False
        line = lines[i] if i < n else None
    out.runs.extend(runs)
    out.add(other)
    return True


def _by_partition(out: ChunkScan, lines: list[bytes], pos: int, entries_only: bool) -> bool:
    """Add the block's entries sub-log by sub-log, each picked out of the block by its prefix. False (adding
    nothing) when the block does not suit: records behind a prefix, a malformed entry, too many sub-logs."""
    entries = list(filter(_IS_ENTRY, lines))
    others = [] if len(entries) == len(lines) else list(itertools.filterfalse(_IS_ENTRY, lines))
    if not entries_only and any(not o.startswith(MARK) and MARK in o for o in others):
        return False
    classes: list[tuple[bytes, bytes, list[bytes]]] = []
    rest = entries
    while rest:
        head = _entry_head(rest[0], 0)
        if head is None or len(classes) == MAX_PARTITION:
            return False
        origin, prefix = head
        mask = list(map(operator.methodcaller("startswith", prefix), rest))
        mine = list(itertools.compress(rest, mask))
        rest = [] if len(mine) == len(rest) else list(itertools.compress(rest, map(operator.not_, mask)))
        classes.append((origin, prefix, mine))
    end = pos + sum(map(len, lines)) + len(lines) - 1
    whole = len(classes) == 1 and not others
    for origin, prefix, mine in classes:
        out.runs.append(Run(origin, pos, end, len(mine), 0, b"" if whole else prefix, pack_leaf_hashes(mine)))
    if entries_only:
        out.malformed += len(others)
    else:
        for line in others:
            _other_line(out, line, 0 if line.startswith(MARK) else -1)
    return True


def scan_blocks(blocks: Iterable[list[bytes]], entries_only: bool = False) -> ChunkScan:
    """Scan a chunk given as blocks of its lines (the chunk is all their lines joined by newlines; run offsets
    are positions in it). ``entries_only`` (an SQLite ledger's batches): every line must be an entry at the
    start of the line; anything else is malformed."""
    out = ChunkScan()
    pos = 0
    interleaved = False  # the last block was partitioned: try that first
    for lines in blocks:
        if not (interleaved and _by_partition(out, lines, pos, entries_only)):
            if _by_runs(out, lines, pos, entries_only, give_up=not interleaved):
                interleaved = False
            else:
                interleaved = _by_partition(out, lines, pos, entries_only)
                if not interleaved:
                    _by_runs(out, lines, pos, entries_only, give_up=False)
        pos += sum(map(len, lines)) + len(lines)
    return out


# ---------------------------------------------------------------------------------------------------- chunks


class Chunk(ABC):
    """Whole lines of a ledger that one task scans. It reads its own bytes (in a worker, for a file or an SQLite
    ledger), and again when entries are wanted later; ``stable`` says whether those bytes can have changed
    in between (a file can, a buffer in memory cannot)."""

    stable = False
    entries_only = False

    @property
    @abstractmethod
    def size(self) -> int:
        """About how many bytes the chunk holds (to share work out)."""

    @abstractmethod
    def read(self) -> bytes:
        """The chunk's bytes (its lines joined by newlines; run offsets are positions in them)."""

    @abstractmethod
    def blocks(self) -> Iterator[list[bytes]]:
        """The chunk's lines, a block at a time."""

    def scan(self) -> ChunkScan:
        return scan_blocks(self.blocks(), self.entries_only)


def _uncrlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n") if b"\r" in data else data


@dataclass(frozen=True, slots=True, eq=False)
class MemoryChunk(Chunk):
    buffer: bytes  # line ends already LF
    start: int
    end: int

    stable = True

    @property
    def size(self) -> int:
        return self.end - self.start

    def read(self) -> bytes:
        return self.buffer[self.start : self.end]

    def blocks(self) -> Iterator[list[bytes]]:
        return _buffer_blocks(self.buffer, self.start, self.end)


def _buffer_blocks(buffer: bytes, start: int, end: int) -> Iterator[list[bytes]]:
    a = start
    while a < end:
        b = buffer.find(b"\n", a + BLOCK, end) if a + BLOCK < end else -1
        b = end if b < 0 else b
        yield buffer[a:b].split(b"\n")
        a = b + 1


def memory_chunks(buffer: bytes, target: int) -> list[MemoryChunk]:
    """Chunks of about ``target`` bytes of whole lines covering ``buffer``."""
    out: list[MemoryChunk] = []
    a, n = 0, len(buffer)
    while a < n:
        b = buffer.find(b"\n", a + target) if a + target < n else -1
        b = n if b < 0 else b
        out.append(MemoryChunk(buffer, a, b))
        a = b + 1
    return out


@dataclass(frozen=True, slots=True, eq=False)
class FileChunk(Chunk):
    """Bytes ``start..end`` of a text file; ``newline``: the file has the newline that ends the chunk at ``end``.
    CRLF line ends read as LF."""

    path: str
    start: int
    end: int
    newline: bool

    @property
    def size(self) -> int:
        return self.end - self.start

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise InputError(f"cannot read ledger {self.path}: {exc.strerror or exc}") from None

    def _pread(self, fd: int, size: int, at: int) -> bytes:
        got = os.pread(fd, size, at)
        if len(got) < size:
            raise InputError(f"{self.path} was shortened while it was being read")
        return got

    def read(self) -> bytes:
        # the chunk's own newline is read too, so that a CR before it goes with it
        fd = self._open()
        try:
            return _uncrlf(self._pread(fd, self.end - self.start + self.newline, self.start))
        finally:
            os.close(fd)

    def blocks(self) -> Iterator[list[bytes]]:
        fd = self._open()
        try:
            at, stop = self.start, self.end + self.newline
            while at < stop:
                size = BLOCK
                while True:
                    got = self._pread(fd, min(size, stop - at), at)
                    if at + len(got) >= stop:
                        lines = _uncrlf(got).split(b"\n")
                        at = stop
                        break
                    lines = _uncrlf(got).split(b"\n")
                    if len(lines) > 1:
                        partial = lines.pop()  # read again with the next block (it holds no CR-LF)
                        at += len(got) - len(partial)
                        break
                    size *= 2  # a line longer than the block
                if self.newline and at == stop:
                    lines.pop()  # the empty line after the chunk's own newline
                yield lines
        finally:
            os.close(fd)


def file_chunks(path: str, size: int, target: int) -> list[FileChunk]:
    """Chunks of about ``target`` bytes of whole lines covering the first ``size`` bytes of a file."""
    out: list[FileChunk] = []
    with open(path, "rb") as fh:
        a = 0
        while a < size:
            b = size
            at = a + target
            while at < size:
                fh.seek(at)
                block = fh.read(min(1 << 16, size - at))
                if not block:
                    break
                k = block.find(b"\n")
                if k >= 0:
                    b = at + k
                    break
                at += len(block)
            out.append(FileChunk(path, a, b, b < size))
            a = b + 1
    return out


@dataclass(frozen=True, slots=True, eq=False)
class SqliteChunk(Chunk):
    """Batches ``lo <= id < hi`` of an SQLite ledger, joined by newlines (each batch is consecutive entries)."""

    path: str
    lo: int
    hi: int
    estimate: int  # bytes, for sharing out work

    entries_only = True

    @property
    def size(self) -> int:
        return self.estimate

    def _groups(self) -> Iterator[bytes]:
        """The batches, joined by newlines a group of about ``BLOCK`` bytes at a time (a block per group)."""
        import sqlite3

        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise InputError(f"cannot open ledger {self.path}: {exc}") from None
        try:
            cursor = db.execute("SELECT data FROM batches WHERE id >= ? AND id < ? ORDER BY id", (self.lo, self.hi))
            want = 16  # rows per fetch, adjusted to the rows' size: the Shield writes one small row per invocation
            while rows := cursor.fetchmany(want):
                try:
                    group = b"\n".join(map(_FIRST, rows))  # in C: no Python code per row
                except TypeError:  # a row stored as text, or damaged: a number or NULL reads as no entries
                    group = b"\n".join(_row_bytes(b) for (b,) in rows)
                yield group
                want = max(1, min(65536, BLOCK * len(rows) // max(len(group), 1)))
        except sqlite3.Error as exc:
            raise InputError(f"{self.path}: damaged SQLite ledger ({exc})") from None
        finally:
            db.close()

    def read(self) -> bytes:
        return b"\n".join(self._groups())

    def blocks(self) -> Iterator[list[bytes]]:
        for group in self._groups():
            yield group.split(b"\n")


def _row_bytes(value: object) -> bytes:
    """A batch row's data as bytes: text encoded; a number or NULL (a damaged row) as nothing, never bytes(n)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return value if isinstance(value, bytes) else b""


MAX_DECOMPRESSED = 8 * 1024**3  # a gzip bomb stops here, not at the end of memory


@dataclass(frozen=True, slots=True, eq=False)
class GzipChunk(Chunk):
    """A whole gzipped text file (CloudWatch Logs exports to S3 are), decompressed by whoever scans it."""

    path: str
    compressed: int  # bytes on disk

    @property
    def size(self) -> int:
        return self.compressed * 8  # log lines compress about this well

    def read(self) -> bytes:
        import gzip

        try:
            with gzip.open(self.path, "rb") as gz:
                data = gz.read(MAX_DECOMPRESSED + 1)
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read ledger {self.path}: {exc}") from None
        if len(data) > MAX_DECOMPRESSED:
            raise InputError(f"{self.path}: decompresses to more than {MAX_DECOMPRESSED} bytes")
        return data.replace(b"\r\n", b"\n") if b"\r" in data else data

    def blocks(self) -> Iterator[list[bytes]]:
        data = self.read()
        return _buffer_blocks(data, 0, len(data))

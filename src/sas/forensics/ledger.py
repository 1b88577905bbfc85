"""Reading a ledger back: SQLite files, JSON-lines files, and captured standard output or CloudWatch exports.

Entries are kept as the exact bytes that were stored (they are the Merkle leaves) and grouped by sub-log in
stored order; nothing here decides whether they are genuine (that is :mod:`sas.forensics.verify`). Text input
may carry a prefix in front of each record (CloudWatch exports add a timestamp and request id, ``docker logs``
a timestamp); a record is found wherever ``{"_sas_`` begins. Lines the platform wrote about itself, such as
Lambda's ``platform.logsDropped`` report, are collected so that verification can tell a gap the platform
explains from one it does not.

Reading is one pass over the raw bytes (:mod:`sas.forensics.scan`), shared with forked workers for a large
ledger: each sub-log becomes a list of runs (byte ranges of the file with their leaf hashes), so loading a
million events creates no per-event object. ``StoredLog.entries`` slices the entries out of the kept buffer
the first time someone asks (diagnosis, proofs, the investigation commands); verification of an intact
ledger never does.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sas.errors import InputError
from sas.events.canonical import decode_entry, loads
from sas.forensics import hashing
from sas.forensics.scan import (
    DROPPED_EVENTS,
    MAX_DECOMPRESSED,
    Chunk,
    GzipChunk,
    Run,
    SqliteChunk,
    file_chunks,
    memory_chunks,
    pack_leaf_hashes,
)

__all__ = ["DROPPED_EVENTS", "MAX_DECOMPRESSED", "Ledger", "StoredCheckpoint", "StoredLog", "load_ledger"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_BYTES_PER_ENTRY = 400  # to compare a buffer's size with hashing.PARALLEL_MIN (a count of leaves)
MIN_CHUNK = 1 << 20  # bytes a task scans at least (a task costs a pickled result and a few system calls)


@dataclass(slots=True)
class StoredCheckpoint:
    origin: str
    note: str
    frontier: tuple[bytes, ...]
    position: int  # order of appearance among all checkpoints of the ledger


class _Entries:
    """Slices every sub-log's entries out of the chunks in one pass, the first time any sub-log's are wanted.

    A chunk of a file is read again, so its entries are hashed again and compared with the hashes that were
    verified: a file changed in between is an error, never a silent difference between what was verified and
    what is shown."""

    def __init__(self, source: str, logs: dict[str, StoredLog]) -> None:
        self.source = source
        self.logs = logs

    def fill(self) -> None:
        cache: dict[int, bytes] = {}
        for log in self.logs.values():
            if log._entries is not None:
                continue
            out: list[bytes] = []
            for chunk, run in log.runs:
                out.extend(self.run_entries(chunk, run, cache))
            log._entries = out

    def run_entries(self, chunk: Chunk, run: Run, cache: dict[int, bytes]) -> list[bytes]:
        """The entries of one run, its chunk read once per ``cache`` and checked against what was hashed."""
        data = cache.get(id(chunk))
        if data is None:
            data = cache[id(chunk)] = chunk.read()
        entries = run.entries(data)
        if not chunk.stable and (len(entries) != run.n or pack_leaf_hashes(entries) != run.hashes):
            raise InputError(f"{self.source} changed while it was being read: read it again")
        return entries


@dataclass(slots=True)
class StoredLog:
    origin: str
    runs: list[tuple[Chunk, Run]] = field(default_factory=list)  # stored order
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)
    _entries: list[bytes] | None = field(default=None, repr=False)
    _hashes: bytes | None = field(default=None, repr=False)
    _reader: _Entries | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return len(self._entries) if self._entries is not None else sum(run.n for _, run in self.runs)

    @property
    def entries(self) -> list[bytes]:
        """The stored entries in order (read out of the ledger on first use)."""
        if self._entries is None:
            if self._reader is not None:
                self._reader.fill()
            if self._entries is None:
                self._entries = []
        return self._entries

    def entries_from(self, start: int) -> list[bytes]:
        """The stored entries from position ``start`` on, reading only the runs that hold them (the newest
        entries of a large sub-log, without reading it all)."""
        if self._entries is not None or self._reader is None:
            return self.entries[start:]
        out: list[bytes] = []
        cache: dict[int, bytes] = {}
        position = 0
        for chunk, run in self.runs:
            if position + run.n > start:
                out.extend(self._reader.run_entries(chunk, run, cache)[max(0, start - position) :])
            position += run.n
        return out

    def leaf_hashes(self) -> bytes:
        """``H(0x00 || entry)`` of every entry in order, 32 bytes each, as computed while reading."""
        if self._hashes is None:
            self._hashes = b"".join(run.hashes for _, run in self.runs)
        return self._hashes


@dataclass(slots=True)
class Ledger:
    source: str
    logs: dict[str, StoredLog] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # verifier keys named in meta records (self-attested)
    metas: list[dict[str, Any]] = field(default_factory=list)
    platform_reports: list[dict[str, Any]] = field(default_factory=list)
    malformed: int = 0  # records that look like ours but cannot be parsed
    size_bytes: int = 0
    _reader: _Entries | None = field(default=None, repr=False)

    @property
    def event_count(self) -> int:
        return sum(log.count for log in self.logs.values())

    def log(self, origin: str) -> StoredLog:
        found = self.logs.get(origin)
        if found is None:
            if self._reader is None:
                self._reader = _Entries(self.source, self.logs)
            found = self.logs[origin] = StoredLog(origin, _reader=self._reader)
        return found

    def iter_entries(self) -> Iterator[tuple[str, int, bytes]]:
        """``(origin, position, bytes)`` in stored order, sub-log by sub-log."""
        for origin, log in self.logs.items():
            for i, entry in enumerate(log.entries):
                yield origin, i, entry

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Every parseable entry as a dict (with ``_sas_log``/``_sas_seq``), in stored order."""
        for _, _, entry in self.iter_entries():
            record = decode_entry(entry)
            if record is not None:
                yield record

    # ------------------------------------------------------------------ building

    def _add_checkpoint(self, origin: str, note: str, frontier: tuple[bytes, ...], counter: list[int]) -> None:
        self.log(origin).checkpoints.append(StoredCheckpoint(origin, note, frontier, counter[0]))
        counter[0] += 1

    def _add_meta(self, meta: Any) -> None:
        if not isinstance(meta, dict):
            self.malformed += 1
            return
        self.metas.append(meta)
        key = meta.get("key")
        if isinstance(key, str) and key not in self.keys:
            self.keys.append(key)


@dataclass(slots=True)
class _Part:
    """One file (or standard input) to scan in chunks, with what was read beside it (an SQLite ledger's tables)."""

    size: int
    chunker: Callable[[int], Sequence[Chunk]]  # chunks of about the given size
    metas: list[Any] = field(default_factory=list)
    checkpoints: list[tuple[str, str, tuple[bytes, ...]]] = field(default_factory=list)
    malformed: int = 0


def _memory_part(data: bytes) -> _Part:
    if b"\r" in data and b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    return _Part(len(data), lambda target: memory_chunks(data, target))


def _read_sqlite(path: str, size: int) -> _Part:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open ledger {path}: {exc}") from None
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "batches" not in tables or "checkpoints" not in tables:
            raise InputError(f"{path}: an SQLite file but not a sas ledger (no batches/checkpoints tables)")
        lo, hi = db.execute("SELECT min(id), max(id) FROM batches").fetchone()
        part = _Part(size, lambda target: _sqlite_chunks(path, lo, hi, size, target))
        if "meta" in tables:
            for (value,) in db.execute("SELECT value FROM meta ORDER BY id"):
                try:
                    part.metas.append(loads(value))
                except ValueError:
                    part.malformed += 1
        for origin, note, frontier in db.execute("SELECT origin, note, frontier FROM checkpoints ORDER BY id"):
            if not isinstance(frontier, bytes):  # bytes(n) of a number stored there would allocate n bytes
                part.malformed += 1
                continue
            nodes = tuple(frontier[i : i + 32] for i in range(0, len(frontier) - len(frontier) % 32, 32))
            part.checkpoints.append((str(origin), str(note), nodes))
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: damaged SQLite ledger ({exc})") from None
    finally:
        db.close()
    return part


def _sqlite_chunks(path: str, lo: int | None, hi: int | None, size: int, target: int) -> list[SqliteChunk]:
    """Batches in id ranges, as many ranges as the file holds ``target`` bytes (ids are dense: the writer
    only inserts, and a range that lost rows is only smaller)."""
    if lo is None or hi is None:
        return []
    count = max(1, -(-size // target))
    step = max(1, -(-(hi - lo + 1) // count))
    share = size // count
    return [SqliteChunk(path, a, min(a + step, hi + 1), share) for a in range(lo, hi + 1, step)]


_GZIP_MAGIC = b"\x1f\x8b"


def _read_file(ledger: Ledger, path: Path) -> _Part:
    name = os.fspath(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read ledger {name}: {exc.strerror or exc}") from None
    ledger.size_bytes += size
    if head == _SQLITE_MAGIC:
        wal = Path(name + "-wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        ledger.size_bytes += wal_size
        return _read_sqlite(name, size + wal_size)
    if head.startswith(_GZIP_MAGIC):  # decompressed by whoever scans it (one chunk: gzip cannot seek)
        chunk = GzipChunk(name, size)
        return _Part(chunk.size, lambda target: [chunk])
    return _Part(size, lambda target: file_chunks(name, size, target))


def _scan(ledger: Ledger, parts: list[_Part]) -> None:
    """Scan every part (in chunks shared with workers when large) and add what was found, in stored order."""
    total = sum(p.size for p in parts)
    parallel = total >= hashing.PARALLEL_MIN * _BYTES_PER_ENTRY
    target = max(MIN_CHUNK, total // (8 * (hashing.workers() + 1))) if parallel else max(total, 1)
    chunks = [list(part.chunker(target)) for part in parts]
    # tasks of whole consecutive chunks, each at least ``target`` bytes: a folder of small files is not a task
    # (a pickled result and a few system calls) per file
    tasks: list[list[Chunk]] = [[]]
    held = 0
    for chunk in (c for part_chunks in chunks for c in part_chunks):
        if held >= target:
            tasks.append([])
            held = 0
        tasks[-1].append(chunk)
        held += chunk.size
    done = hashing.parallel_map(lambda i: [c.scan() for c in tasks[i]], len(tasks), parallel)
    results = (found for task in done for found in task)
    counter = [0]
    for part, part_chunks in zip(parts, chunks, strict=True):
        for meta in part.metas:
            ledger._add_meta(meta)
        for checkpoint in part.checkpoints:
            ledger._add_checkpoint(*checkpoint, counter)
        ledger.malformed += part.malformed
        for chunk in part_chunks:
            found = next(results)
            ledger.malformed += found.malformed
            for run in found.runs:
                ledger.log(run.origin.decode("utf-8", "replace")).runs.append((chunk, run))
            for checkpoint in found.checkpoints:
                ledger._add_checkpoint(*checkpoint, counter)
            for meta in found.metas:
                ledger._add_meta(meta)
            ledger.platform_reports.extend(found.reports)


def load_ledger(source: str | os.PathLike[str]) -> Ledger:
    """Read a ledger: a SQLite or text file, a folder of them (e.g. a CloudWatch export, files in name order,
    ``.gz`` included), or ``-`` for standard input. Unusable input is an InputError."""
    name = os.fspath(source)
    ledger = Ledger(source=name)
    parts: list[_Part] = []
    if name == "-":
        data = sys.stdin.buffer.read()
        ledger.size_bytes = len(data)
        _scan(ledger, [_memory_part(data)])
        return ledger
    path = Path(name)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm")))
        if not files:
            raise InputError(f"ledger folder {name} holds no files")
        parts.extend(_read_file(ledger, file) for file in files)
    elif path.is_file():
        parts.append(_read_file(ledger, path))
    else:
        raise InputError(f"ledger {name} not found (expected a sqlite or jsonl ledger file, or a folder of them)")
    _scan(ledger, parts)
    if not ledger.logs and not ledger.metas:
        raise InputError(f"{name}: no sas ledger records found")
    return ledger

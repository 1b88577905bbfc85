"""Where the ledger writer puts entries and checkpoints: ``sqlite:PATH``, ``jsonl:PATH`` or ``stdout``.

All three hold the same records. An entry is its canonical bytes (:mod:`sas.events.canonical`), stored
verbatim so that verification hashes what it reads. A checkpoint record is one JSON object
``{"_sas_checkpoint": ORIGIN, "frontier": [...], "note": SIGNED_NOTE}``: the note is the signed C2SP
checkpoint; the frontier (the roots of the perfect subtrees at that size, unsigned but checked against the
signed root) lets a verifier resume after a gap, such as lines the platform dropped. A meta record names the
writer's verifier key so that a ledger can be read without knowing its key in advance (the verifier says so
when it trusts that copy).

- ``sqlite:PATH``: the embedded default for local runs; WAL mode, one transaction per batch, no fsync per
  commit (``synchronous=NORMAL``): a crash may lose the last batch, never corrupt earlier ones.
- ``jsonl:PATH``: one record per line, each batch written by a single ``write`` on an ``O_APPEND`` descriptor
  so that concurrent processes do not interleave inside a line.
- ``stdout``: the same lines on standard output, where Lambda, Cloud Functions and Azure ship them to the
  platform's log service. Each record is one line under 64 KB (CloudWatch splits events above 256 KB) and the
  reader finds records behind any prefix the platform or an export adds (timestamps, request ids).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from sas.errors import ConfigError
from sas.events.canonical import META_KEY, dumps

if TYPE_CHECKING:
    from sas.events.store_records import Batch, CheckpointRecord
    from sas.events.store_records import Batch as _new_batch
else:

    def _new_batch(origin, first_seq, count, data):
        """``Batch(...)``: the first call imports the class and rebinds this name to it, so that a cold start does
        not build it (stores that keep the default ``write_entries`` make one on every flush; an import statement
        there would cost more than the Batch itself)."""
        global _new_batch  # noqa: PLW0603 - rebinding itself to the real one is the point
        from sas.events.store_records import Batch as _new_batch

        return _new_batch(origin, first_seq, count, data)


def meta_line(meta: Mapping[str, Any]) -> bytes:
    return dumps({META_KEY: dict(meta)})


class LedgerStore(ABC):
    """Receives batches in order: entries of a sub-log are always written before the checkpoint covering them."""

    # whether writing may open a file (the runtime's audit hook must then know the write is the ledger's own)
    opens_files: bool = True

    @abstractmethod
    def write(self, batches: Sequence[Batch], checkpoints: Sequence[CheckpointRecord]) -> None: ...

    @abstractmethod
    def write_meta(self, meta: Mapping[str, Any]) -> None: ...

    def write_entries(self, origin: str, first_seq: int, count: int, lines: bytes | bytearray) -> None:
        """One batch and no checkpoint, as lines each ending in a newline: what every flush writes. Unlike
        :meth:`write`, the lines are stored when it returns (no :meth:`flush` needed); a store may do it with
        less ceremony."""
        self.write((_new_batch(origin, first_seq, count, bytes(lines[:-1])),), ())
        self.flush()

    def flush(self) -> None:  # noqa: B027 - optional
        pass

    def close(self) -> None:
        self.flush()

    def size_on_disk(self) -> int:
        return 0

    def after_fork(self) -> None:  # noqa: B027 - optional
        """In a forked child: drop handles that must not be shared with the parent."""


_ROWS_PER_STATEMENT = 200  # sub-logs in one multi-row INSERT (4 bound values each, far below SQLite's limit)


class SqliteStore(LedgerStore):
    # One row per batch, not per event: a row insert costs ~3 µs here, a whole batch about as much.
    # ``origin``/``first_seq``/``count`` are an index for readers, not evidence: verification trusts only ``data``.
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, origin TEXT NOT NULL, "
        "first_seq INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL)",
        "CREATE TABLE IF NOT EXISTS checkpoints (id INTEGER PRIMARY KEY, origin TEXT NOT NULL, "
        "size INTEGER NOT NULL, note TEXT NOT NULL, frontier BLOB NOT NULL)",
        "CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY, value TEXT NOT NULL)",
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: Any = None
        self._lock = threading.Lock()

    def _conn(self) -> Any:
        if self._db is None:
            import sqlite3  # lazily: not every cold start writes to SQLite

            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            for stmt in self.SCHEMA:
                db.execute(stmt)
            self._db = db
        return self._db

    def write(self, batches: Sequence[Batch], checkpoints: Sequence[CheckpointRecord]) -> None:
        with self._lock:
            db = self._conn()
            # an end-of-invocation flush of several sub-logs: one statement is one transaction, no BEGIN/COMMIT
            rows = [] if checkpoints else [(b.origin, b.first_seq, b.count, b.data) for b in batches if b.count]
            if not checkpoints and len(rows) <= _ROWS_PER_STATEMENT:
                if rows:
                    values = ", ".join(["(?, ?, ?, ?)"] * len(rows))
                    db.execute(
                        f"INSERT INTO batches (origin, first_seq, count, data) VALUES {values}",  # noqa: S608
                        [field for row in rows for field in row],
                    )
                return
            self._write_transaction(db, batches, checkpoints)

    @staticmethod
    def _write_transaction(db: Any, batches: Sequence[Batch], checkpoints: Sequence[CheckpointRecord]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            for b in batches:
                if not b.count:
                    continue
                db.execute(
                    "INSERT INTO batches (origin, first_seq, count, data) VALUES (?, ?, ?, ?)",
                    (b.origin, b.first_seq, b.count, b.data),
                )
            for cp in checkpoints:
                db.execute(
                    "INSERT INTO checkpoints (origin, size, note, frontier) VALUES (?, ?, ?, ?)",
                    (cp.origin, cp.size, cp.note, b"".join(cp.frontier)),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def write_entries(self, origin: str, first_seq: int, count: int, lines: bytes | bytearray) -> None:
        with self._lock:  # one statement is one transaction: no BEGIN/COMMIT round trips
            self._conn().execute(
                "INSERT INTO batches (origin, first_seq, count, data) VALUES (?, ?, ?, ?)",
                (origin, first_seq, count, bytes(lines[:-1])),
            )

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        with self._lock:
            self._conn().execute("INSERT INTO meta (value) VALUES (?)", (dumps(dict(meta)).decode(),))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def after_fork(self) -> None:
        # An SQLite connection must never be used across fork. Close the inherited one *before* opening another,
        # so the child's new connection does not share SQLite's per-file lock bookkeeping with it (POSIX locks
        # belong to the process: closing here releases the child's, never the parent's).
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
        self._db = None
        self._lock = threading.Lock()

    def size_on_disk(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(self.path + suffix)
        return total


class JsonlStore(LedgerStore):
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _write(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            data = b"\n".join(lines) + b"\n"
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def write(self, batches: Sequence[Batch], checkpoints: Sequence[CheckpointRecord]) -> None:
        self._write([*(b.data for b in batches if b.count), *(cp.to_line() for cp in checkpoints)])

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        self._write([meta_line(meta)])

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # the O_APPEND descriptor is safe to share; the lock state is not

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def size_on_disk(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0


def _raw_fd(stream: TextIO) -> int:
    """The descriptor under the interpreter's own text stream; -1 for anything else (a wrapper may add to what
    it is given, and must get it)."""
    if type(stream) is not io.TextIOWrapper:
        return -1
    try:
        return stream.fileno()
    except (OSError, ValueError):
        return -1


class StdoutStore(LedgerStore):
    opens_files = False

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._fd_of: TextIO | None = None  # the stream whose descriptor ``_fd`` is
        self._fd = -1

    def _put(self, data: bytes | bytearray, flush: bool = False) -> None:
        """Write lines (each ending in a newline) in one call; ``flush``: and see that they are out.

        No lock of its own: the ledger writer calls its store under its lock (one more lock per invocation
        is measurable once a model has evicted the caches)."""
        out = self.stream or sys.stdout
        if out is not self._fd_of:
            self._fd_of, self._fd = out, _raw_fd(out)
        fd = self._fd
        if fd < 0:
            out.write(data.decode("utf-8"))
            if flush:
                out.flush()
            return
        # Below the text layer (flushed first, so earlier output keeps its place): the canonical bytes as they
        # are, whatever the stream's encoding (re-encoded entries would no longer match their hashes), and no
        # decode/encode round trip on every invocation.
        out.flush()
        written = os.write(fd, data)
        if written < len(data):  # a signal cut the write short
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view) :]

    def _write(self, lines: Sequence[bytes]) -> None:
        if lines:
            self._put(b"\n".join(lines) + b"\n")

    def write(self, batches: Sequence[Batch], checkpoints: Sequence[CheckpointRecord]) -> None:
        self._write([*(b.data for b in batches if b.count), *(cp.to_line() for cp in checkpoints)])

    def write_entries(self, origin: str, first_seq: int, count: int, lines: bytes | bytearray) -> None:
        self._put(lines, flush=True)

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        self._write([meta_line(meta)])

    def flush(self) -> None:
        (self.stream or sys.stdout).flush()

    def close(self) -> None:
        self.flush()


def open_store(spec: str) -> LedgerStore:
    """``stdout`` | ``jsonl:PATH`` | ``sqlite:PATH``."""
    kind, _, arg = spec.partition(":")
    if kind == "stdout":
        return StdoutStore()
    if kind == "jsonl" and arg:
        return JsonlStore(arg)
    if kind == "sqlite" and arg:
        return SqliteStore(arg)
    raise ConfigError(f"unknown ledger store {spec!r} (expected stdout, jsonl:PATH or sqlite:PATH)")

"""Reading a ledger back: SQLite files, JSON-lines files, and captured standard output or CloudWatch exports.

Entries are kept as the exact bytes that were stored (they are the Merkle leaves) and grouped by sub-log in
stored order; nothing here decides whether they are genuine (that is :mod:`sas.forensics.verify`). Text input
may carry a prefix in front of each record (CloudWatch exports add a timestamp and request id, ``docker logs``
a timestamp); a record is found wherever ``{"_sas_`` begins. Lines the platform wrote about itself, such as
Lambda's ``platform.logsDropped`` report, are collected so that verification can tell a gap the platform
explains from one it does not.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import operator
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sas.errors import InputError
from sas.events.canonical import (
    CHECKPOINT_PREFIX,
    ENTRY_PREFIX,
    META_PREFIX,
    SEQ_SEPARATOR,
    decode_entry,
    entry_origin_seq,
    loads,
)

_MARK = b'{"_sas_'
_SQLITE_MAGIC = b"SQLite format 3\x00"
# reports of lines lost on the way: Lambda's (Telemetry API), and the ledger writer's own failed writes
DROPPED_EVENTS = frozenset({"platform.logsDropped", "logs-dropped", "platform.logs_dropped", "ledger.writeFailed"})


@dataclass(slots=True)
class StoredCheckpoint:
    origin: str
    note: str
    frontier: tuple[bytes, ...]
    position: int  # order of appearance among all checkpoints of the ledger


@dataclass(slots=True)
class StoredLog:
    origin: str
    entries: list[bytes] = field(default_factory=list)
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)


@dataclass(slots=True)
class Ledger:
    source: str
    logs: dict[str, StoredLog] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # verifier keys named in meta records (self-attested)
    metas: list[dict[str, Any]] = field(default_factory=list)
    platform_reports: list[dict[str, Any]] = field(default_factory=list)
    malformed: int = 0  # records that look like ours but cannot be parsed
    size_bytes: int = 0

    @property
    def event_count(self) -> int:
        return sum(len(log.entries) for log in self.logs.values())

    def log(self, origin: str) -> StoredLog:
        found = self.logs.get(origin)
        if found is None:
            found = self.logs[origin] = StoredLog(origin)
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


def _add_checkpoint(ledger: Ledger, raw: bytes, counter: list[int]) -> None:
    try:
        obj = loads(raw)
        origin = str(obj["_sas_checkpoint"])
        note = str(obj["note"])
        frontier = tuple(base64.b64decode(h, validate=True) for h in obj.get("frontier", []))
    except (ValueError, KeyError, TypeError, binascii.Error):
        ledger.malformed += 1
        return
    ledger.log(origin).checkpoints.append(StoredCheckpoint(origin, note, frontier, counter[0]))
    counter[0] += 1


def _add_meta(ledger: Ledger, meta: Any) -> None:
    if not isinstance(meta, dict):
        ledger.malformed += 1
        return
    ledger.metas.append(meta)
    key = meta.get("key")
    if isinstance(key, str) and key not in ledger.keys:
        ledger.keys.append(key)


def _platform_report(ledger: Ledger, line: bytes) -> None:
    start = line.find(b"{")
    if start < 0:
        return
    try:
        obj = loads(line[start:])
    except ValueError:
        return
    if isinstance(obj, dict) and obj.get("type") in DROPPED_EVENTS:
        ledger.platform_reports.append(obj)


def _lines_containing(data: bytes, needle: bytes) -> list[bytes]:
    """Whole lines holding ``needle``, found by searching for it (a regex that scans every line is quadratic)."""
    out = []
    at = data.find(needle)
    while at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        out.append(data[start:end])
        at = data.find(needle, end)
    return out


def _origin_key(line: bytes) -> bytes:
    end = line.find(b'"', _ORIGIN_START)
    if end < 0 or not line.startswith(SEQ_SEPARATOR, end):
        return b""  # not a well-formed entry
    return line[_ORIGIN_START:end]


_ORIGIN_START = len(ENTRY_PREFIX)
_IS_ENTRY = operator.methodcaller("startswith", ENTRY_PREFIX)
_IS_RECORD = operator.methodcaller("startswith", _MARK)


def _read_plain(ledger: Ledger, data: bytes) -> bool:
    """The fast path for files the writer made: every record starts its line. False: use the slow path."""
    lines = data.split(b"\n")
    records = list(filter(_IS_RECORD, lines))
    if len(records) != data.count(_MARK):
        return False  # a record behind a prefix (a platform's log format), or a key that looks like ours
    entries = list(filter(_IS_ENTRY, records))
    # runs of one sub-log are the writer's batches: the per-run loop is short, the per-line work stays in C
    for origin, run in itertools.groupby(entries, key=_origin_key):
        if origin:
            ledger.log(origin.decode("utf-8", "replace")).entries.extend(run)
        else:
            ledger.malformed += sum(1 for _ in run)
    counter = [0]
    for line in itertools.filterfalse(_IS_ENTRY, records):
        if line.startswith(CHECKPOINT_PREFIX):
            _add_checkpoint(ledger, line, counter)
        elif line.startswith(META_PREFIX):
            try:
                _add_meta(ledger, loads(line).get("_sas_meta"))
            except (ValueError, AttributeError):
                ledger.malformed += 1
        else:
            ledger.malformed += 1
    for line in _lines_containing(data, b"logsDropped"):
        _platform_report(ledger, line)
    return True


def _read_lines(ledger: Ledger, data: bytes) -> None:
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    if _read_plain(ledger, data):
        return
    counter = [0]
    cur_origin = ""
    cur_prefix = b"\x00"  # matches nothing until the first entry
    cur_list: list[bytes] = []
    for raw in data.split(b"\n"):
        line = raw
        if not line.startswith(_MARK):
            at = line.find(_MARK)
            if at < 0:
                if b"logsDropped" in line:
                    _platform_report(ledger, line)
                continue
            line = line[at:]
        if line.startswith(cur_prefix):
            cur_list.append(line)
            continue
        if line.startswith(ENTRY_PREFIX):
            found = entry_origin_seq(line)
            if found is None:
                ledger.malformed += 1
                continue
            cur_origin = found[0]
            cur_prefix = ENTRY_PREFIX + cur_origin.encode() + SEQ_SEPARATOR
            cur_list = ledger.log(cur_origin).entries
            cur_list.append(line)
        elif line.startswith(CHECKPOINT_PREFIX):
            _add_checkpoint(ledger, line, counter)
        elif line.startswith(META_PREFIX):
            try:
                _add_meta(ledger, loads(line).get("_sas_meta"))
            except (ValueError, AttributeError):
                ledger.malformed += 1
        else:
            ledger.malformed += 1


def _read_sqlite(ledger: Ledger, path: str) -> None:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open ledger {path}: {exc}") from None
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "batches" not in tables or "checkpoints" not in tables:
            raise InputError(f"{path}: an SQLite file but not a sas ledger (no batches/checkpoints tables)")
        lines: list[bytes] = []
        for (blob,) in db.execute("SELECT data FROM batches ORDER BY id"):
            lines.extend((blob.encode() if isinstance(blob, str) else bytes(blob)).split(b"\n"))
        if "meta" in tables:
            for (value,) in db.execute("SELECT value FROM meta ORDER BY id"):
                try:
                    _add_meta(ledger, loads(value))
                except ValueError:
                    ledger.malformed += 1
        counter = [0]
        for origin, note, frontier in db.execute("SELECT origin, note, frontier FROM checkpoints ORDER BY id"):
            raw = bytes(frontier or b"")
            nodes = tuple(raw[i : i + 32] for i in range(0, len(raw) - len(raw) % 32, 32))
            ledger.log(str(origin)).checkpoints.append(StoredCheckpoint(str(origin), str(note), nodes, counter[0]))
            counter[0] += 1
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: damaged SQLite ledger ({exc})") from None
    finally:
        db.close()
    _read_lines_into(ledger, lines)


def _read_lines_into(ledger: Ledger, lines: list[bytes]) -> None:
    cur_prefix = b"\x00"
    cur_list: list[bytes] = []
    for line in lines:
        if line.startswith(cur_prefix):
            cur_list.append(line)
            continue
        found = entry_origin_seq(line)
        if found is None:
            ledger.malformed += 1
            continue
        cur_prefix = ENTRY_PREFIX + found[0].encode() + SEQ_SEPARATOR
        cur_list = ledger.log(found[0]).entries
        cur_list.append(line)


_GZIP_MAGIC = b"\x1f\x8b"
MAX_DECOMPRESSED = 8 * 1024**3  # a gzip bomb stops here, not at the end of memory


def _read_file(ledger: Ledger, path: Path) -> None:
    name = os.fspath(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read ledger {name}: {exc.strerror or exc}") from None
    ledger.size_bytes += size
    if head == _SQLITE_MAGIC:
        _read_sqlite(ledger, name)
        wal = Path(name + "-wal")
        if wal.exists():
            ledger.size_bytes += wal.stat().st_size
        return
    try:
        if head.startswith(_GZIP_MAGIC):  # CloudWatch Logs exports to S3 are gzipped
            import gzip

            with gzip.open(path, "rb") as gz:
                data = gz.read(MAX_DECOMPRESSED + 1)
            if len(data) > MAX_DECOMPRESSED:
                raise InputError(f"{name}: decompresses to more than {MAX_DECOMPRESSED} bytes")
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read ledger {name}: {exc}") from None
    _read_lines(ledger, data)


def load_ledger(source: str | os.PathLike[str]) -> Ledger:
    """Read a ledger: a SQLite or text file, a folder of them (e.g. a CloudWatch export, files in name order,
    ``.gz`` included), or ``-`` for standard input. Unusable input is an InputError."""
    name = os.fspath(source)
    ledger = Ledger(source=name)
    if name == "-":
        data = sys.stdin.buffer.read()
        ledger.size_bytes = len(data)
        _read_lines(ledger, data)
        return ledger
    path = Path(name)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm")))
        if not files:
            raise InputError(f"ledger folder {name} holds no files")
        for file in files:
            _read_file(ledger, file)
    elif path.is_file():
        _read_file(ledger, path)
    else:
        raise InputError(f"ledger {name} not found (expected a sqlite or jsonl ledger file, or a folder of them)")
    if not ledger.logs and not ledger.metas:
        raise InputError(f"{name}: no sas ledger records found")
    return ledger

"""Anchor stores: the latest signed checkpoint of every sub-log, kept outside the ledger with compare-and-set.

Signatures prove that a checkpoint is genuine, never that it is the *latest*: whoever can edit the ledger can
cut it back to an older checkpoint (CloudTrail's digest chain has exactly this gap). The writer therefore
copies each new checkpoint to an anchor store, replacing the previous one only if the store still holds the
one this writer put there (compare-and-set). A verifier that reads the anchor catches truncation (the anchor
is ahead of the ledger), rollback and forks (the anchor holds a different history), and a writer whose CAS
fails learns that someone else is writing its sub-log (a cloned SnapStart instance, a replayed ledger).

Here: ``sqlite:PATH`` (an atomic ``UPDATE ... WHERE note = ?``) and ``redis://HOST:PORT/DB`` (one Lua script,
atomic on the server), plus ``memory`` for tests. In production the anchor must live where the function's
own role cannot rewrite history:

- **S3 Object Lock** (compliance mode): write each checkpoint as a new object key ``ORIGIN/SIZE`` with
  ``PutObject`` ``If-None-Match: *`` and a retention period; the newest key is the anchor and no principal,
  root included, can delete or overwrite it before retention ends.
- **DynamoDB conditional writes**: one item per origin, ``PutItem`` with
  ``ConditionExpression="attribute_not_exists(origin) OR note = :expected"``, and an IAM policy that grants
  the function ``PutItem`` but not ``DeleteItem``; enable point-in-time recovery so an operator rollback shows.

Both map onto :class:`AnchorStore`; they are not implemented here because their guarantees come from the AWS
account's configuration, which a unit test cannot exercise.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from sas.errors import ConfigError, InputError


class AnchorStore(ABC):
    @abstractmethod
    def get(self, origin: str) -> str | None:
        """The anchored checkpoint note of ``origin``."""

    @abstractmethod
    def compare_and_set(self, origin: str, expected: str | None, note: str) -> bool:
        """Store ``note`` if the anchor still holds ``expected`` (``None``: nothing yet). False otherwise."""

    @abstractmethod
    def items(self) -> Iterator[tuple[str, str]]:
        """Every ``(origin, note)``."""

    def close(self) -> None:  # noqa: B027 - optional
        pass


class MemoryAnchor(AnchorStore):
    def __init__(self) -> None:
        self._notes: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, origin: str) -> str | None:
        return self._notes.get(origin)

    def compare_and_set(self, origin: str, expected: str | None, note: str) -> bool:
        with self._lock:
            if self._notes.get(origin) != expected:
                return False
            self._notes[origin] = note
            return True

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(sorted(self._notes.items()))


class SqliteAnchor(AnchorStore):
    """One row per origin; the CAS is a single conditional statement, atomic under SQLite's write lock."""

    def __init__(self, path: str) -> None:
        import sqlite3

        self.path = path
        try:
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS anchors (origin TEXT PRIMARY KEY, note TEXT NOT NULL)")
        except sqlite3.Error as exc:
            raise InputError(f"cannot open anchor store {path}: {exc}") from None
        self._lock = threading.Lock()

    def get(self, origin: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT note FROM anchors WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else str(row[0])

    def compare_and_set(self, origin: str, expected: str | None, note: str) -> bool:
        with self._lock:
            if expected is None:
                cur = self._db.execute("INSERT OR IGNORE INTO anchors (origin, note) VALUES (?, ?)", (origin, note))
            else:
                cur = self._db.execute(
                    "UPDATE anchors SET note = ? WHERE origin = ? AND note = ?", (note, origin, expected)
                )
            return cur.rowcount == 1

    def items(self) -> Iterator[tuple[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT origin, note FROM anchors ORDER BY origin").fetchall()
        return iter([(str(o), str(n)) for o, n in rows])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_REDIS_CAS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (ARGV[2] == '' and not cur) or (cur and cur == ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  return 1
end
return 0
"""


class RedisAnchor(AnchorStore):
    """A Redis hash ``sas:anchors`` (origin -> note); the CAS runs as one server-side Lua script."""

    KEY = "sas:anchors"

    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError(
                "the redis anchor needs the 'redis' extra: pip install serverless-ai-shield[redis]"
            ) from None
        self._client: Any = redis.Redis.from_url(url, socket_timeout=5.0)
        self._cas: Any = self._client.register_script(_REDIS_CAS)

    def get(self, origin: str) -> str | None:
        value = self._client.hget(self.KEY, origin)
        return None if value is None else bytes(value).decode()

    def compare_and_set(self, origin: str, expected: str | None, note: str) -> bool:
        flag = "" if expected is None else "1"
        return bool(self._cas(keys=[self.KEY], args=[origin, flag, expected or "", note]))

    def items(self) -> Iterator[tuple[str, str]]:
        data = self._client.hgetall(self.KEY)
        return iter(sorted((bytes(k).decode(), bytes(v).decode()) for k, v in data.items()))

    def close(self) -> None:
        self._client.close()


def open_anchor(spec: str) -> AnchorStore:
    """``sqlite:PATH`` | ``redis://...`` | ``memory``."""
    if spec == "memory":
        return MemoryAnchor()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisAnchor(spec)
    kind, _, arg = spec.partition(":")
    if kind == "sqlite" and arg:
        return SqliteAnchor(arg)
    raise ConfigError(f"unknown anchor store {spec!r} (expected sqlite:PATH, redis://HOST:PORT/DB or memory)")

"""SQLite state: several processes on one host (a container running many workers, local tests).

Each update is one ``BEGIN IMMEDIATE`` transaction: the client's summary is one row (JSON), global
counters and the current window's bucket counts are rows of their own. WAL mode lets readers run while
a writer commits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping

from sas.runtime.state.base import Observation, StateBackend, StateError, StateView
from sas.runtime.state.summary import ClientSummary, take

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (client TEXT PRIMARY KEY, summary TEXT NOT NULL, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS globals (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (win INTEGER NOT NULL, bucket TEXT NOT NULL, hits INTEGER NOT NULL,
                                    PRIMARY KEY (win, bucket));
"""


# what parsing a stored row raises when it is damaged (json, a missing key, a wrong type, bad base64)
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, IndexError)


class SqliteState(StateBackend):
    name = "sqlite"

    def __init__(self, path: str, *, client_ttl: float = 86_400.0, window: float = 3_600.0) -> None:
        super().__init__(client_ttl=client_ttl, window=window)
        self.path = path
        self._local = threading.local()
        try:
            self._db().executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open sqlite state {path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def update(self, obs: Observation, now: float) -> StateView:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                view = self._update(db, obs, now)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"sqlite update failed: {exc}") from exc
        except _UNREADABLE as exc:  # a damaged row: degrade like an unreachable store, never fail the request
            raise StateError(f"sqlite state row not understood: {exc!r}") from exc
        return view

    def _update(self, db: sqlite3.Connection, obs: Observation, now: float) -> StateView:
        row = db.execute("SELECT summary, seen FROM clients WHERE client = ?", (obs.client,)).fetchone()
        client = ClientSummary.from_json(row[0]) if row and now - row[1] <= self.client_ttl else ClientSummary()
        dups, before, client_ok = client.apply(obs, now)
        db.execute(
            "INSERT INTO clients VALUES (?, ?, ?) ON CONFLICT(client) DO UPDATE SET summary = excluded.summary, "
            "seen = excluded.seen",
            (obs.client, client.to_json(), now),
        )
        for name, amount in obs.global_counters.items():
            db.execute(
                "INSERT INTO globals VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, float(amount)),
            )
        window = int(now // self.window)
        counts = []
        for b in obs.buckets:
            (hits,) = db.execute(
                "INSERT INTO buckets VALUES (?, ?, 1) ON CONFLICT(win, bucket) DO UPDATE SET hits = hits + 1 "
                "RETURNING hits",
                (window, b),
            ).fetchone()
            counts.append(int(hits))
        if obs.buckets:
            db.execute("DELETE FROM buckets WHERE win < ?", (window - 1,))
        global_ok = True
        if obs.global_bucket is not None:
            state = db.execute("SELECT value FROM globals WHERE name = '__tokens__'").fetchone()
            tokens, stamp = json.loads(state[0]) if state else (None, 0.0)
            global_ok, tokens, stamp = take(tokens, stamp, obs.global_bucket, obs.cost, now)
            db.execute("INSERT OR REPLACE INTO globals VALUES ('__tokens__', ?)", (json.dumps([tokens, stamp]),))
        glob = {
            name: float(value)
            for name, value in db.execute("SELECT name, value FROM globals WHERE name != '__tokens__'")
        }
        return StateView(dict(client.counters), glob, dups, counts, before, client_ok, global_ok)

    def client_counters(self, client: str) -> Mapping[str, float]:
        try:
            row = self._db().execute("SELECT summary FROM clients WHERE client = ?", (client,)).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"sqlite read failed: {exc}") from exc
        try:
            return ClientSummary.from_json(row[0]).counters if row else {}
        except _UNREADABLE as exc:
            raise StateError(f"sqlite state row not understood: {exc!r}") from exc

    def reset(self) -> None:
        db = self._db()
        db.execute("DELETE FROM clients")
        db.execute("DELETE FROM globals")
        db.execute("DELETE FROM buckets")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

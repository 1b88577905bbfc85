"""SQL over ledger events with DuckDB (the ``forensics`` extra), imported only when a query runs.

DuckDB rather than SQLite: investigators ask analytical questions (counts per client per minute, windows,
percentiles, JSON paths into ``details``) that DuckDB answers with less SQL and faster. The events are
loaded into an in-memory table ``events`` through a temporary JSON-lines file, which DuckDB's reader ingests
far faster than row-by-row inserts. Columns: ``event_id``, ``sub_log``, ``seq``, ``time`` (epoch seconds),
``ts`` (TIMESTAMP), ``event``, ``detector``, ``category``, ``threat``, ``severity``, ``verdict``,
``request_id``, ``client_id``, ``instance_id``, ``function``, ``platform``, ``details`` (JSON).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sas.display import visible
from sas.errors import InputError
from sas.forensics.timeline import ForensicEvent

_COLUMNS = {
    "event_id": "VARCHAR",
    "sub_log": "VARCHAR",
    "seq": "BIGINT",
    "time": "DOUBLE",
    "event": "VARCHAR",
    "detector": "VARCHAR",
    "category": "VARCHAR",
    "threat": "VARCHAR",
    "severity": "VARCHAR",
    "verdict": "VARCHAR",
    "request_id": "VARCHAR",
    "client_id": "VARCHAR",
    "instance_id": "VARCHAR",
    "function": "VARCHAR",
    "platform": "VARCHAR",
    "details": "JSON",
}


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def run_query(events: Iterable[ForensicEvent], sql: str) -> QueryResult:
    try:
        import duckdb
    except ImportError:
        raise InputError("sas forensics query needs DuckDB: pip install 'serverless-ai-shield[forensics]'") from None
    fd, path = tempfile.mkstemp(suffix=".jsonl", prefix="sas-events-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for e in events:
                row = e.to_dict()
                row.pop("time_iso", None)
                row["details"] = json.dumps(row["details"], sort_keys=True, default=str)
                fh.write(json.dumps(row, default=str) + "\n")
        con = duckdb.connect(":memory:")
        try:
            columns = ", ".join(f"'{k}': '{v if k != 'details' else 'VARCHAR'}'" for k, v in _COLUMNS.items())
            con.execute(
                "CREATE TABLE events AS SELECT * EXCLUDE (details), CAST(details AS JSON) AS details, "  # noqa: S608
                "to_timestamp(time) AS ts FROM read_json(?, format='newline_delimited', columns={" + columns + "})",
                [path],
            )
            try:
                cursor = con.execute(sql)
            except duckdb.Error as exc:
                raise InputError(f"query failed: {str(exc).splitlines()[0]}") from None
            description: Sequence[Any] = cursor.description or ()
            rows = tuple(tuple(r) for r in cursor.fetchall()) if description else ()
            return QueryResult(tuple(str(d[0]) for d in description), rows)
        finally:
            con.close()
    finally:
        os.unlink(path)


def format_result(result: QueryResult, fmt: str = "table") -> str:
    if fmt == "json":
        return (
            json.dumps([dict(zip(result.columns, r, strict=True)) for r in result.rows], default=str, indent=2) + "\n"
        )
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
        return buf.getvalue()
    cells = [[visible(str(c)) for c in result.columns]]
    cells += [["" if v is None else visible(str(v)) for v in r] for r in result.rows]
    widths = [min(60, max(len(row[i]) for row in cells)) for i in range(len(result.columns))]
    lines = ["  ".join(c[:60].ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    if lines:
        lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines) + "\n"

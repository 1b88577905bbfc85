"""Events as an investigator reads them: one ordered timeline merged from every instance's sub-log.

Each event keeps its ledger identity (``ORIGIN:SEQ``, the id ``prove`` takes). Merging orders by the time the
runtime stamped, then by sub-log and position, so events of one instance never swap places even when their
clocks tie.
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sas.display import visible
from sas.errors import InputError
from sas.forensics.ledger import Ledger

SEVERITY_RANK = {"": 0, "info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class ForensicEvent:
    event_id: str
    origin: str
    seq: int
    time: float
    event: str
    detector: str
    category: str
    threat: str
    severity: str
    verdict: str
    request_id: str
    client_id: str
    instance_id: str
    function: str
    platform: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_detection(self) -> bool:
        # the per-request "invocation" summary repeats its detections' verdict: count the detections only
        if self.event == "invocation":
            return False
        return self.verdict in ("alert", "block") or (self.event == "detection" and bool(self.threat))

    @property
    def iso_time(self) -> str:
        return iso(self.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "sub_log": self.origin,
            "seq": self.seq,
            "time": self.time,
            "time_iso": self.iso_time,
            "event": self.event,
            "detector": self.detector,
            "category": self.category,
            "threat": self.threat,
            "severity": self.severity,
            "verdict": self.verdict,
            "request_id": self.request_id,
            "client_id": self.client_id,
            "instance_id": self.instance_id,
            "function": self.function,
            "platform": self.platform,
            "details": dict(self.details),
        }


def iso(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return str(t)


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key, "")
    return value if isinstance(value, str) else str(value)


def ledger_events(ledger: Ledger) -> list[ForensicEvent]:
    """Every parseable entry as a :class:`ForensicEvent`, merged into one timeline."""
    out: list[ForensicEvent] = []
    for record in ledger.iter_records():
        origin = _text(record, "_sas_log")
        seq = record.get("_sas_seq")
        t = record.get("time")
        if not isinstance(seq, int) or not isinstance(t, (int, float)):
            continue
        details = record.get("details")
        out.append(
            ForensicEvent(
                event_id=f"{origin}:{seq}",
                origin=origin,
                seq=seq,
                time=float(t),
                event=_text(record, "event"),
                detector=_text(record, "detector"),
                category=_text(record, "category"),
                threat=_text(record, "threat"),
                severity=_text(record, "severity"),
                verdict=_text(record, "verdict"),
                request_id=_text(record, "request_id"),
                client_id=_text(record, "client_id"),
                instance_id=_text(record, "instance_id"),
                function=_text(record, "function"),
                platform=_text(record, "platform"),
                details=details if isinstance(details, dict) else {},
            )
        )
    out.sort(key=lambda e: (e.time, e.origin, e.seq))
    return out


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds, ISO 8601 (``2026-11-20T10:00:00Z``), or an age such as ``15m``, ``2h``, ``7d``."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        return (now if now is not None else _time.time()) - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"cannot read time {text!r} (epoch seconds, ISO 8601, or an age like 15m, 2h, 7d)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def filter_events(
    events: Iterable[ForensicEvent],
    *,
    client: str | None = None,
    request: str | None = None,
    instance: str | None = None,
    since: float | None = None,
    until: float | None = None,
    detections_only: bool = False,
    min_severity: str | None = None,
) -> list[ForensicEvent]:
    floor = SEVERITY_RANK.get(min_severity or "", 0)
    out = []
    for e in events:
        if client is not None and e.client_id != client:
            continue
        if request is not None and e.request_id != request:
            continue
        if instance is not None and instance not in e.instance_id and instance not in e.origin:
            continue
        if since is not None and e.time < since:
            continue
        if until is not None and e.time > until:
            continue
        if detections_only and not e.is_detection:
            continue
        if floor and SEVERITY_RANK.get(e.severity, 0) < floor:
            continue
        out.append(e)
    return out


def format_timeline(events: Iterable[ForensicEvent]) -> str:
    """A fixed-width table: time, instance, client, request, what, verdict, event id."""
    # every field but the time comes from the ledger, and a request id or a client header from the caller
    rows = [
        tuple(
            map(
                visible,
                (
                    e.iso_time,
                    e.instance_id[-12:],
                    e.client_id,
                    e.request_id,
                    e.event if not e.threat else f"{e.event}:{e.threat}",
                    e.verdict,
                    e.event_id,
                ),
            )
        )
        for e in events
    ]
    header = ("TIME", "INSTANCE", "CLIENT", "REQUEST", "WHAT", "VERDICT", "EVENT ID")
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  " + header[-1]]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(lines) + "\n"

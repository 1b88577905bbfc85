"""Group correlated detections into incidents: one client's detections with no quiet gap longer than a window.

An extraction campaign or an evasion search is many requests from one client over minutes; the runtime
reports each request it flags. Grouping by client and splitting at quiet gaps (default five minutes) turns
hundreds of alerts into the handful of stories an investigator reads, each with its first and last event
(ids that ``prove`` accepts), categories, threats, verdicts and the instances it touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sas.display import visible
from sas.forensics.timeline import SEVERITY_RANK, ForensicEvent, iso

DEFAULT_WINDOW = 300.0


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    client_id: str
    start: float
    end: float
    first_event: str
    last_event: str
    detections: int
    requests: int
    severity: str
    categories: tuple[tuple[str, int], ...]
    threats: tuple[tuple[str, int], ...]
    verdicts: tuple[tuple[str, int], ...]
    instances: tuple[str, ...]
    functions: tuple[str, ...]

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "start": iso(self.start),
            "end": iso(self.end),
            "duration_s": round(self.duration, 3),
            "first_event": self.first_event,
            "last_event": self.last_event,
            "detections": self.detections,
            "requests": self.requests,
            "severity": self.severity,
            "categories": dict(self.categories),
            "threats": dict(self.threats),
            "verdicts": dict(self.verdicts),
            "instances": list(self.instances),
            "functions": list(self.functions),
        }


def _build(number: int, client: str, group: list[ForensicEvent]) -> Incident:
    severity = max((e.severity for e in group), key=lambda s: SEVERITY_RANK.get(s, 0), default="")
    return Incident(
        id=f"INC-{number:04d}",
        client_id=client,
        start=group[0].time,
        end=group[-1].time,
        first_event=group[0].event_id,
        last_event=group[-1].event_id,
        detections=len(group),
        requests=len({e.request_id for e in group if e.request_id}),
        severity=severity,
        categories=tuple(Counter(e.category for e in group if e.category).most_common()),
        threats=tuple(Counter(e.threat for e in group if e.threat).most_common()),
        verdicts=tuple(Counter(e.verdict for e in group).most_common()),
        instances=tuple(dict.fromkeys(e.instance_id for e in group)),
        functions=tuple(dict.fromkeys(e.function for e in group)),
    )


def find_incidents(
    events: Iterable[ForensicEvent], *, window: float = DEFAULT_WINDOW, min_detections: int = 1
) -> list[Incident]:
    """Incidents ordered by start time; ``events`` may be any timeline (non-detections are ignored)."""
    by_client: dict[str, list[ForensicEvent]] = {}
    for e in events:
        if e.is_detection:
            by_client.setdefault(e.client_id or "(unknown client)", []).append(e)
    groups: list[tuple[str, list[ForensicEvent]]] = []
    for client, detections in by_client.items():
        detections.sort(key=lambda e: (e.time, e.origin, e.seq))
        current = [detections[0]]
        for e in detections[1:]:
            if e.time - current[-1].time > window:
                groups.append((client, current))
                current = []
            current.append(e)
        groups.append((client, current))
    groups = [g for g in groups if len(g[1]) >= min_detections]
    groups.sort(key=lambda g: (g[1][0].time, g[0]))
    return [_build(i + 1, client, group) for i, (client, group) in enumerate(groups)]


def format_incidents(incidents: Iterable[Incident]) -> str:
    lines: list[str] = []
    for inc in incidents:
        cats = ", ".join(f"{k} {v}" for k, v in inc.categories) or "-"
        threats = ", ".join(f"{k} {v}" for k, v in inc.threats) or "-"
        verdicts = ", ".join(f"{k} {v}" for k, v in inc.verdicts)
        lines.append(
            f"{inc.id}  client {visible(inc.client_id)}  {iso(inc.start)} .. {iso(inc.end)} ({inc.duration:.1f} s)  "
            f"severity {visible(inc.severity or '-')}"
        )
        lines.append(
            f"    {inc.detections} detections over {inc.requests} requests on {len(inc.instances)} instance(s)"
        )
        lines.append(f"    categories: {visible(cats)}")
        lines.append(f"    threats:    {visible(threats)}")
        lines.append(f"    verdicts:   {visible(verdicts)}")
        lines.append(f"    first: {visible(inc.first_event)}")
        lines.append(f"    last:  {visible(inc.last_event)}")
    if not lines:
        return "no incidents: no detections in the selected events\n"
    return "\n".join(lines) + "\n"

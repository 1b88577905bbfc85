"""The runtime event record (OCSF-shaped fields are added on export by forensics)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    ALLOW = "allow"
    ALERT = "alert"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """One thing that happened inside a shielded function: a detection, a policy decision, an invocation.

    ``time`` is seconds since the epoch (float, UTC). ``event`` names what happened (``invocation``,
    ``detection``, ``egress``, ``subprocess``, ``sdk-call``, ``cold-start``...). ``category``/``threat``/
    ``severity`` use the values of :mod:`sas.taxonomy` (empty for a plain invocation summary).
    """

    time: float
    event: str
    detector: str
    category: str
    threat: str
    severity: str
    verdict: Verdict
    request_id: str
    client_id: str
    instance_id: str
    function: str
    platform: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "event": self.event,
            "detector": self.detector,
            "category": self.category,
            "threat": self.threat,
            "severity": self.severity,
            "verdict": self.verdict.value,
            "request_id": self.request_id,
            "client_id": self.client_id,
            "instance_id": self.instance_id,
            "function": self.function,
            "platform": self.platform,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeEvent:
        return cls(
            time=float(data["time"]),
            event=str(data["event"]),
            detector=str(data.get("detector", "")),
            category=str(data.get("category", "")),
            threat=str(data.get("threat", "")),
            severity=str(data.get("severity", "")),
            verdict=Verdict(data.get("verdict", "allow")),
            request_id=str(data.get("request_id", "")),
            client_id=str(data.get("client_id", "")),
            instance_id=str(data.get("instance_id", "")),
            function=str(data.get("function", "")),
            platform=str(data.get("platform", "")),
            details=dict(data.get("details", {})),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True, default=str)

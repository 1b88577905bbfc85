"""Export ledger events: plain JSON lines, OCSF 1.x events, or Timesketch JSONL.

OCSF mapping (schema 1.x; every event carries the base required attributes ``activity_id``,
``category_uid``, ``class_uid``, ``metadata`` (``product``, ``version``), ``severity_id``, ``time`` (ms) and
``type_uid`` = class × 100 + activity):

- a detection (verdict ``alert``/``block``, or ``event == "detection"``) → **Detection Finding 2004**
  (``finding_info`` with ``uid``/``title``/``types``, ``action_id``/``disposition_id`` for allowed/blocked);
- ``egress`` (an outbound connection) → **Network Activity 4001** (``src_endpoint``, ``dst_endpoint``);
- ``subprocess`` → **Process Activity 1007** (``actor``, ``device``, ``process``);
- ``file-write`` / ``file`` → **File System Activity 1001** (``actor``, ``device``, ``file``);
- ``sdk-call`` and a plain ``invocation`` → **API Activity 6003** (``actor``, ``api``, ``cloud``,
  ``src_endpoint``).

Detections raised by the egress, subprocess, file or SDK monitors are both: they are exported as the
finding, with the activity's objects attached, because the finding is what a SIEM alerts on. The original
record rides along in ``unmapped`` and the ledger id in ``metadata.uid``, so nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sas import __version__
from sas.forensics.timeline import ForensicEvent, iso

OCSF_VERSION = "1.3.0"
SEVERITY_ID = {"": 0, "info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
CLOUD_PROVIDER = {"aws": "AWS", "azure": "Azure", "gcp": "GCP"}
FORMATS = ("jsonl", "ocsf", "timesketch")

CLASSES = {
    2004: ("Detection Finding", 2, "Findings"),
    4001: ("Network Activity", 4, "Network Activity"),
    1007: ("Process Activity", 1, "System Activity"),
    1001: ("File System Activity", 1, "System Activity"),
    6003: ("API Activity", 6, "Application Activity"),
}
REQUIRED = {
    2004: ("finding_info",),
    4001: ("src_endpoint", "dst_endpoint"),
    1007: ("actor", "device", "process"),
    1001: ("actor", "device", "file"),
    6003: ("actor", "api", "cloud", "src_endpoint"),
}
BASE_REQUIRED = ("activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time", "type_uid")


def _str(details: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = details.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return ""


def _endpoint_from(target: str) -> dict[str, Any]:
    host, sep, port = target.rpartition(":")
    if sep and port.isascii() and port.isdigit():  # int() fails on some digits isdigit() accepts ("²")
        return {"hostname": host.strip("[]"), "ip": host.strip("[]"), "port": int(port)}
    return {"hostname": target}


def _activity_class(e: ForensicEvent) -> int:
    kind = e.event.lower()
    if kind in ("egress", "connect", "network"):
        return 4001
    if kind in ("subprocess", "process", "exec"):
        return 1007
    if kind in ("file-write", "file", "write"):
        return 1001
    return 6003


def _actor(e: ForensicEvent) -> dict[str, Any]:
    return {"app_name": e.function, "user": {"uid": e.client_id or "unknown", "type_id": 0}}


def _device(e: ForensicEvent) -> dict[str, Any]:
    return {"uid": e.instance_id, "type_id": 0, "hostname": e.instance_id[-63:] or "unknown"}


def _activity_objects(e: ForensicEvent, class_uid: int) -> dict[str, Any]:
    d = e.details
    client_endpoint = {"ip": e.client_id} if e.client_id.replace(".", "").isdigit() else {"uid": e.client_id}
    if class_uid == 4001:
        target = _str(d, "target", "destination", "address", "host")
        return {
            "src_endpoint": {"uid": e.instance_id, "hostname": e.function},
            "dst_endpoint": _endpoint_from(target) if target else {"hostname": "unknown"},
            "connection_info": {"direction_id": 2, "protocol_name": _str(d, "protocol") or "tcp"},
        }
    if class_uid == 1007:
        cmd = _str(d, "command", "cmd", "argv", "executable") or "unknown"
        return {"actor": _actor(e), "device": _device(e), "process": {"cmd_line": cmd, "name": cmd.split(" ")[0]}}
    if class_uid == 1001:
        path = _str(d, "path", "file") or "unknown"
        return {
            "actor": _actor(e),
            "device": _device(e),
            "file": {"path": path, "name": path.rsplit("/", 1)[-1], "type_id": 1},
        }
    operation = _str(d, "operation", "api", "action") or "Invoke"
    service = _str(d, "service") or e.function
    return {
        "actor": _actor(e),
        "api": {"operation": operation, "service": {"name": service}, "request": {"uid": e.request_id or "unknown"}},
        "cloud": {"provider": CLOUD_PROVIDER.get(e.platform, e.platform or "unknown"), "region": _str(d, "region")},
        "src_endpoint": client_endpoint,
    }


def to_ocsf(e: ForensicEvent) -> dict[str, Any]:
    activity = _activity_class(e)
    severity_id = SEVERITY_ID.get(e.severity, 0)
    blocked = e.verdict == "block"
    base: dict[str, Any] = {
        "time": int(e.time * 1000),
        "severity_id": severity_id,
        "severity": e.severity.capitalize() if e.severity else "Unknown",
        "metadata": {
            "version": OCSF_VERSION,
            "uid": e.event_id,
            "product": {"name": "Serverless AI Shield", "vendor_name": "serverless-ai-shield", "version": __version__},
            "logged_time": int(e.time * 1000),
        },
        "message": f"{e.event} {e.threat}".strip() + f" ({e.verdict})",
        "unmapped": {"sas": e.to_dict()},
    }
    if e.is_detection:
        class_uid, activity_id = 2004, 1
        base.update(
            {
                "finding_info": {
                    "uid": e.event_id,
                    "title": f"{e.threat or e.event} detected by {e.detector or 'sas'}",
                    "types": [t for t in (e.category, e.threat) if t],
                    "analytic": {"name": e.detector or "sas", "type_id": 1, "type": "Rule"},
                },
                "action_id": 2 if blocked else 1,
                "action": "Denied" if blocked else "Allowed",
                "disposition_id": 2 if blocked else 1,
                "disposition": "Blocked" if blocked else "Allowed",
                "status_id": 1,
                "is_alert": True,
                "resources": [{"uid": e.instance_id, "name": e.function, "type": "function"}],
            }
        )
        base.update(_activity_objects(e, activity))  # the observed activity's objects, for context
    else:
        class_uid = activity
        activity_id = {4001: 1, 1007: 1, 1001: 1, 6003: 99}[class_uid]
        base.update(_activity_objects(e, class_uid))
        base["status_id"] = 1
        if class_uid == 6003:
            base["activity_name"] = "Other"
    name, category_uid, category_name = CLASSES[class_uid]
    base.update(
        {
            "class_uid": class_uid,
            "class_name": name,
            "category_uid": category_uid,
            "category_name": category_name,
            "activity_id": activity_id,
            "type_uid": class_uid * 100 + activity_id,
        }
    )
    return base


def missing_required(record: Mapping[str, Any]) -> list[str]:
    """Required OCSF attributes absent from ``record`` (empty when it is complete)."""
    missing = [k for k in BASE_REQUIRED if k not in record]
    class_uid = record.get("class_uid")
    if isinstance(class_uid, int):
        missing.extend(k for k in REQUIRED.get(class_uid, ()) if k not in record)
    meta = record.get("metadata")
    if not isinstance(meta, dict) or "product" not in meta or "version" not in meta:
        missing.append("metadata.product/version")
    return missing


def to_timesketch(e: ForensicEvent) -> dict[str, Any]:
    """Timesketch's JSONL import needs ``message``, ``datetime`` and ``timestamp_desc``; the rest are attributes."""
    what = f"{e.event} {e.threat}".strip()
    record: dict[str, Any] = {
        "message": f"[{e.verdict}] {what} client={e.client_id} request={e.request_id}",
        "datetime": iso(e.time),
        "timestamp": int(e.time * 1_000_000),
        "timestamp_desc": "Event Recorded",
        "data_type": "sas:runtime:event",
    }
    for key, value in e.to_dict().items():
        if key not in ("time", "time_iso"):
            record[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
    return record


def export_lines(events: Iterable[ForensicEvent], fmt: str) -> Iterator[str]:
    convert = {"jsonl": ForensicEvent.to_dict, "ocsf": to_ocsf, "timesketch": to_timesketch}[fmt]
    for e in events:
        yield json.dumps(convert(e), sort_keys=True, separators=(",", ":"), default=str)

"""The JSON report (contract in DESIGN.md)."""

from __future__ import annotations

import json
from typing import Any

from sas import __version__
from sas.scan.findings import Finding, ScanResult


def finding_dict(f: Finding) -> dict[str, Any]:
    location: dict[str, Any] = {"path": f.location.path}
    if f.location.line is not None:
        location["line"] = f.location.line
    if f.location.column is not None:
        location["column"] = f.location.column
    return {
        "rule_id": f.rule_id,
        "title": f.title,
        "severity": f.severity.value,
        "category": f.category.value,
        "threat": f.threat.value,
        "message": f.message,
        "location": location,
        "evidence": f.evidence,
        "remediation": f.remediation,
        "references": [{"id": r.label(), "title": r.title, "url": r.url} for r in f.references],
        "fingerprint": f.fingerprint,
    }


def result_dict(result: ScanResult) -> dict[str, Any]:
    worst = result.worst()
    return {
        "tool": {"name": "serverless-ai-shield", "version": __version__},
        "target": result.target,
        "findings": [finding_dict(f) for f in result.findings],
        "summary": {
            "files": result.stats.files,
            "bytes": result.stats.bytes,
            "seconds": round(result.stats.seconds, 3),
            "findings": len(result.findings),
            "by_severity": result.counts(),
            "worst": worst.value if worst else None,
            "notes": list(result.notes),
        },
        "errors": [{"path": e.path, "message": e.message} for e in result.errors],
    }


def render(result: ScanResult) -> str:
    return json.dumps(result_dict(result), indent=2, ensure_ascii=False) + "\n"

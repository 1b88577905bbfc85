"""SARIF 2.1.0, in the shape GitHub code scanning accepts.

Written directly: ``sarif-om`` is abandoned and emits the wrong key style (FIELD-NOTES.md).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from sas import __version__
from sas.scan import rules as rule_catalogue
from sas.scan.findings import ScanResult
from sas.scan.rules import Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/serverless-ai-shield/serverless-ai-shield"


def _rule_dict(rule: Rule) -> dict[str, Any]:
    help_text = f"{rule.description}\n\nRemediation: {rule.remediation}"
    refs = "".join(f"\n- [{r.label()}: {r.title}]({r.url})" for r in rule.references)
    return {
        "id": rule.id,
        "name": "".join(w.capitalize() for w in rule.title.replace("-", " ").split()),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {
            "text": help_text,
            "markdown": f"{rule.description}\n\n**Remediation:** {rule.remediation}"
            + (f"\n\n**References:**{refs}" if refs else ""),
        },
        "defaultConfiguration": {"level": rule.severity.sarif_level},
        "properties": {
            "security-severity": rule.severity.security_severity,
            "tags": ["security", rule.category.value, rule.threat.value],
            "precision": "high",
        },
    }


def sarif_dict(result: ScanResult) -> dict[str, Any]:
    used = sorted({f.rule_id for f in result.findings})
    rules = [rule_catalogue.get(rule_id) for rule_id in used]
    index = {r.id: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for f in result.findings:
        physical: dict[str, Any] = {"artifactLocation": {"uri": quote(f.location.path or result.target, safe="/!")}}
        if f.location.line is not None and f.location.line >= 1:
            region: dict[str, Any] = {"startLine": f.location.line}
            if f.location.column is not None and f.location.column >= 1:
                region["startColumn"] = f.location.column
            physical["region"] = region
        results.append(
            {
                "ruleId": f.rule_id,
                "ruleIndex": index[f.rule_id],
                "level": f.severity.sarif_level,
                "message": {"text": f.message},
                "locations": [{"physicalLocation": physical}],
                "partialFingerprints": {"sasFindingHash/v1": f.fingerprint},
                "properties": {
                    "severity": f.severity.value,
                    "security-severity": f.severity.security_severity,
                },
            }
        )
    notifications = [{"level": "error", "message": {"text": f"{e.path}: {e.message}"}} for e in result.errors]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "serverless-ai-shield",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFO_URI,
                        "rules": [_rule_dict(r) for r in rules],
                    }
                },
                "invocations": [
                    {"executionSuccessful": not result.errors, "toolExecutionNotifications": notifications}
                ],
                "results": results,
            }
        ],
    }


def render(result: ScanResult) -> str:
    return json.dumps(sarif_dict(result), indent=2, ensure_ascii=False) + "\n"

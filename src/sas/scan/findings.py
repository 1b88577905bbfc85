"""The ``Finding`` record and the report of a whole scan."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sas.scan.rules import Rule
from sas.taxonomy import Category, Reference, Severity, Threat


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is. ``path`` is relative to the scan target; archive members chain with ``!``."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        return f"{self.path}:{self.line}" + (f":{self.column}" if self.column is not None else "")


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    title: str
    severity: Severity
    category: Category
    threat: Threat
    message: str
    location: Location
    evidence: str = ""
    remediation: str = ""
    references: tuple[Reference, ...] = ()

    @property
    def fingerprint(self) -> str:
        """Stable across runs and line shifts: rule, path and evidence, not the line number."""
        key = "\x1f".join((self.rule_id, self.location.path, self.evidence))
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def make_finding(
    rule: Rule,
    location: Location | str,
    message: str,
    *,
    evidence: str = "",
    severity: Severity | None = None,
) -> Finding:
    """A finding of ``rule`` at ``location``; ``severity`` overrides the rule's default where context warrants."""
    loc = Location(location) if isinstance(location, str) else location
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        severity=severity or rule.severity,
        category=rule.category,
        threat=rule.threat,
        message=message,
        location=loc,
        evidence=evidence,
        remediation=rule.remediation,
        references=rule.references,
    )


@dataclass(frozen=True, slots=True)
class ScanErrorRecord:
    """Something the scanner could not read at all (I/O error, permission). Reported, never skipped."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Component:
    """Something the package ships, for the SBOM and the integrity manifest.

    ``kind`` is ``python-package``, ``model``, ``layer`` or ``file``; ``format`` names a model format
    (``pickle``, ``pytorch``, ``onnx``...); ``sha256`` is hex, empty when not computed.
    """

    kind: str
    name: str
    path: str
    version: str = ""
    format: str = ""
    sha256: str = ""
    size: int = 0
    purl: str = ""


@dataclass(frozen=True, slots=True)
class ScanStats:
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ScanResult:
    target: str
    findings: tuple[Finding, ...]
    errors: tuple[ScanErrorRecord, ...]
    stats: ScanStats = field(default_factory=ScanStats)
    notes: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def fails(self, threshold: Severity) -> bool:
        """Exit-code rule: a finding at or above ``threshold``, or any error (fail closed), fails."""
        return bool(self.errors) or any(f.severity >= threshold for f in self.findings)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

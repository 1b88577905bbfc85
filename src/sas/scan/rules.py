"""The rule catalogue: every check ``sas scan`` can report, with a stable id.

Each analyzer module declares its own rules with :func:`rule` at import time; :func:`catalogue` imports
every analyzer (through :mod:`sas.scan.registry`) and lists them. Ids never change meaning once released;
a retired rule keeps its id reserved.
"""

from __future__ import annotations

from dataclasses import dataclass

from sas.taxonomy import Category, Reference, Severity, Threat, category_of, references


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity
    threat: Threat
    description: str
    remediation: str
    references: tuple[Reference, ...] = ()

    @property
    def category(self) -> Category:
        return category_of(self.threat)


_RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    title: str,
    severity: Severity,
    threat: Threat,
    description: str,
    remediation: str,
    refs: tuple[str, ...] = (),
) -> Rule:
    """Declare a rule. Ids are unique: declaring one twice with different content is a programming error."""
    new = Rule(rule_id, title, severity, threat, description, remediation, references(*refs))
    old = _RULES.setdefault(rule_id, new)
    if old != new:
        raise RuntimeError(f"rule id {rule_id} declared twice")
    return new


def get(rule_id: str) -> Rule:
    catalogue()
    return _RULES[rule_id]


def catalogue() -> list[Rule]:
    """Every rule, sorted by id (imports all analyzers so their rules are declared)."""
    from sas.scan import registry

    registry.load_all()
    return sorted(_RULES.values(), key=lambda r: r.id)


# Rules of the scan engine itself, shared by every analyzer.
INCOMPLETE_MODEL = rule(
    "SAS-SCAN-001",
    "Model file could not be fully analysed",
    Severity.HIGH,
    Threat.INCOMPLETE_ANALYSIS,
    "A model file could not be parsed to the end (truncated, corrupt, or built to confuse parsers). "
    "Whatever follows the point of failure is unchecked, and loaders often execute what comes before it.",
    "Rebuild the artifact from a trusted source, or replace it with a format that cannot run code (safetensors, ONNX).",
    ("MITRE ATLAS AML.T0011.000", "CWE-20"),
)
INCOMPLETE_FILE = rule(
    "SAS-SCAN-002",
    "File could not be fully analysed",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "A file that sas knows how to check could not be parsed or read completely, so parts of it are unchecked.",
    "Fix or remove the file; if it is expected, suppress this finding for its path.",
    ("CWE-20",),
)
FORMAT_MISMATCH = rule(
    "SAS-SCAN-003",
    "File content does not match its name",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "The file's name promises a format (by extension) but its content is not that format. Loaders that trust "
    "the content may treat it as something else, such as a pickle.",
    "Check where the file came from and regenerate it.",
    ("CWE-20",),
)

"""The shared threat vocabulary: categories, threats, severities and framework references (these defined in
:mod:`sas._references` and built on first use).

Every static finding and every runtime event carries one category and one threat from here, so that
scan reports, runtime alerts and forensic timelines speak the same language. This module is part of
the floor: it imports nothing from the rest of ``sas``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time, __getattr__ below: built on first use
    from sas._references import REFERENCES, Reference

__all__ = [
    "REFERENCES",
    "THREAT_CATEGORY",
    "Category",
    "Reference",
    "Severity",
    "Threat",
    "category_of",
    "references",
]


class Category(StrEnum):
    """The five attack-surface categories of ML on FaaS."""

    FUNCTION = "function"
    MODEL = "model"
    INFRASTRUCTURE = "infrastructure"
    SUPPLY_CHAIN = "supply-chain"
    IAM = "iam"


class Threat(StrEnum):
    """Threat names; each belongs to exactly one category (see ``THREAT_CATEGORY``)."""

    # function-level
    COLD_START_TAMPERING = "cold-start-tampering"
    DEPENDENCY_POISONING = "dependency-poisoning"
    UNSAFE_HANDLER_CODE = "unsafe-handler-code"
    # model-specific
    MODEL_EXTRACTION = "model-extraction"
    ADVERSARIAL_INPUT = "adversarial-input"
    UNSAFE_MODEL_ARTIFACT = "unsafe-model-artifact"
    DENIAL_OF_WALLET = "denial-of-wallet"
    # infrastructure
    CROSS_INVOCATION_CONTAMINATION = "cross-invocation-contamination"
    PRIVILEGE_ESCALATION = "privilege-escalation"
    RUNTIME_COMPROMISE = "runtime-compromise"
    HOSTILE_ARCHIVE = "hostile-archive"
    # supply chain
    MALICIOUS_LAYER = "malicious-layer"
    BACKDOORED_LIBRARY = "backdoored-library"
    UNTRUSTED_ARTIFACT_SOURCE = "untrusted-artifact-source"
    # IAM and exposure
    OVER_PRIVILEGE = "over-privilege"
    PRIVILEGE_ESCALATION_PATH = "privilege-escalation-path"
    PUBLIC_EXPOSURE = "public-exposure"
    SECRET_EXPOSURE = "secret-exposure"
    EPHEMERAL_CREDENTIAL_MISUSE = "ephemeral-credential-misuse"
    # a file or input the tool could not fully analyse; never passes silently
    INCOMPLETE_ANALYSIS = "incomplete-analysis"


THREAT_CATEGORY: dict[Threat, Category] = {
    Threat.COLD_START_TAMPERING: Category.FUNCTION,
    Threat.DEPENDENCY_POISONING: Category.FUNCTION,
    Threat.UNSAFE_HANDLER_CODE: Category.FUNCTION,
    Threat.MODEL_EXTRACTION: Category.MODEL,
    Threat.ADVERSARIAL_INPUT: Category.MODEL,
    Threat.UNSAFE_MODEL_ARTIFACT: Category.MODEL,
    Threat.DENIAL_OF_WALLET: Category.MODEL,
    Threat.CROSS_INVOCATION_CONTAMINATION: Category.INFRASTRUCTURE,
    Threat.PRIVILEGE_ESCALATION: Category.INFRASTRUCTURE,
    Threat.RUNTIME_COMPROMISE: Category.INFRASTRUCTURE,
    Threat.HOSTILE_ARCHIVE: Category.INFRASTRUCTURE,
    Threat.MALICIOUS_LAYER: Category.SUPPLY_CHAIN,
    Threat.BACKDOORED_LIBRARY: Category.SUPPLY_CHAIN,
    Threat.UNTRUSTED_ARTIFACT_SOURCE: Category.SUPPLY_CHAIN,
    Threat.OVER_PRIVILEGE: Category.IAM,
    Threat.PRIVILEGE_ESCALATION_PATH: Category.IAM,
    Threat.PUBLIC_EXPOSURE: Category.IAM,
    Threat.SECRET_EXPOSURE: Category.IAM,
    Threat.EPHEMERAL_CREDENTIAL_MISUSE: Category.IAM,
    Threat.INCOMPLETE_ANALYSIS: Category.INFRASTRUCTURE,
}


class Severity(StrEnum):
    """Finding severity, ordered ``info < low < medium < high < critical``.

    High and critical mean an attacker can run code, steal data or the model, or escalate.
    """

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    # str already defines every comparison (alphabetical), so all four must be overridden: total_ordering
    # would leave str's __gt__/__ge__ in place and make max() and >= silently alphabetical.
    def __lt__(self, other: object) -> bool:
        return self.rank < other.rank if isinstance(other, Severity) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= other.rank if isinstance(other, Severity) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > other.rank if isinstance(other, Severity) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= other.rank if isinstance(other, Severity) else NotImplemented

    __hash__ = str.__hash__

    @property
    def security_severity(self) -> str:
        """The CVSS-like score GitHub code scanning reads from SARIF ``security-severity``."""
        return _SECURITY_SEVERITY[self]

    @property
    def sarif_level(self) -> str:
        return "error" if self.rank >= 3 else ("warning" if self.rank == 2 else "note")

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}
_SECURITY_SEVERITY = {
    Severity.INFO: "0.0",
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.5",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}


def references(*labels: str) -> tuple[Reference, ...]:
    """Look up references by label (``"MITRE ATLAS AML.T0010"``); an unknown label is a programming error."""
    from sas._references import REFERENCES

    return tuple(REFERENCES[label] for label in labels)


def category_of(threat: Threat) -> Category:
    return THREAT_CATEGORY[threat]


def __getattr__(name: str) -> Any:
    # ``Reference`` and ``REFERENCES`` are built on first use: the runtime imports this module at every cold start
    # and never cites a reference.
    if name in {"Reference", "REFERENCES"}:
        from sas import _references

        return getattr(_references, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

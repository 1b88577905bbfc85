"""The shared threat vocabulary: categories, threats, severities and framework references.

Every static finding and every runtime event carries one category and one threat from here, so that
scan reports, runtime alerts and forensic timelines speak the same language. This module is part of
the floor: it imports nothing from the rest of ``sas``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


@dataclass(frozen=True, slots=True)
class Reference:
    """A pointer into a public framework: MITRE ATLAS, OWASP ML Top 10, OWASP Serverless Top 10, CWE."""

    framework: str
    id: str
    title: str
    url: str

    def label(self) -> str:
        return self.id if self.id.startswith(self.framework) else f"{self.framework} {self.id}"


def _ref(framework: str, ident: str, title: str, url: str) -> Reference:
    return Reference(framework, ident, title, url)


_ATLAS = "https://atlas.mitre.org/techniques/"
_OWASP_ML = "https://owasp.org/www-project-machine-learning-security-top-10/docs/"
_OWASP_SLS = "https://owasp.org/www-project-serverless-top-10/"
_CWE = "https://cwe.mitre.org/data/definitions/"

REFERENCES: dict[str, Reference] = {
    r.label(): r
    for r in (
        _ref("MITRE ATLAS", "AML.T0010", "ML Supply Chain Compromise", _ATLAS + "AML.T0010"),
        _ref("MITRE ATLAS", "AML.T0010.003", "ML Supply Chain Compromise: Model", _ATLAS + "AML.T0010.003"),
        _ref("MITRE ATLAS", "AML.T0011.000", "User Execution: Unsafe ML Artifacts", _ATLAS + "AML.T0011.000"),
        _ref("MITRE ATLAS", "AML.T0018", "Manipulate AI Model (backdoor)", _ATLAS + "AML.T0018"),
        _ref(
            "MITRE ATLAS",
            "AML.T0024.002",
            "Exfiltration via AI Inference API: Extract Model",
            _ATLAS + "AML.T0024.002",
        ),
        _ref("MITRE ATLAS", "AML.T0043", "Craft Adversarial Data", _ATLAS + "AML.T0043"),
        _ref("MITRE ATLAS", "AML.T0034", "Cost Harvesting", _ATLAS + "AML.T0034"),
        _ref("MITRE ATLAS", "AML.T0049", "Exploit Public-Facing Application", _ATLAS + "AML.T0049"),
        _ref("MITRE ATLAS", "AML.T0055", "Unsecured Credentials", _ATLAS + "AML.T0055"),
        _ref("OWASP ML Top 10", "ML05", "Model Theft", _OWASP_ML + "ML05_2023-Model_Theft"),
        _ref(
            "OWASP ML Top 10",
            "ML01",
            "Input Manipulation Attack",
            _OWASP_ML + "ML01_2023-Input_Manipulation_Attack",
        ),
        _ref(
            "OWASP ML Top 10",
            "ML06",
            "AI Supply Chain Attacks",
            _OWASP_ML + "ML06_2023-AI_Supply_Chain_Attacks",
        ),
        _ref("OWASP ML Top 10", "ML10", "Model Poisoning", _OWASP_ML + "ML10_2023-Model_Poisoning"),
        _ref("OWASP Serverless Top 10", "SAS-1", "Function Event Data Injection", _OWASP_SLS),
        _ref("OWASP Serverless Top 10", "SAS-2", "Broken Authentication", _OWASP_SLS),
        _ref("OWASP Serverless Top 10", "SAS-3", "Insecure Serverless Deployment Configuration", _OWASP_SLS),
        _ref("OWASP Serverless Top 10", "SAS-4", "Over-Privileged Function Permissions and Roles", _OWASP_SLS),
        _ref("OWASP Serverless Top 10", "SAS-5", "Inadequate Function Monitoring and Logging", _OWASP_SLS),
        _ref("OWASP Serverless Top 10", "SAS-6", "Insecure Third-Party Dependencies", _OWASP_SLS),
        _ref("OWASP Serverless Top 10", "SAS-7", "Insecure Application Secrets Storage", _OWASP_SLS),
        _ref(
            "OWASP Serverless Top 10",
            "SAS-8",
            "Denial of Service and Financial Resource Exhaustion",
            _OWASP_SLS,
        ),
        _ref("OWASP Serverless Top 10", "SAS-9", "Serverless Business Logic Manipulation", _OWASP_SLS),
        _ref(
            "OWASP Serverless Top 10",
            "SAS-10",
            "Improper Exception Handling and Verbose Error Messages",
            _OWASP_SLS,
        ),
        _ref("CWE", "CWE-502", "Deserialization of Untrusted Data", _CWE + "502.html"),
        _ref("CWE", "CWE-22", "Path Traversal", _CWE + "22.html"),
        _ref("CWE", "CWE-409", "Improper Handling of Highly Compressed Data", _CWE + "409.html"),
        _ref("CWE", "CWE-59", "Link Following", _CWE + "59.html"),
        _ref("CWE", "CWE-94", "Code Injection", _CWE + "94.html"),
        _ref("CWE", "CWE-1336", "Template Injection", _CWE + "1336.html"),
        _ref("CWE", "CWE-20", "Improper Input Validation", _CWE + "20.html"),
        _ref("CWE", "CWE-354", "Improper Validation of Integrity Check Value", _CWE + "354.html"),
        _ref("CWE", "CWE-78", "OS Command Injection", _CWE + "78.html"),
        _ref("CWE", "CWE-918", "Server-Side Request Forgery", _CWE + "918.html"),
        _ref("CWE", "CWE-798", "Use of Hard-coded Credentials", _CWE + "798.html"),
        _ref("CWE", "CWE-532", "Insertion of Sensitive Information into Log File", _CWE + "532.html"),
        _ref("CWE", "CWE-95", "Eval Injection", _CWE + "95.html"),
        _ref("CWE", "CWE-488", "Exposure of Data Element to Wrong Session", _CWE + "488.html"),
    )
}


def references(*labels: str) -> tuple[Reference, ...]:
    """Look up references by label (``"MITRE ATLAS AML.T0010"``); an unknown label is a programming error."""
    return tuple(REFERENCES[label] for label in labels)


def category_of(threat: Threat) -> Category:
    return THREAT_CATEGORY[threat]

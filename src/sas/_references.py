"""The framework references that findings and rules cite: MITRE ATLAS, OWASP ML Top 10, OWASP Serverless Top 10,
CWE. Part of :mod:`sas.taxonomy`, which exports these names: they live here so that a runtime cold start, which
never cites a reference, does not build them (a frozen dataclass and forty records, ~0.5 ms)."""

from __future__ import annotations

from dataclasses import dataclass


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

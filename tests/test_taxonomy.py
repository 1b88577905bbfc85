from __future__ import annotations

import pytest

from sas import taxonomy
from sas.taxonomy import REFERENCES, THREAT_CATEGORY, Category, Reference, Severity, Threat, references


def test_every_threat_has_a_category() -> None:
    assert set(THREAT_CATEGORY) == set(Threat)
    assert set(THREAT_CATEGORY.values()) == set(Category)


def test_severity_compares_by_rank_not_alphabetically() -> None:
    assert Severity.INFO < Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    assert max([Severity.LOW, Severity.CRITICAL, Severity.HIGH]) is Severity.CRITICAL
    assert Severity.parse(" High ") is Severity.HIGH
    with pytest.raises(ValueError):
        Severity.parse("severe")


def test_references_cover_the_three_frameworks() -> None:
    frameworks = {r.framework for r in REFERENCES.values()}
    assert {"MITRE ATLAS", "OWASP ML Top 10", "OWASP Serverless Top 10"} <= frameworks
    assert all(r.url.startswith("https://") for r in REFERENCES.values())


def test_references_are_built_on_first_use_and_keep_their_names() -> None:
    # built lazily (the runtime never cites one), but still sas.taxonomy's names
    assert references("CWE-502", "MITRE ATLAS AML.T0010") == (
        REFERENCES["CWE-502"],
        REFERENCES["MITRE ATLAS AML.T0010"],
    )
    assert isinstance(REFERENCES["CWE-502"], Reference) and taxonomy.Reference is Reference
    with pytest.raises(AttributeError):
        _ = taxonomy.NOT_A_NAME

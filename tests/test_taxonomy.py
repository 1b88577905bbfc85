from __future__ import annotations

import pytest

from sas.taxonomy import REFERENCES, THREAT_CATEGORY, Category, Severity, Threat


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

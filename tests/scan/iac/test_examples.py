"""The shipped examples: every misconfigured deployment is caught, every clean twin is quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

from sas.scan.engine import scan
from sas.scan.iac.analyzer import IacAnalyzer
from sas.taxonomy import Severity

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "iac"
PAIRS = ["aws-sam", "aws-serverless", "aws-terraform", "azure-functions", "gcp-terraform"]


def _scan(name: str):
    return scan(EXAMPLES / name, analyzers=[IacAnalyzer()])


@pytest.mark.parametrize("pair", PAIRS)
def test_bad_example_is_caught(pair):
    result = _scan(f"{pair}-bad")
    assert result.worst() is not None and result.worst() >= Severity.HIGH
    assert "SAS-IAC-001" in {f.rule_id for f in result.findings}  # every bad example has a public entry point


@pytest.mark.parametrize("pair", PAIRS)
def test_good_example_is_clean(pair):
    result = _scan(f"{pair}-good")
    assert [f"{f.rule_id} {f.message}" for f in result.findings if f.severity >= Severity.MEDIUM] == []


@pytest.mark.parametrize("pair", ["aws-sam", "aws-serverless", "aws-terraform", "gcp-terraform"])
def test_public_and_privileged_is_critical(pair):
    result = _scan(f"{pair}-bad")
    assert "SAS-IAM-010" in {f.rule_id for f in result.findings if f.severity == Severity.CRITICAL}

"""Report writers: the JSON contract, SARIF that GitHub code scanning accepts, and the human formats."""

from __future__ import annotations

import json

import pytest

from sas.errors import InputError
from sas.scan.findings import Location, ScanErrorRecord, ScanResult, ScanStats, make_finding
from sas.scan.report import render
from sas.scan.rules import FORMAT_MISMATCH, INCOMPLETE_MODEL


def _result() -> ScanResult:
    findings = (
        make_finding(INCOMPLETE_MODEL, Location("pkg.zip!model dir/m.pkl", 3, 5), "truncated at byte 9", evidence="x"),
        make_finding(FORMAT_MISMATCH, "weights.h5", "not HDF5"),
    )
    return ScanResult(
        "pkg.zip",
        findings,
        (ScanErrorRecord("broken.bin", "permission denied"),),
        ScanStats(3, 1234, 0.5),
        ("no vulnerability database given",),
    )


def test_json_report_has_contract_fields() -> None:
    doc = json.loads(render(_result(), "json"))
    assert set(doc) >= {"tool", "target", "findings", "summary", "errors"}
    assert doc["tool"]["name"] and doc["tool"]["version"]
    first = doc["findings"][0]
    for key in (
        "rule_id",
        "title",
        "severity",
        "category",
        "threat",
        "message",
        "location",
        "evidence",
        "remediation",
        "references",
    ):
        assert key in first
    assert first["location"] == {"path": "pkg.zip!model dir/m.pkl", "line": 3, "column": 5}
    assert doc["errors"] == [{"path": "broken.bin", "message": "permission denied"}]
    assert doc["summary"]["by_severity"]["high"] == 1


def test_sarif_is_structurally_valid_for_code_scanning() -> None:
    doc = json.loads(render(_result(), "sarif"))
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] and driver["version"]
    rule_ids = [r["id"] for r in driver["rules"]]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        score = float(rule["properties"]["security-severity"])
        assert 0.0 <= score <= 10.0
    for res in run["results"]:
        assert res["ruleId"] in rule_ids and driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in {"none", "note", "warning", "error"}
        assert res["message"]["text"]
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] and " " not in loc["artifactLocation"]["uri"]
        if "region" in loc:
            assert loc["region"]["startLine"] >= 1
        assert res["partialFingerprints"]
    assert run["invocations"][0]["executionSuccessful"] is False  # an error was recorded


def test_sarif_fingerprints_are_stable_across_line_shifts() -> None:
    a = make_finding(INCOMPLETE_MODEL, Location("m.pkl", 3), "x", evidence="os.system")
    b = make_finding(INCOMPLETE_MODEL, Location("m.pkl", 40), "x", evidence="os.system")
    c = make_finding(INCOMPLETE_MODEL, Location("n.pkl", 3), "x", evidence="os.system")
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_human_formats_show_every_finding_and_error(fmt: str) -> None:
    text = render(_result(), fmt)
    assert "SAS-SCAN-001" in text and "SAS-SCAN-003" in text and "broken.bin" in text
    assert "no vulnerability database given" in text


def test_unknown_format_is_input_error() -> None:
    with pytest.raises(InputError):
        render(_result(), "xml")


def test_errors_fail_closed_even_without_findings() -> None:
    from sas.taxonomy import Severity

    empty = ScanResult("x", (), (ScanErrorRecord("a", "unreadable"),))
    assert empty.fails(Severity.CRITICAL)
    assert not ScanResult("x", (), ()).fails(Severity.INFO)


def test_hostile_file_names_cannot_drive_the_terminal_or_the_markdown() -> None:
    """Found by scanning a folder of hostile names: the table printed an escape sequence in a file name as it was
    (it retitled or recoloured the terminal) and a newline as a forged row; the markdown let a backtick close the
    code span and a link through."""
    name = "\x1b]0;owned\x07m.pkl\nCRITICAL  forged`](http://e)"
    result = ScanResult(
        name,
        (make_finding(INCOMPLETE_MODEL, Location(name, 1, 1), f"truncated in {name}", evidence="x"),),
        (ScanErrorRecord(name, name),),
        ScanStats(1, 1, 0.1),
        (name,),
    )
    table = render(result, "table")
    assert "\x1b" not in table and "\x07" not in table and "\nCRITICAL  forged" not in table
    markdown = render(result, "markdown")
    assert "\x1b" not in markdown and "forged\\`\\](http" in markdown  # in prose, markup is escaped
    assert "``\\x1b" in markdown  # in a code span (literal), fenced by more backticks than the name holds

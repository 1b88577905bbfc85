"""Known-vulnerable and known-malicious versions from a small OSV database written by the test."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from supply_helpers import copy_distribution, run

from sas.cli import main
from sas.scan.supply.osv import VulnDatabase
from sas.taxonomy import Severity

RECORDS = [
    {
        "id": "GHSA-test-0001",
        "summary": "Session leaks Proxy-Authorization header",
        "aliases": ["CVE-2099-0001"],
        "database_specific": {"severity": "MODERATE"},
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "requests"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}],
            }
        ],
    },
    {
        "id": "PYSEC-test-0002",
        "summary": "Two affected ranges, the second closed by last_affected",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Idna"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "1.0"},
                            {"fixed": "2.0"},
                            {"introduced": "3.0"},
                            {"last_affected": "99.0"},
                        ],
                    }
                ],
            }
        ],
    },
    {
        "id": "MAL-2099-1",
        "summary": "Malicious code in evil-pkg (PyPI)",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "evil_pkg"}, "versions": ["1.0.0"]}],
    },
    {
        "id": "GHSA-test-npm",
        "affected": [{"package": {"ecosystem": "npm", "name": "requests"}, "versions": ["2.31.0"]}],
    },
    {
        "id": "GHSA-test-withdrawn",
        "withdrawn": "2099-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "versions": ["2.31.0"]}],
    },
]


@pytest.fixture(params=["folder", "zip"])
def vuln_db(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    if request.param == "folder":
        folder = tmp_path / "osv"
        folder.mkdir()
        for record in RECORDS:
            (folder / f"{record['id']}.json").write_text(json.dumps(record))
        (folder / "not-json.json").write_text("{broken")
        return folder
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for record in RECORDS:
            zf.writestr(f"{record['id']}.json", json.dumps(record))
    return archive


def test_ranges_versions_and_withdrawn(vuln_db: Path) -> None:
    db = VulnDatabase.load(str(vuln_db), {"requests", "idna", "evil-pkg"})
    assert [a.id for a in db.lookup("requests", "2.31.0")] == ["GHSA-test-0001"]
    assert db.lookup("requests", "2.32.0") == []
    assert [a.id for a in db.lookup("idna", "1.5")] == ["PYSEC-test-0002"]
    assert db.lookup("idna", "2.5") == []
    assert [a.id for a in db.lookup("idna", "99.0")] == ["PYSEC-test-0002"]
    assert db.lookup("idna", "99.1") == []
    malicious = db.lookup("evil-pkg", "1.0.0")
    assert [a.id for a in malicious] == ["MAL-2099-1"] and malicious[0].malicious
    assert db.lookup("evil-pkg", "1.0.1") == []


def test_scan_reports_pinned_and_vendored_versions(vuln_db: Path, tmp_path: Path) -> None:
    function = tmp_path / "fn"
    function.mkdir()
    idna = copy_distribution("idna", function)
    (function / "requirements.txt").write_text("requests==2.31.0\nurllib3==2.2.0\nevil-pkg==1.0.0\nsix==1.16.0\n")
    result = run(function, vuln_db=str(vuln_db))
    found = {(f.rule_id, f.location.path, f.location.line, f.severity) for f in result.findings}
    assert ("SAS-DEP-005", "requirements.txt", 1, Severity.MEDIUM) in found  # GHSA MODERATE
    assert ("SAS-DEP-006", "requirements.txt", 3, Severity.CRITICAL) in found
    vendored = [f for f in result.findings if f.rule_id == "SAS-DEP-005" and f.location.path.endswith(".dist-info")]
    assert [f.location.path for f in vendored] == [f"idna-{idna.version}.dist-info"]
    message = next(f.message for f in result.findings if f.evidence.startswith("GHSA-test-0001"))
    assert "fixed in 2.32.0" in message
    assert any("OSV records read" in note for note in result.notes)
    assert not any("NOT checked" in note for note in result.notes)


def test_without_database_the_report_says_so(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    result = run(tmp_path)
    assert any("No vulnerability database" in note and "NOT checked" in note for note in result.notes)
    assert not [f for f in result.findings if f.rule_id in ("SAS-DEP-005", "SAS-DEP-006")]


def test_missing_database_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    assert main(["scan", str(tmp_path), "--vuln-db", str(tmp_path / "nope.zip"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nope.zip" in err and "Traceback" not in err


def test_damaged_osv_records_and_members_are_reported_not_raised(tmp_path: Path) -> None:
    """Found by fuzzing: a record whose fields have the wrong shape ("affected": 1.5) raised TypeError, and a
    member stored with an unknown compression method raised NotImplementedError, out of the whole scan. They are
    now counted, and the report says their advisories were not checked."""
    archive = tmp_path / "db.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for record in RECORDS:
            zf.writestr(f"{record['id']}.json", json.dumps(record))
        zf.writestr("BROKEN-1.json", json.dumps({"id": "BROKEN-1", "affected": 1.5, "x": "requests"}))
        zf.writestr("BROKEN-2.json", json.dumps({"id": "BROKEN-2", "affected": [{"package": ["requests"]}]}))
    raw = bytearray(archive.read_bytes())
    at = raw.rindex(b"PK\x01\x02")  # the last member's central directory record
    raw[at + 10 : at + 12] = (99).to_bytes(2, "little")  # its compression method: unknown
    archive.write_bytes(bytes(raw))
    db = VulnDatabase.load(str(archive), {"requests", "idna", "evil-pkg"})
    assert db.unreadable == 2 and [a.id for a in db.lookup("requests", "2.31.0")] == ["GHSA-test-0001"]
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    result = run(tmp_path, vuln_db=str(archive))
    assert any("could not be read" in note and "NOT checked" in note for note in result.notes)

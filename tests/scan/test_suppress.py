"""Suppressions: inline sas:ignore comments and the expiring baseline, through the real scan engine."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from sas.cli import main
from sas.errors import ConfigError
from sas.scan.engine import scan
from sas.scan.iac.analyzer import IacAnalyzer
from sas.scan.settings import ScanSettings
from sas.scan.suppress import baseline_from_report

TEMPLATE = """AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      ReservedConcurrentExecutions: 5
      Tracing: Active
      FunctionUrlConfig:
        AuthType: NONE{comment}
"""


def _scan(tmp_path, comment="", baseline=None):
    (tmp_path / "template.yaml").write_text(TEMPLATE.format(comment=comment))
    settings = ScanSettings(baseline=str(baseline) if baseline else None)
    return scan(tmp_path, settings, analyzers=[IacAnalyzer()])


def _rules(result):
    return {f.rule_id for f in result.findings}


def test_inline_comment_on_the_line(tmp_path):
    assert "SAS-IAC-001" in _rules(_scan(tmp_path))
    result = _scan(tmp_path, "  # sas:ignore SAS-IAC-001 public demo, no data behind it")
    assert "SAS-IAC-001" not in _rules(result)
    assert any("suppressed 1 finding(s) by sas:ignore" in n for n in result.notes)


def test_inline_comment_on_the_line_above(tmp_path):
    text = TEMPLATE.format(comment="").replace(
        "        AuthType: NONE", "        # sas:ignore SAS-IAC-001,SAS-IAC-009 reviewed\n        AuthType: NONE"
    )
    (tmp_path / "template.yaml").write_text(text)
    assert "SAS-IAC-001" not in _rules(scan(tmp_path, analyzers=[IacAnalyzer()]))


def test_inline_comment_for_another_rule_does_not_suppress(tmp_path):
    assert "SAS-IAC-001" in _rules(_scan(tmp_path, "  # sas:ignore SAS-IAM-001 wrong rule"))


def _baseline(tmp_path, expires):
    report = json.loads(
        json.dumps(
            {
                "findings": [
                    {"fingerprint": f.fingerprint, "rule_id": f.rule_id, "location": {"path": f.location.path}}
                    for f in _scan(tmp_path).findings
                ]
            }
        )
    )
    path = tmp_path.parent / f"baseline-{expires}.json"
    path.write_text(json.dumps(baseline_from_report(report, expires, "accepted for the demo")))
    return path


def test_baseline_suppresses_until_expiry(tmp_path):
    future = _baseline(tmp_path, date.today() + timedelta(days=30))
    result = _scan(tmp_path, baseline=future)
    assert result.findings == ()
    assert any("by baseline" in n for n in result.notes)


def test_expired_baseline_entry_reports_again(tmp_path):
    past = _baseline(tmp_path, date.today() - timedelta(days=1))
    result = _scan(tmp_path, baseline=past)
    assert "SAS-IAC-001" in _rules(result)
    assert any("expired on" in n for n in result.notes)


def test_baseline_survives_line_shifts(tmp_path):
    future = _baseline(tmp_path, date.today() + timedelta(days=30))
    shifted = "# a new comment line\n" + TEMPLATE.format(comment="")
    (tmp_path / "template.yaml").write_text(shifted)
    assert scan(tmp_path, ScanSettings(baseline=str(future)), analyzers=[IacAnalyzer()]).findings == ()


def test_bad_baseline_is_a_config_error(tmp_path):
    bad = tmp_path.parent / "bad.json"
    bad.write_text(json.dumps({"suppressions": [{"fingerprint": "abc"}]}))
    with pytest.raises(ConfigError, match="expires"):
        _scan(tmp_path, baseline=bad)


def test_cli_baseline_bad_file_exits_2(tmp_path, capsys):
    (tmp_path / "template.yaml").write_text(TEMPLATE.format(comment=""))
    code = main(["scan", str(tmp_path), "--baseline", str(tmp_path / "missing.json"), "--no-progress"])
    assert code == 2
    assert "baseline" in capsys.readouterr().err

"""The `sas` command's contracts: exit codes, one-line errors, machine formats that parse."""

from __future__ import annotations

import json

import pytest

from sas.cli import main


def test_missing_path_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "missing/path"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing/path" in err and "Traceback" not in err


def test_rules_lists_catalogue_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == 0
    rules = json.loads(capsys.readouterr().out)
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)) and "SAS-SCAN-001" in ids
    for r in rules:
        assert r["severity"] in {"info", "low", "medium", "high", "critical"}
        assert r["category"] in {"function", "model", "infrastructure", "supply-chain", "iam"}


def test_unknown_fail_on_is_usage_error(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", ".", "--fail-on", "severe"]) == 2
    assert "unknown severity" in capsys.readouterr().err


def test_bad_config_is_error_not_traceback(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    cfg = Path(str(tmp_path)) / "sas.toml"
    cfg.write_text("[scan\nbroken")
    assert main(["scan", str(tmp_path), "--config", str(cfg)]) == 2
    assert "invalid TOML" in capsys.readouterr().err

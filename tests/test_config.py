"""Configuration: file discovery, [tool.sas] in pyproject.toml, validation with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sas import config
from sas.errors import ConfigError
from sas.scan.settings import ScanSettings
from sas.taxonomy import Severity


def test_pyproject_tool_sas_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sas.scan]\nfail_on = "medium"\n')
    found = config.discover(tmp_path)
    assert found == tmp_path / "pyproject.toml"
    assert ScanSettings.from_config(config.load_file(found)).fail_on is Severity.MEDIUM


def test_sas_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.sas]\n")
    (tmp_path / "sas.toml").write_text("")
    assert config.discover(tmp_path) == tmp_path / "sas.toml"


def test_environment_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text("")
    monkeypatch.setenv(config.ENV["config"], str(cfg))
    assert config.discover(tmp_path) == cfg


@pytest.mark.parametrize(
    "text",
    [
        '[scan]\nfail_on = "severe"\n',
        "[scan.limits]\nmax_depth = -1\n",
        "[scan.limits]\nnonsense = 3\n",
        '[scan.pickle]\nallow = "not-a-list"\n',
        'scan = "not a table"\n',
    ],
)
def test_invalid_settings_are_config_errors(text: str, tmp_path: Path) -> None:
    cfg = tmp_path / "sas.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError):
        ScanSettings.from_config(config.load_file(cfg))


def test_merge_is_deep() -> None:
    assert config.merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}

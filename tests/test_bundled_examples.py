"""The bundled examples: the clean function passes, every planted problem in the vulnerable one is found."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from sas import config
from sas.scan.engine import scan
from sas.scan.findings import ScanResult
from sas.scan.settings import ScanSettings
from sas.taxonomy import Severity

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of both examples with their models built by the examples' own script."""
    root = tmp_path_factory.mktemp("examples")
    for name in ("aws-digits", "vulnerable"):
        shutil.copytree(EXAMPLES / name, root / name, ignore=shutil.ignore_patterns("model"))
    spec = importlib.util.spec_from_file_location("build_examples", EXAMPLES / "build_examples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.HERE = root
    module.main()
    return root


def _rules(result: ScanResult, at_least: Severity = Severity.HIGH) -> set[str]:
    return {f.rule_id for f in result.findings if f.severity >= at_least}


def test_clean_function_has_nothing_at_high_or_above(built: Path) -> None:
    result = scan(built / "aws-digits")
    assert _rules(result) == set() and not result.errors


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ("SAS-PKL-001", "model/model.pkl"),  # poisoned model
        ("SAS-CODE-001", "app.py"),  # pickle.loads of request data
        ("SAS-CODE-005", "app.py"),  # eval of request data
        ("SAS-CODE-003", "app.py"),  # shell with request data
        ("SAS-CODE-012", "app.py"),  # hard-coded AWS key
        ("SAS-DEP-003", "requirements.txt"),  # typosquat
        ("SAS-DEP-004", "requirements.txt"),  # dependency confusion (sas.toml names the internal package)
        ("SAS-VEND-006", "python/zz_init.pth"),  # start-up hook that decodes and runs a payload
        ("SAS-IAC-001", "template.yaml"),  # Function URL without auth
        ("SAS-IAC-003", "template.yaml"),  # secret in an environment variable
        ("SAS-IAM-001", "template.yaml"),  # admin policy
        ("SAS-IAM-010", "template.yaml"),  # public entry point x privileged role
    ],
)
def test_vulnerable_function_planted_problem_is_found(built: Path, rule: str, where: str) -> None:
    result = scan(built / "vulnerable", _settings(built / "vulnerable"))
    hits = [f for f in result.findings if f.rule_id == rule and f.location.path == where]
    assert hits and all(f.severity >= Severity.HIGH for f in hits), [
        (f.rule_id, f.location.path) for f in result.findings
    ]


def _settings(folder: Path) -> ScanSettings:
    return ScanSettings.from_config(config.load_file(folder / "sas.toml"))

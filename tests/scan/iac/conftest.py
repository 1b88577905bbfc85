"""Helpers for the deployment-configuration tests: write files, scan them with the IaC analyzer only."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sas.scan.engine import scan
from sas.scan.findings import Finding, ScanResult
from sas.scan.iac.analyzer import IacAnalyzer
from sas.scan.settings import ScanSettings
from sas.taxonomy import Severity


@dataclass
class Scanned:
    result: ScanResult

    def ids(self, floor: str = "info") -> list[str]:
        low = Severity.parse(floor)
        return sorted({f.rule_id for f in self.result.findings if f.severity >= low})

    def rule(self, rule_id: str) -> list[Finding]:
        return [f for f in self.result.findings if f.rule_id == rule_id]

    def worst(self) -> Severity | None:
        return self.result.worst()

    def text(self) -> str:
        return "\n".join(f"{f.severity} {f.rule_id} {f.location} {f.message}" for f in self.result.findings)


@pytest.fixture
def scan_files(tmp_path: Path) -> Callable[..., Scanned]:
    """Write ``{relative path: content}`` under a fresh folder and scan it with the IaC analyzer."""

    calls = [0]

    def _scan(files: dict[str, str | bytes], settings: ScanSettings | None = None) -> Scanned:
        calls[0] += 1
        root = tmp_path / f"case{calls[0]}"
        root.mkdir()
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return Scanned(scan(root, settings, analyzers=[IacAnalyzer()]))

    return _scan

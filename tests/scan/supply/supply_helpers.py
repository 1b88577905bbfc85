"""Fixtures for the supply-chain tests: real installed distributions copied out of this environment."""

from __future__ import annotations

import importlib.metadata as metadata
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

from sas.scan.engine import scan
from sas.scan.findings import Finding, ScanResult
from sas.scan.settings import ScanSettings
from sas.taxonomy import Severity

# small, pure-Python distributions that every environment of this project has
DISTRIBUTIONS = ("idna", "certifi", "urllib3", "packaging", "six")


def copy_distribution(name: str, dest: Path) -> metadata.Distribution:
    """Copy one installed distribution (its files and its .dist-info with RECORD) into ``dest``."""
    dist = metadata.distribution(name)
    for file in dist.files or ():
        rel = PurePosixPath(str(file))
        if ".." in rel.parts:
            continue  # console scripts live outside site-packages
        src = Path(str(dist.locate_file(file)))
        if not src.is_file():
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
    return dist


def distutils_precedence_pth() -> Path:
    return Path(str(metadata.distribution("setuptools").locate_file("distutils-precedence.pth")))


@pytest.fixture
def pristine(tmp_path: Path) -> Path:
    """A function package: real vendored distributions, setuptools' .pth hook and a handler."""
    root = tmp_path / "function"
    root.mkdir()
    for name in DISTRIBUTIONS:
        copy_distribution(name, root)
    shutil.copyfile(distutils_precedence_pth(), root / "distutils-precedence.pth")
    (root / "handler.py").write_text("import idna\n\n\ndef handler(event, context):\n    return {'ok': True}\n")
    app = root / "app"  # the function's own code, a folder without __init__.py (common on Lambda)
    app.mkdir()
    (app / "model.py").write_text("def predict(x):\n    return x\n")
    return root


def run(
    target: Path, *, layers: tuple[str, ...] = (), raw: dict[str, object] | None = None, vuln_db: str | None = None
) -> ScanResult:
    return scan(target, ScanSettings(layers=layers, raw=raw or {}, vuln_db=vuln_db))


def at_least(result: ScanResult, severity: Severity) -> list[Finding]:
    return [f for f in result.findings if f.severity >= severity]


def ours(result: ScanResult, prefix: tuple[str, ...] = ("SAS-DEP", "SAS-VEND", "SAS-LAYER")) -> list[Finding]:
    return [f for f in result.findings if f.rule_id.startswith(prefix)]


Tamper = Callable[[Path, Path], None]
